#!/usr/bin/env bash
# ONNX Runtime's thread pool on a quiet and on a loaded machine: the plain
# EfficientNet-Lite0 batch of 16 (median of five runs after one) in Assay
# with its pool spinning (ASSAY_SPIN=1: what it did before) and not (its
# default now), and in Python ONNX Runtime spinning (its default) and not;
# each config in rounds, interleaved, first on a quiet machine, then with
# one busy loop per CPU beside it. Assay also runs without ONNX Runtime's
# memory arena (ASSAY_ARENA=0), which Python ONNX Runtime keeps.
# Usage: benches/peers/loaded.sh [path/to/assay] [rounds]  (default: a release build; 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/assay.sh
bench_assay "${1:-}"
rounds="${2:-3}"
. benches/venv.sh
bench_venv peers "${PEERS_VENV:-}" "onnxruntime==1.31.1" onnx numpy
work=$(mktemp -d)
hogs=()
cleanup() { for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
cp benches/peers/loaded.assay "$work/"
model="$cache/models/efficientnet-lite0/model.onnx"
assay_median() {
  (cd "$work" && env "$@" "$assay" run loaded.assay --no-cache --runs-dir runs >/dev/null)
  local run
  run=$(ls -d "$work"/runs/loaded/* | tail -1)
  "$assay" trace "$run" | python3 -c '
import json, statistics, sys
s = [json.loads(l)["seconds"] for l in sys.stdin if json.loads(l).get("tool") == "run"][1:]
print(f"{statistics.median(s):.4f}")'
}
measure() {
  local label="$1"
  for r in $(seq "$rounds"); do
    local spin nospin noarena pyspin pynospin
    spin=$(assay_median ASSAY_SPIN=1)
    nospin=$(assay_median ASSAY_SPIN=0)
    noarena=$(assay_median ASSAY_SPIN=0 ASSAY_ARENA=0)
    batch=$(ls "$work"/runs/loaded/*/artifacts/streams/input.npy | tail -1)
    pyspin=$("$venv/bin/python" benches/peers/loaded.py "$model" "$batch" 1 "$(nproc)")
    pynospin=$("$venv/bin/python" benches/peers/loaded.py "$model" "$batch" 0 "$(nproc)")
    echo "$label round $r: assay spinning $spin s, not spinning $nospin s (without its arena $noarena s); python ort spinning $pyspin s, not $pynospin s"
  done
}
measure quiet
for _ in $(seq "$(nproc)"); do
  sh -c 'while :; do :; done' &
  hogs+=("$!")
done
measure loaded
