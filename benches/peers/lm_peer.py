"""PyTorch eager on SmolLM2-135M's own weights (Assay's ONNX graph converted
by onnx2torch; forward hooks on each layer's per-head attention output):
a hand-batched head-patching sweep over all 270 heads (27 rows per run,
and 9 rows per run,
the flipped prompt's head output patched in at every position, the logit
difference " Mary" - " John" at the last position), and greedy generation
of 32 tokens with the KV cache. Prints RESULT lines (seconds)."""
import statistics
import warnings

warnings.filterwarnings("ignore", category=UserWarning)
import sys
import time

import numpy as np
import onnx
import torch
from onnx2torch import convert
from tokenizers import Tokenizer

model_dir = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else torch.get_num_threads())
# Where to write the sweep's effects and the generated ids (to check that
# both tools did the same work).
check_path = sys.argv[4] if len(sys.argv) > 4 else None
proto = onnx.load(f"{model_dir}/model.onnx")
net = convert(proto).eval()
tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
past_names = [i.name for i in proto.graph.input if i.name.startswith("past_key_values")]
LAYERS, HEADS, DH, KV = 30, 9, 64, 3
modules = dict(net.named_modules())
heads = [modules[f"model/layers/{l}/self_attn/heads"] for l in range(LAYERS)]


input_names = [i.name for i in proto.graph.input]


def forward(ids, past=None):
    n, t = ids.shape
    if past is None:
        past = [torch.zeros(n, KV, 0, DH) for _ in past_names]
    p = past[0].shape[2]
    # The graph's inputs in its order: ids, (attention_mask, position_ids where
    # it takes them), the cache.
    given = {
        "input_ids": ids,
        "attention_mask": torch.ones(n, p + t, dtype=torch.int64),
        "position_ids": torch.arange(p, p + t, dtype=torch.int64).expand(n, t),
    }
    args = [given[name] if name in given else past[past_names.index(name)] for name in input_names]
    with torch.inference_mode():
        out = net(*args)
    return out


def ids_of(text):
    return torch.tensor([tok.encode(text, add_special_tokens=False).ids], dtype=torch.int64)


clean = ids_of("When Mary and John went to the store, John gave a drink to")
flipped = ids_of("When Mary and John went to the store, Mary gave a drink to")
io = tok.encode(" Mary", add_special_tokens=False).ids[0]
s = tok.encode(" John", add_special_tokens=False).ids[0]


def sweep(batch=27):
    source = {}
    hs = [h.register_forward_hook(lambda m, i, o, l=l: source.__setitem__(l, o.detach())) for l, h in enumerate(heads)]
    forward(flipped)
    for h in hs:
        h.remove()
    effects = []
    comps = [(l, h) for l in range(LAYERS) for h in range(HEADS)]
    for start in range(0, len(comps), batch):
        rows = comps[start:start + batch]
        def patch(m, i, o, layer):
            o = o.clone()
            for r, (l, h) in enumerate(rows):
                if l == layer:
                    o[r, :, h * DH:(h + 1) * DH] = source[layer][0, :, h * DH:(h + 1) * DH]
            return o
        hs = [hd.register_forward_hook(lambda m, i, o, l=l: patch(m, i, o, l)) for l, hd in enumerate(heads)]
        logits = forward(clean.repeat(len(rows), 1))[0]
        for h in hs:
            h.remove()
        effects.extend((logits[:, -1, io] - logits[:, -1, s]).tolist())
    return effects


def generate(n=32):
    out = forward(clean)
    ids = [int(out[0][0, -1].argmax())]
    past = list(out[1:])
    for _ in range(n - 1):
        out = forward(torch.tensor([[ids[-1]]]), past)
        ids.append(int(out[0][0, -1].argmax()))
        past = list(out[1:])
    return ids


base = forward(clean)[0][0, -1]
effects = [e - float(base[io] - base[s]) for e in sweep()]
generated = generate()
if check_path:
    import json
    with open(check_path, "w") as f:
        json.dump({"effects": effects, "generated": tok.decode(generated, skip_special_tokens=False)}, f)
times = {"head sweep": [], "head sweep, 9 rows per run": [], "generate 32": []}
for _ in range(rounds):
    for k, f in (("head sweep", sweep), ("head sweep, 9 rows per run", lambda: sweep(9)), ("generate 32", generate)):
        t = time.perf_counter()
        f()
        times[k].append(time.perf_counter() - t)
print(f"PyTorch {torch.__version__} eager (onnx2torch), {torch.get_num_threads()} threads, SmolLM2-135M:")
for k, v in times.items():
    print(f"  {k}: {statistics.median(v):.3f} s ({min(v):.3f}-{max(v):.3f})")
    print(f"RESULT pytorch-eager-hooks|{k}|{statistics.median(v):.6f}|{min(v):.6f}|{max(v):.6f}")
