#!/usr/bin/env bash
# What a run's trace costs as tool calls grow: peak memory of the run
# (GNU time's "Maximum resident set size"), the trace file's size and the
# time, for scripts of 50,000, 200,000 and 800,000 tool calls (a loop of
# `abs`). Memory per call is the slope of peak memory between the smallest
# and largest script; with the trace spilled to the run folder past 16,384
# calls it stays near zero. Give a second binary to run it side by side
# (rounds interleaved, medians).
# Usage: benches/memory/trace.sh [path/to/assay] [path/to/other-assay]
set -euo pipefail
cd "$(dirname "$0")/../.."
. benches/assay.sh
bench_assay "${1:-}"
bins=("$assay")
if [ -n "${2:-}" ]; then bins+=("$(realpath "$2")"); fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sizes=(50000 200000 800000)
for n in "${sizes[@]}"; do
  printf 'let total = 0\nfor i in 0..%s {\n  total = total + abs(i - 7)\n}\nrecord "total", total\n' "$n" > "$work/calls$n.assay"
done
med() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A kb secs bytes
for _ in 1 2 3; do
  for b in "${!bins[@]}"; do
    for n in "${sizes[@]}"; do
      rm -rf "$work/runs"
      /usr/bin/time -f "%M %e" -o "$work/time" "${bins[$b]}" run "$work/calls$n.assay" --no-cache --runs-dir "$work/runs" >/dev/null
      read -r k s < "$work/time"
      kb[$b.$n]+="$k"$'\n'; secs[$b.$n]+="$s"$'\n'
      bytes[$b.$n]=$(stat -c %s "$work"/runs/calls"$n"/0001/trace.jsonl*)
    done
  done
done
for b in "${!bins[@]}"; do
  echo "== ${bins[$b]}"
  for n in "${sizes[@]}"; do
    k=$(printf '%s' "${kb[$b.$n]}" | med); s=$(printf '%s' "${secs[$b.$n]}" | med)
    echo "  $n calls: peak $((k / 1024)) MiB, $s s, trace file ${bytes[$b.$n]} bytes ($(echo "scale=2; ${bytes[$b.$n]} / $n" | bc) per call)"
  done
  lo=$(printf '%s' "${kb[$b.${sizes[0]}]}" | med); hi=$(printf '%s' "${kb[$b.${sizes[2]}]}" | med)
  echo "  memory per tool call: $(echo "scale=1; ($hi - $lo) * 1024 / (${sizes[2]} - ${sizes[0]})" | bc) bytes"
done
