#!/usr/bin/env bash
# How peak memory grows with model size: random-weight Llama-style models
# of about 0.1, 0.25, 0.5 and 1 billion parameters (exported once by
# PyTorch into Assay's cache, benches/memory/sizes.py), each swept over its
# first two layers' heads by Assay and by PyTorch eager with hooks on the
# same weights, peak RSS of each process (GNU time), the weights' own size
# beside them. Needs PyTorch and transformers (PEERS_VENV, or a private
# virtual environment it installs, about 5 GB).
# Usage: benches/memory/sizes.sh [path/to/assay] [sizes...]  (default: a release build; 100m 250m 500m 1b)
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/assay.sh
bench_assay "${1:-}"
shift || true
sizes="${*:-100m 250m 500m 1b}"
. benches/venv.sh
bench_venv peers "${PEERS_VENV:-}" "onnxruntime==1.31.1" onnx numpy
"$venv/bin/python" -c "import torch, transformers, optimum" 2>/dev/null || "$venv/bin/pip" install -q torch "transformers==4.57.6" "optimum-onnx==0.1.0"
root="$cache/bench-sizes"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf "%-6s %12s %16s %16s %8s\n" size weights-MB assay-peak-MB torch-peak-MB ratio
for s in $sizes; do
  [ -f "$root/$s/model.onnx" ] || "$venv/bin/python" benches/memory/sizes.py export "$root" "$s" >/dev/null
  weights=$(( $(stat -c %s "$root/$s/weights.bin") / 1000000 ))
  ln -sfn "$root/$s" "$work/model"
  cp benches/memory/sizes.assay "$work/"
  if ! (cd "$work" && /usr/bin/time -f "%M" "$assay" run sizes.assay --no-cache --runs-dir runs --allow-read "$root" >/dev/null 2>"$work/err"); then
    cat "$work/err"
    exit 1
  fi
  a=$(( $(tail -1 "$work/err") / 1000 ))
  if ! /usr/bin/time -f "%M" "$venv/bin/python" benches/memory/sizes.py peer "$root" "$s" >/dev/null 2>"$work/err"; then
    cat "$work/err"
    exit 1
  fi
  t=$(( $(tail -1 "$work/err") / 1000 ))
  printf "%-6s %12s %16s %16s %8s\n" "$s" "$weights" "$a" "$t" "$(python3 -c "print(f'{$a/$t:.2f}x')")"
done
