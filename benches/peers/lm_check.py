"""Checks that Assay and each peer (PyTorch, TransformerLens) did the same
work on SmolLM2 (the head sweep's effects correlate, the greedy
continuations match) and prints
Assay's RESULT lines from its run's trace (the second of each call, after
the sessions are built)."""
import json
import sys

import numpy as np

run = sys.argv[1]
results = json.load(open(f"{run}/results.json"))["records"]
e = results["effects"]
ours = np.array(e["values"], dtype=np.float64) if "values" in e else np.load(f"{run}/{e['file']}").astype(np.float64)
for path in sys.argv[2:]:
    peer = json.load(open(path))
    theirs = np.array(peer["effects"], dtype=np.float64)
    r = np.corrcoef(ours, theirs)[0, 1]
    print(f"  {path.rsplit('/', 1)[-1]}: same work: head-sweep effects correlate r = {r:.5f}, "
          f"max |difference| = {np.abs(ours - theirs).max():.4f}")
    same = results["generated"] == peer["generated"]
    print(f"  {path.rsplit('/', 1)[-1]}: greedy continuations {'match' if same else 'differ'}: {peer['generated']!r}")
import gzip
import os
import statistics

trace = f"{run}/trace.jsonl"
lines = open(trace) if os.path.exists(trace) else gzip.open(trace + ".gz", "rt")
calls = [json.loads(line) for line in lines]
sweeps = [c["seconds"] for c in calls if c["tool"] == "patch_sweep"]
gens = [c["seconds"] for c in calls if c["tool"] == "generate"]
# lm.assay's order: a first call of each sweep (building its session),
# then three rounds of (27 rows, 9 rows, last position); generation: a
# first call, three rounds, one more.
rounds = sweeps[2:11]
kinds = {"head sweep": rounds[0::3], "head sweep, 9 rows per run": rounds[1::3],
         "head sweep, last position": rounds[2::3], "generate 32": gens[1:4]}
for name, secs in kinds.items():
    print(f"RESULT assay|{name}|{statistics.median(secs):.6f}|{min(secs):.6f}|{max(secs):.6f}")
