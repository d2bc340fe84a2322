#!/usr/bin/env bash
# What naming every tensor's dims (`value_info`, stdlib/src/models/dims.rs)
# saves in Assay itself: the built-in SmolLM2 graph as Assay now writes it,
# and the same graph with its value_info stripped, each loaded with onnx()
# from one folder (same weights file), running the same script: a logit
# run, a 270-head sweep (every position) and one at the last position only.
# Interleaved rounds; medians of the whole run's wall time and of each
# call's seconds (the trace); the two runs' results.json must be equal.
# Usage: benches/sessions/named.sh [path/to/assay] [rounds]  (default: a release build; 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/assay.sh
bench_assay "${1:-}"
rounds="${2:-3}"
. benches/venv.sh
bench_venv peers "${PEERS_VENV:-}" "onnxruntime==1.31.1" onnx numpy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bench_smollm "$work"
mkdir -p "$work/m"
cp "$model/model.onnx.data" "$work/m/"
cp "$model/model.onnx" "$work/m/named.onnx"
"$venv/bin/python" - "$work/m" <<'PY'
import onnx, sys
m = onnx.load(sys.argv[1] + "/named.onnx", load_external_data=False)
assert len(m.graph.value_info) > 0, "the built-in graph states no dims"
del m.graph.value_info[:]
onnx.save(m, sys.argv[1] + "/plain.onnx")
PY
for g in named plain; do
  cat > "$work/$g.assay" <<SCRIPT
let tok = model("smollm2-135m")
let lm = onnx("m/$g.onnx")
let clean = tensor([tokenize(tok, "When Mary and John went to the store, John gave a drink to").ids])
let flipped = tensor([tokenize(tok, "When Mary and John went to the store, Mary gave a drink to").ids])
let io = tokenize(tok, " Mary").ids[0]
let s = tokenize(tok, " John").ids[0]
let heads = "/model/layers.*/self_attn/heads_output_0"
record "logits", logit_diff(run(lm, {input_ids: clean}).logits, io, s)
record "full", patch_sweep(lm, clean, flipped, heads, out => logit_diff(out.logits, io, s), parts: 9, batch: 27).effects
record "last", patch_sweep(lm, clean, flipped, heads, out => logit_diff(out.logits, io, s), parts: 9, batch: 27, last_position: true).effects
SCRIPT
done
declare -A wall calls
for r in $(seq "$rounds"); do
  for g in named plain; do
    start=$(date +%s.%N)
    (cd "$work" && "$assay" run "$g.assay" --no-cache --allow-read m --runs-dir runs >/dev/null)
    end=$(date +%s.%N)
    wall[$g]+="$(echo "$end - $start" | bc) "
    run=$(ls -d "$work/runs/$g"/0* | tail -1)
    calls[$g]+="$("$assay" trace "$run" | python3 -c '
import json, sys
t = {}
for l in sys.stdin:
    j = json.loads(l)
    if j.get("tool") in ("onnx", "run", "patch_sweep"):
        t.setdefault(j["tool"], []).append(j["seconds"])
print(",".join(f"{k}={sum(v):.3f}" for k, v in sorted(t.items())))') "
  done
done
a=$(ls -d "$work"/runs/named/0* | tail -1); b=$(ls -d "$work"/runs/plain/0* | tail -1)
python3 - "$a/results.json" "$b/results.json" "${wall[named]}" "${wall[plain]}" "${calls[named]}" "${calls[plain]}" <<'PY'
import json, statistics, sys
a, b = (json.load(open(p))["records"] for p in sys.argv[1:3])
same = "identical" if a == b else "DIFFER"
wn, wp = ([float(x) for x in s.split()] for s in sys.argv[3:5])
def per_tool(s):
    out = {}
    for r in s.split():
        for kv in r.split(","):
            k, v = kv.split("=")
            out.setdefault(k, []).append(float(v))
    return {k: statistics.median(v) for k, v in out.items()}
cn, cp = per_tool(sys.argv[5]), per_tool(sys.argv[6])
print(f"records {same}; medians of {len(wn)} rounds, named / stripped")
print(f"  whole run    {statistics.median(wn):7.2f} s  {statistics.median(wp):7.2f} s  {statistics.median(wn) / statistics.median(wp):.2f}x")
for k in sorted(cn):
    print(f"  {k:12s} {cn[k]:7.3f} s  {cp[k]:7.3f} s  {cn[k] / cp[k]:.2f}x")
PY
