#!/usr/bin/env bash
# Where the time to build an ONNX Runtime session goes (Python ONNX Runtime
# 1.31.1 on Assay's built-in SmolLM2-135M, weights shared as Assay shares
# them): as Assay builds it, then without prepacking, without graph
# optimisation, from a saved optimised graph (what an on-disk session cache
# would load), without memory-reuse planning, and with every tensor's dims
# named in value_info. See build.py.
# Usage: benches/sessions/build.sh [path/to/assay] [rounds]  (default: a release build; 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/assay.sh
bench_assay "${1:-}"
. benches/venv.sh
bench_venv peers "${PEERS_VENV:-}" "onnxruntime==1.31.1" onnx numpy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bench_smollm "$work"
"$venv/bin/python" benches/sessions/build.py "$model" "${2:-3}"
