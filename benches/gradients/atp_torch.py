"""Attribution patching in PyTorch on SmolLM2-135M's own weights (Assay's
ONNX graph converted by onnx2torch), as a PyTorch user computes it: one
forward and backward pass on the clean prompt keeping every layer's
per-head attention output and its gradient (retain_grad; weights need no
gradient), one forward pass on the flipped prompt, and each head's effect
Σ (flipped − clean)·grad. The prompts and Assay's estimates come from
the results.json of benches/gradients/atp.assay, so both tools do the
same work; prints the seconds per round and the correlation with Assay's.

Usage: atp_torch.py MODEL_DIR RESULTS_JSON [ROUNDS] [THREADS]"""
import json
import os
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore")
import numpy as np
import onnx
import torch
from onnx2torch import convert

model_dir, results = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
if len(sys.argv) > 4:
    torch.set_num_threads(int(sys.argv[4]))
rec = json.load(open(results))["records"]
prompt = rec["prompt"]
proto = onnx.load(f"{model_dir}/model.onnx")
net = convert(proto).eval()
modules = dict(net.named_modules())
LAYERS, HEADS, DH, KV = 30, 9, 64, 3
heads = [modules[f"model/layers/{l}/self_attn/heads"] for l in range(LAYERS)]
embed = modules["model/embed_tokens/Gather"]
names = [i.name for i in proto.graph.input]


def forward(ids):
    n, t = ids.shape
    given = {"input_ids": ids, "attention_mask": torch.ones(n, t, dtype=torch.int64),
             "position_ids": torch.arange(t, dtype=torch.int64).expand(n, t)}
    args = [given.get(name, torch.zeros(n, KV, 0, DH)) for name in names]
    return net(*args)[0]


def atp():
    clean = torch.tensor([prompt["clean_ids"]])
    flipped = torch.tensor([prompt["flipped_ids"]])
    kept = {}
    hooks = [embed.register_forward_hook(lambda m, i, o: o.detach().requires_grad_(True))]

    def keep(l):
        def hook(m, i, o):
            o.retain_grad()
            kept[l] = o
        return hook
    hooks += [h.register_forward_hook(keep(l)) for l, h in enumerate(heads)]
    logits = forward(clean)
    (logits[0, -1, prompt["io"]] - logits[0, -1, prompt["s"]]).backward()
    for h in hooks:
        h.remove()
    source = {}
    hooks = [h.register_forward_hook(lambda m, i, o, l=l: source.__setitem__(l, o)) for l, h in enumerate(heads)]
    with torch.no_grad():
        forward(flipped)
    for h in hooks:
        h.remove()
    effects = np.zeros((LAYERS, HEADS))
    for l in range(LAYERS):
        d = ((source[l] - kept[l].detach()) * kept[l].grad)[0].reshape(-1, HEADS, DH)
        effects[l] = d.sum(dim=(0, 2)).numpy()
    return effects


effects = atp()
stored = rec["atp effects"]  # a record's tensor: inline, or an .npy beside results.json
theirs = (np.array(stored["values"]) if "values" in stored
          else np.load(os.path.join(os.path.dirname(results), stored["file"]))).reshape(LAYERS, HEADS)
r = np.corrcoef(effects.ravel(), theirs.ravel())[0, 1]
times = []
for _ in range(rounds):
    t = time.perf_counter()
    atp()
    times.append(time.perf_counter() - t)
print(f"PyTorch {torch.__version__} eager (onnx2torch), {torch.get_num_threads()} threads: AtP over 270 heads "
      f"{statistics.median(times):.3f} s ({min(times):.3f}-{max(times):.3f}); effects against Assay's: r = {r:.6f}, "
      f"largest difference {np.abs(effects - theirs).max():.2e}")
print(f"RESULT pytorch-atp|{statistics.median(times):.6f}|{min(times):.6f}|{max(times):.6f}|{r:.6f}")
