#!/usr/bin/env bash
# Peak memory (RSS of the run, GNU time's "Maximum resident set size") of
# SmolLM2-135M head sweeps: two sweeps (two rewritten sessions beside the
# plain one), the same twice, and the peer suite's script. With every CPU
# session sharing one copy of the weights and no ONNX Runtime arena, each
# stays near one copy of the weights (655 MB) plus activations; the figures
# before (one copy per session, the arena kept) are in the commit history.
# Usage: benches/memory/run.sh [path/to/assay]  (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/assay.sh
bench_assay "${1:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for s in benches/memory/sweep.assay benches/memory/sweep_twice.assay benches/peers/lm.assay; do
  /usr/bin/time -f "%M KB peak, %e s wall: $s" "$assay" run "$s" --no-cache --runs-dir "$work" >/dev/null 2>"$work/err" || { cat "$work/err"; exit 1; }
  tail -1 "$work/err"
done
