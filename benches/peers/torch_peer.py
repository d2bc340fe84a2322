"""PyTorch eager with forward hooks on the same weights (the ONNX model
converted by onnx2torch) and the same batch as the Assay capture bench:
plain inference, an exemplar-pass step (one layer's spatial max per channel
through a hook) and capture of every ReLU6 output through hooks. Medians of
interleaved rounds, in seconds per batch, and ratios to plain inference."""
import statistics
import sys
import time

import numpy as np
import onnx
import torch
from onnx2torch import convert

model_path, batch_path = sys.argv[1], sys.argv[2]
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else torch.get_num_threads())
x = torch.from_numpy(np.load(batch_path))
net = convert(onnx.load(model_path)).eval()

# onnx2torch names modules after ONNX nodes; the Clip nodes become ReLU6.
clips = [(n, m) for n, m in net.named_modules() if type(m).__name__ in ("ReLU6", "OnnxClip")]
# Block 15's expansion ReLU6 (`/_blocks.15/Relu6_output_0` in the ONNX graph).
layer_name = [n for n, _ in clips if n == "_blocks/15/Relu6"]
store = {}


def keep(name):
    def hook(_m, _i, out):
        store[name] = out.detach()
    return hook


def spatial_max(_m, _i, out):
    store["max"] = out.detach().amax(dim=(2, 3))


modules = dict(net.named_modules())


def run_plain():
    with torch.inference_mode():
        net(x)


def run_step():
    h = modules[layer_name[0]].register_forward_hook(spatial_max)
    with torch.inference_mode():
        net(x)
    h.remove()


def run_all():
    hs = [m.register_forward_hook(keep(n)) for n, m in clips]
    with torch.inference_mode():
        net(x)
    for h in hs:
        h.remove()
    store.clear()


configs = {"plain": run_plain, "exemplar step": run_step, "all ReLU6": run_all}
for f in configs.values():
    f()
times = {k: [] for k in configs}
for _ in range(10):
    for k, f in configs.items():
        t = time.perf_counter()
        f()
        times[k].append(time.perf_counter() - t)
plain = statistics.median(times["plain"])
print(f"PyTorch {torch.__version__} eager (onnx2torch), {torch.get_num_threads()} threads, batch {x.shape[0]}:")
for k, v in times.items():
    print(f"  {k}: {statistics.median(v):.4f} s per batch ({min(v):.4f}-{max(v):.4f}), ratio to plain {statistics.median(v) / plain:.3f}x")
for k, v in times.items():
    print(f"RESULT pytorch-eager-hooks|{k}|{statistics.median(v):.6f}|{min(v):.6f}|{max(v):.6f}")
