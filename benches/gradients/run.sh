#!/usr/bin/env bash
# Gradients' costs on SmolLM2-135M, side by side in one run each (seconds
# per call from the run's trace): attribution patching against the exact
# batched head sweep (last position only, and every position), three
# rounds; DCM trained by Adam on true gradients against SPSA; peak memory
# of a backward pass over all 30 layers' heads against a forward run.
# With --torch, AtP in PyTorch eager on the same weights too (onnx2torch;
# atp_torch.py, in a private virtual environment, PEERS_VENV to reuse one).
# Usage: benches/gradients/run.sh [--torch] [path/to/assay]  (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
torch=""
if [ "${1:-}" = "--torch" ]; then torch=1; shift; fi
. benches/assay.sh
bench_assay "${1:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seconds() {
  # tool name -> the seconds of each of its calls, in order
  "$assay" trace "$1" | python3 -c '
import json, sys
want = sys.argv[1].split(",")
for line in sys.stdin:
    d = json.loads(line)
    if d.get("tool") in want:
        print(d["tool"], round(d.get("seconds", 0), 3))' "$2"
}
for s in atp dcm; do
  "$assay" run "benches/gradients/$s.assay" --no-cache --runs-dir "$work" >/dev/null
done
echo "# attribution_patch, then patch_sweep (last position), then patch_sweep (every position), per round"
seconds "$work/atp/0001" attribution_patch,patch_sweep
if [ -n "$torch" ]; then
  . benches/venv.sh
  bench_venv peers "${PEERS_VENV:-}" "onnxruntime==1.31.1" onnx numpy
  "$venv/bin/python" -c "import torch, onnx2torch" 2>/dev/null || "$venv/bin/pip" install -q torch onnx2torch torchvision pillow
  echo "# PyTorch eager, the same AtP on the same weights"
  (cd "$work" && "$venv/bin/python" "$OLDPWD/benches/gradients/atp_torch.py" "$(ls -d "$cache"/models/smollm2-135m-* | tail -1)" "$work/atp/0001/results.json" 3 "$(nproc)") | grep -v ^RESULT
fi
echo "# dcm: Adam, then SPSA"
seconds "$work/dcm/0001" dcm
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["records"]; [print(k, json.dumps(v)) for k, v in r.items()]' "$work/dcm/0001/results.json"
cat > "$work/fwd.assay" <<'A'
let lm = model("smollm2-135m")
record "shape", run(lm, "When Mary and John went to the store, John gave a drink to").logits.shape
A
cat > "$work/bwd.assay" <<'A'
let lm = model("smollm2-135m")
let g = grad(lm, "When Mary and John went to the store, John gave a drink to", {tensor: "logits", index: [-1, 5099], minus: [-1, 2322]}, attention(lm).heads)
record "tensors", len(g.grads)
A
for s in fwd bwd fwd bwd; do
  /usr/bin/time -f "%M KB peak, %e s wall: $s" "$assay" run "$work/$s.assay" --no-cache --runs-dir "$work" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  tail -1 "$work/err"
done
