#!/usr/bin/env bash
# Assay's probes against scikit-learn on the same features and settings:
# runs benches/probes/probes.assay (EfficientNet-Lite0 and SmolLM2 features,
# eight probes), then refits each with scikit-learn in a private virtual
# environment under Assay's cache folder and prints the weights' agreement,
# the training scores and the time ratio. Not part of CI (it downloads
# wheels); run by hand.
#
#   benches/probes/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/venv.sh
bench_venv probes "${PROBES_VENV:-}" "scikit-learn==1.9.1" numpy
cargo build -q --release
runs="$(mktemp -d)"
trap 'rm -rf "$runs"' EXIT
./target/release/assay run benches/probes/probes.assay --runs-dir "$runs" --no-cache >/dev/null
"$venv/bin/python" benches/probes/compare.py "$runs/probes/0001"
