#!/usr/bin/env bash
# What sharding a SmolLM2 head sweep costs and saves, per shard count:
# one machine against N shards run one after another (each as it would run
# on a machine of its own, same threads), then their merge. Prints, per N,
# the largest shard + merge (the time on N machines) and the sum of shards +
# merge (the machine time), each as a ratio to the one-machine run.
#   benches/shards/sweep.sh [ROUNDS]     (default 3; medians)
# The call cache is warm, as on a cluster whose cache was filled once
# (docs/scale.md): `attention()` and the model's digests are answered from
# it in every process; the sweep itself is never cached (--no-cache is not
# used so the cache can answer the setup; each round's sweep has a new seed).
# Uses the release build (cargo build --release first); not part of CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
assay="$root/target/release/assay"
[[ -x $assay ]] || { echo "build first: cargo build --release" >&2; exit 2; }
rounds=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
export ASSAY_CALL_CACHE_DIR="$work/cache"
script() {
  cat > sweep.assay <<SCRIPT
seed $1
let lm = model("smollm2-135m")
let ps = ioi(lm, n: 4)
let a = attention(lm)
let p = ps[$1 % 4]
let sweep = patch_sweep(lm, p.clean, p.flipped, a.heads, out => logit_diff(out.logits, p.io_id, p.s_id), parts: 9, batch: 27)
record "effects", sweep.effects
SCRIPT
}
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }
script 0; "$assay" run sweep.assay >/dev/null   # warm: model fetched, attention() cached
: > times.tsv
for r in $(seq 1 "$rounds"); do
  script "$r"
  t0=$(now); "$assay" run sweep.assay >/dev/null; t1=$(now)
  echo -e "one\t$(secs "$t0" "$t1")" >> times.tsv
  one=$(ls -d runs/sweep/0* | tail -1)
  for n in 2 4; do
    for i in $(seq 0 $((n - 1))); do
      t0=$(now); "$assay" run sweep.assay --shard "$i/$n" >/dev/null; t1=$(now)
      echo -e "shard$n.$i\t$(secs "$t0" "$t1")" >> times.tsv
    done
    t0=$(now); "$assay" merge sweep.assay --shards "$n" >/dev/null 2>&1; t1=$(now)
    echo -e "merge$n\t$(secs "$t0" "$t1")" >> times.tsv
    merged=$(ls -d runs/sweep/0* | tail -1)
    cmp -s "$one/results.json" "$merged/results.json" || { echo "MISMATCH at $n shards" >&2; exit 1; }
    echo -e "round$r.n$n\t0" >> times.tsv
  done
done
echo "every merged results.json == the one-machine results.json"
python3 - "$rounds" <<'PY'
import collections, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open("times.tsv")]
one, per = [], collections.defaultdict(lambda: collections.defaultdict(list))
cur = collections.defaultdict(dict)
for k, v in rows:
    v = float(v)
    if k == "one": one.append(v)
    elif k.startswith("shard"):
        n, i = k[5:].split("."); cur[int(n)][int(i)] = v
    elif k.startswith("merge"):
        n = int(k[5:]); s = cur.pop(n)
        per[n]["max"].append(max(s.values()) + v); per[n]["sum"].append(sum(s.values()) + v); per[n]["merge"].append(v)
        per[n]["shard"].append(statistics.median(s.values()))
o = statistics.median(one)
print(f"SmolLM2-135M, 270 heads, every position, batch 27 (medians of {sys.argv[1]} rounds, seconds)")
print(f"  one machine        {o:7.3f}")
for n in sorted(per):
    m = {k: statistics.median(v) for k, v in per[n].items()}
    print(f"  {n} shards: a shard {m['shard']:.3f}, merge {m['merge']:.3f}; on {n} machines (largest shard + merge) {m['max']:.3f} = {o / m['max']:.2f}x faster; machine time (sum + merge) {m['sum']:.3f} = {m['sum'] / o:.2f}x")
PY
