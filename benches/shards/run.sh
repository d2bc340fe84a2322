#!/usr/bin/env bash
# Sharding on one machine, measured side by side in interleaved rounds:
#   A  one run of an exemplar pass with 2 ONNX Runtime threads
#   B  the same pass as 2 shards at once with 1 thread each, then their merge
# and the merge's own cost for 2 and 8 shards. Prints medians and ratios.
#   benches/shards/run.sh [IMAGES] [ROUNDS]      (default 512 images, 3 rounds)
# Uses the release build (cargo build --release first); not part of CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
assay="$root/target/release/assay"
[[ -x $assay ]] || { echo "build first: cargo build --release" >&2; exit 2; }
images=${1:-512}
rounds=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > pass.assay <<SCRIPT
seed 1
let net = model("efficientnet-lite0")
let pics = take(emoji(), $images)
let all = exemplars(layer(net, "/_blocks.15/Relu6_output_0"), pics, k: 8, bottom: 4, quantiles: [0.5, 0.9], batch: 32)
record "top", all.indices
record "quantiles", all.quantile_indices
SCRIPT
export ASSAY_CALL_CACHE_DIR="$work/cache"   # a fresh store: nothing is answered from an earlier run
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
"$assay" run pass.assay --no-cache >/dev/null   # warm: models fetched and digests remembered
: > times.tsv
for r in $(seq 1 "$rounds"); do
  t0=$(now); ASSAY_THREADS=2 "$assay" run pass.assay --no-cache >/dev/null; t1=$(now)
  echo -e "one_2threads\t$(secs "$t0" "$t1")" >> times.tsv
  t0=$(now)
  ASSAY_THREADS=1 "$assay" run pass.assay --no-cache --shard 0/2 >/dev/null &
  ASSAY_THREADS=1 "$assay" run pass.assay --no-cache --shard 1/2 >/dev/null &
  wait
  t1=$(now); "$assay" merge pass.assay --shards 2 --no-cache >/dev/null; t2=$(now)
  echo -e "shards2_1thread\t$(secs "$t0" "$t1")" >> times.tsv
  echo -e "merge2\t$(secs "$t1" "$t2")" >> times.tsv
  echo -e "shards2_with_merge\t$(secs "$t0" "$t2")" >> times.tsv
done
for i in $(seq 0 7); do ASSAY_THREADS=1 "$assay" run pass.assay --shard "$i/8" >/dev/null; done
for r in $(seq 1 "$rounds"); do
  t0=$(now); "$assay" merge pass.assay --shards 8 --no-cache >/dev/null; t1=$(now)
  echo -e "merge8\t$(secs "$t0" "$t1")" >> times.tsv
done
# The merged records equal the one-machine record.
runs=(runs/pass/0*)
cmp -s "${runs[0]}/results.json" "${runs[-1]}/results.json" && echo "merged results.json == one-machine results.json: yes" || { echo "MISMATCH" >&2; exit 1; }
python3 - "$images" <<'PY'
import statistics, sys, collections
t = collections.defaultdict(list)
for line in open("times.tsv"):
    k, v = line.split("\t"); t[k].append(float(v))
med = {k: statistics.median(v) for k, v in t.items()}
spread = {k: (min(v), max(v)) for k, v in t.items()}
print(f"exemplar pass over {sys.argv[1]} emoji, EfficientNet-Lite0 block 15 (medians of {len(t['merge2'])} rounds, seconds)")
for k in ["one_2threads", "shards2_1thread", "merge2", "shards2_with_merge", "merge8"]:
    lo, hi = spread[k]
    print(f"  {k:20s} {med[k]:8.3f}  (min {lo:.3f}, max {hi:.3f})")
a = med["one_2threads"]
print(f"  2 shards x 1 thread / 1 run x 2 threads: {med['shards2_1thread'] / a:.2f}x (with the merge {med['shards2_with_merge'] / a:.2f}x)")
print(f"  merge of 2 shards / one run: {med['merge2'] / a:.2f}x; merge of 8 shards / one run: {med['merge8'] / a:.2f}x")
PY
