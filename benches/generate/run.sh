#!/usr/bin/env bash
# Generation speed on SmolLM2-135M with and without the KV cache, measured
# side by side in interleaved rounds (release build; not part of CI):
#   benches/generate/run.sh [TOKENS] [ROUNDS]     (default 64 tokens, 3 rounds)
# Each run generates TOKENS greedy tokens after a 12-token prompt, with the
# call cache off, so every step is computed. Prints tokens per second
# (median, min, max) and the ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
assay="$root/target/release/assay"
[[ -x $assay ]] || { echo "build first: cargo build --release" >&2; exit 2; }
tokens=${1:-64}
rounds=${2:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
for c in true false; do
  cat > "gen_$c.assay" <<SCRIPT
let lm = model("smollm2-135m")
record "text", generate(lm, "The history of the city begins in the year when the first", n: $tokens, cache: $c)
SCRIPT
done
cat > empty.assay <<SCRIPT
let lm = model("smollm2-135m")
record "ids", tokenize(lm, "The history of the city begins in the year when the first").ids
SCRIPT
export ASSAY_CALL_CACHE_DIR="$work/calls"
"$assay" run empty.assay --no-cache >/dev/null   # the model built and its digests remembered
now() { date +%s.%N; }
: > times.tsv
for r in $(seq 1 "$rounds"); do
  for c in true false empty; do
    f="gen_$c.assay"; [[ $c == empty ]] && f=empty.assay
    t0=$(now); "$assay" run "$f" --no-cache >/dev/null; t1=$(now)
    echo -e "$c\t$(python3 -c "print($t1 - $t0)")" >> times.tsv
  done
done
same=$(python3 -c "
import json, glob
t = [json.load(open(sorted(glob.glob(f'runs/gen_{c}/*/results.json'))[-1]))['records']['text'] for c in ('true', 'false')]
print('yes' if t[0] == t[1] else 'NO')")
python3 - "$tokens" "$same" <<'PY'
import statistics, sys, collections
n = int(sys.argv[1]); t = collections.defaultdict(list)
for line in open("times.tsv"):
    k, v = line.split("\t"); t[k].append(float(v))
base = statistics.median(t["empty"])   # start-up and model load, paid by both
def tps(k): return [n / max(x - base, 1e-9) for x in t[k]]
print(f"generate {n} tokens, SmolLM2-135M, 12-token prompt ({len(t['true'])} rounds; start-up {base:.2f} s subtracted)")
for k, name in [("true", "with the KV cache"), ("false", "without (whole sequence each step)")]:
    v = tps(k)
    print(f"  {name:36s} {statistics.median(v):7.1f} tokens/s  (min {min(v):.1f}, max {max(v):.1f})")
print(f"  ratio (cache / no cache): {statistics.median(tps('true')) / statistics.median(tps('false')):.2f}x; same text both ways: {sys.argv[2]}")
PY
