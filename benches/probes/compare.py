"""Refits benches/probes/probes.assay's probes with scikit-learn on the same
features and settings, and prints how far Assay's weights are from
scikit-learn's, both training scores, the features each keeps, and the time
of each fit (Assay's from the run's trace.jsonl, scikit-learn's measured
here, the best of three).

    python compare.py RUN_DIR

Objectives (Assay's probe() doc): logistic, sum of log-losses + l2/2 |w|^2
+ l1 |w|_1 with the bias unpenalised = LogisticRegression(C=1/l2) (lbfgs;
multinomial for 3 classes), and for l1 > 0 liblinear with C=1/l1 and a
large intercept_scaling (liblinear penalises the intercept; scaled up, the
penalty on it vanishes); linear, 1/2 sum of squares + l2/2 |w|^2 =
Ridge(alpha=l2), + l1 |w|_1 = Lasso(alpha=l1/n).
"""
import json
import sys
import time
import warnings

import numpy as np
from sklearn.linear_model import Lasso, LogisticRegression, Ridge

warnings.simplefilter("ignore")
run = sys.argv[1]
res = json.load(open(f"{run}/results.json"))["records"]
files = res["files"]
x_emoji = np.load(f"{run}/{files[0]}").astype(np.float64)
x_lm = np.load(f"{run}/{files[1]}").astype(np.float64)[:, 4, :]
labels = res["labels"]
data = {
    "emoji face": (x_emoji, np.array(labels["face"])),
    "emoji face/flag/other": (x_emoji, np.array(labels["group"])),
    "soccer-ball logit": (x_emoji, np.array(labels["target"], dtype=np.float64)),
    "smollm2 number": (x_lm, np.array(labels["number"])),
}
seconds = {}
for line in open(f"{run}/trace.jsonl"):
    t = json.loads(line)
    if t["tool"] == "probe":
        seconds.setdefault("probe", []).append(t["seconds"])


def model(p, n):
    if p["kind"] == "linear":
        if p["l1"] > 0:
            return Lasso(alpha=p["l1"] / n, tol=1e-12, max_iter=1_000_000)
        return Ridge(alpha=p["l2"], solver="cholesky")
    if p["l1"] > 0:
        return LogisticRegression(
            l1_ratio=1, C=1 / p["l1"], solver="liblinear", tol=1e-10, max_iter=100_000, intercept_scaling=1e4
        )
    return LogisticRegression(C=1 / p["l2"], tol=1e-10, max_iter=100_000)


rows = []
for i, p in enumerate(res["probes"]):
    x, y = data[p["name"].split(",")[0]]
    w_assay = np.load(f"{run}/{p['weights']['file']}").astype(np.float64)
    b_assay = np.array(p["bias"])
    best = None
    for _ in range(3):
        m = model(p, len(y))
        t0 = time.perf_counter()
        m.fit(x, y)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    w = np.atleast_2d(m.coef_)
    b = np.atleast_1d(m.intercept_).astype(np.float64)
    if p["kind"] == "logistic" and w.shape[0] > 1:
        # Softmax biases are defined up to a constant: compare them centred.
        b, b_assay = b - b.mean(), b_assay - b_assay.mean()
    scale = np.abs(w).max()
    dw = np.abs(w - w_assay).max() / scale
    db = np.abs(b - b_assay).max() / max(1.0, np.abs(b).max())
    score = m.score(x, y)
    kept = int((np.abs(w) > 0).any(axis=0).sum())
    t_assay = seconds["probe"][i]
    rows.append((p["name"], dw, db, p["train"], score, p["kept"], kept, t_assay, best))

print("| probe | max abs weight diff / max abs weight | bias diff | Assay train | sklearn train | kept: Assay / sklearn | Assay s | sklearn s | time ratio (Assay / sklearn) |")
print("|---|---|---|---|---|---|---|---|---|")
for name, dw, db, a, s, ka, ks, ta, ts in rows:
    print(f"| {name} | {dw:.1e} | {db:.1e} | {a:.4f} | {s:.4f} | {ka} / {ks} | {ta:.3f} | {ts:.3f} | {ta / ts:.2f} |")
