#!/usr/bin/env bash
# What sharding costs and saves, per workload and shard count: one machine
# against N shards run one after another (each as it would run on a
# machine of its own, same threads), then their merge. Prints, per
# workload and N, the largest shard + merge (the time on N machines) and
# the sum of shards + merge (the machine time), as ratios to one machine.
#   benches/shards/cluster.sh [ROUNDS] [WORKLOADS]   (default 2; heads pairs exemplars)
# Workloads: heads (a SmolLM2-135M 270-head sweep, every position, batch
# 27), pairs (the same over 3 prompt pairs of different lengths in one
# padded batch), exemplars (EfficientNet-Lite0 block 15, all 1152
# channels, top/bottom/quantiles over 512 emoji, batch 32).
# The call cache is warm, as on a cluster whose cache was filled once
# (docs/scale.md): `attention()` and the models' digests are answered from
# it in every process; the sharded work itself never is (each round's
# sweep has other prompts; the exemplar pass runs with --no-cache).
# Uses the release build (cargo build --release first); not part of CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
assay="$root/target/release/assay"
[[ -x $assay ]] || { echo "build first: cargo build --release" >&2; exit 2; }
rounds=${1:-2}
workloads=${2:-heads pairs exemplars}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export ASSAY_CALL_CACHE_DIR="$work/cache"
script() { # workload seed
  case $1 in
    heads) cat <<SCRIPT
seed $2
let lm = model("smollm2-135m")
let ps = ioi(lm, n: 4)
let a = attention(lm)
let p = ps[$2 % 4]
let sweep = patch_sweep(lm, p.clean, p.flipped, a.heads, out => logit_diff(out.logits, p.io_id, p.s_id), parts: 9, batch: 27)
record "effects", sweep.effects
SCRIPT
    ;;
    pairs) cat <<SCRIPT
seed $2
let lm = model("smollm2-135m")
let a = attention(lm)
let id = w => tokenize(lm, w).ids[0]
let names = [[" Mary", " John"], [" Anna", " Tom"], [" Kate", " Paul"], [" Lisa", " Mark"]]
let n = names[$2 % 4]
let m = names[($2 + 1) % 4]
let pairs = [
  {clean: "When" + n[0] + " and" + n[1] + " went to the store," + n[1] + " gave a drink to", flipped: "When" + n[0] + " and" + n[1] + " went to the store," + n[0] + " gave a drink to", io: id(n[0]), s: id(n[1])},
  {clean: m[0] + " and" + m[1] + " met." + m[1] + " thanked", flipped: m[0] + " and" + m[1] + " met." + m[0] + " thanked", io: id(m[0]), s: id(m[1])},
  {clean: "Then," + n[0] + " and" + m[1] + " had an argument, and" + m[1] + " said to", flipped: "Then," + n[0] + " and" + m[1] + " had an argument, and" + n[0] + " said to", io: id(n[0]), s: id(m[1])}]
let s = patch_sweep(lm, map(pairs, p => p.clean), map(pairs, p => p.flipped), a.heads, (out, i) => logit_diff(out.logits, pairs[i].io, pairs[i].s), parts: 9, batch: 27)
record "effects", s.effects
SCRIPT
    ;;
    exemplars) cat <<SCRIPT
seed $2
let net = model("efficientnet-lite0")
let pics = take(emoji(), 512)
let all = exemplars(layer(net, "/_blocks.15/Relu6_output_0"), pics, k: 8, bottom: 4, quantiles: [0.5, 0.9], batch: 32)
record "top", all.indices
record "quantiles", all.quantile_indices
SCRIPT
    ;;
  esac
}
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
: > times.tsv
for w in $workloads; do
  mkdir -p "$w"
  nc=(); [[ $w == exemplars ]] && nc=(--no-cache)
  script "$w" 0 > "$w/job.assay"
  (cd "$w" && "$assay" run job.assay >/dev/null)   # warm: models fetched, attention() cached
  for r in $(seq 1 "$rounds"); do
    script "$w" "$r" > "$w/job.assay"
    t0=$(now); (cd "$w" && "$assay" run job.assay "${nc[@]}" >/dev/null); t1=$(now)
    echo -e "$w\tone\t$(secs "$t0" "$t1")" >> times.tsv
    one=$(ls -d "$w"/runs/job/0* | tail -1)
    for n in 2 4; do
      for i in $(seq 0 $((n - 1))); do
        t0=$(now); (cd "$w" && "$assay" run job.assay "${nc[@]}" --shard "$i/$n" >/dev/null); t1=$(now)
        echo -e "$w\tshard$n.$i\t$(secs "$t0" "$t1")" >> times.tsv
      done
      t0=$(now); (cd "$w" && "$assay" merge job.assay "${nc[@]}" --shards "$n" >/dev/null 2>&1); t1=$(now)
      echo -e "$w\tmerge$n\t$(secs "$t0" "$t1")" >> times.tsv
      merged=$(ls -d "$w"/runs/job/0* | tail -1)
      cmp -s "$one/results.json" "$merged/results.json" || { echo "MISMATCH: $w at $n shards" >&2; exit 1; }
    done
  done
done
echo "every merged results.json == its one-machine results.json"
python3 - "$rounds" <<'PY'
import collections, statistics, sys
one = collections.defaultdict(list)
per = collections.defaultdict(lambda: collections.defaultdict(list))
cur = collections.defaultdict(dict)
for line in open("times.tsv"):
    w, k, v = line.rstrip("\n").split("\t"); v = float(v)
    if k == "one": one[w].append(v)
    elif k.startswith("shard"):
        n, i = k[5:].split("."); cur[(w, int(n))][int(i)] = v
    elif k.startswith("merge"):
        n = int(k[5:]); s = cur.pop((w, n))
        p = per[(w, n)]
        p["max"].append(max(s.values()) + v); p["sum"].append(sum(s.values()) + v); p["merge"].append(v)
        p["shard"].append(statistics.median(s.values()))
print(f"medians of {sys.argv[1]} rounds, seconds; ratios against one machine")
for w in one:
    o = statistics.median(one[w])
    print(f"{w}: one machine {o:.3f}")
    for n in (2, 4):
        m = {k: statistics.median(v) for k, v in per[(w, n)].items()}
        print(f"  {n} shards: a shard {m['shard']:.3f}, merge {m['merge']:.3f}; on {n} machines {m['max']:.3f} ({o / m['max']:.2f}x faster); machine time {m['sum']:.3f} ({m['sum'] / o:.2f}x)")
PY
