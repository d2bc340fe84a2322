"""Where the time to build an ONNX Runtime session goes, on Assay's
built-in SmolLM2-135M (its graph without the dims Assay now names in it;
its weights given as shared initializers, as Assay gives them): that
session, and the same session with one thing changed at a time. Interleaved rounds, medians; every session's logits
for one prompt are compared with the first's (prepacked and plain
kernels differ in the last bits).

Usage: build.py MODEL_DIR [ROUNDS]
"""
import copy
import hashlib
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, TensorProto

folder = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
L = ort.GraphOptimizationLevel
# The graph without the dims Assay names in it (as it was built before, and
# as an exporter writes it); `annotated()` names them again.
model = onnx.load_from_string(open(os.path.join(folder, "model.onnx"), "rb").read())
del model.graph.value_info[:]
plain = model.SerializeToString()
data = open(os.path.join(folder, "model.onnx.data"), "rb").read()

# Shared initializers: the float weights of 1 KiB or more (Assay's rule).
shared = {}
for t in model.graph.initializer:
    if t.data_location == 1 and t.data_type == 1:
        kv = {e.key: e.value for e in t.external_data}
        off, length = int(kv.get("offset", 0)), int(kv["length"])
        if length >= 1024:
            arr = np.frombuffer(data, dtype=np.float32, count=length // 4, offset=off).reshape(tuple(t.dims))
            shared[t.name] = ort.OrtValue.ortvalue_from_numpy(arr)


def options(level=L.ORT_ENABLE_ALL, prepack=True, reuse=True, save=None):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    so.enable_mem_reuse = reuse
    for k, v in shared.items():
        so.add_initializer(k, v)
    so.add_session_config_entry("session.model_external_initializers_file_folder_path", folder)
    if not prepack:
        so.add_session_config_entry("session.disable_prepacking", "1")
    if save:
        so.optimized_model_filepath = save
    return so


def feeds(s, n=1, t=4, p=0, past_n=None):
    f = {}
    for i in s.get_inputs():
        if i.name == "input_ids":
            f[i.name] = np.arange(1, n * t + 1, dtype=np.int64).reshape(n, t)
        elif i.name == "attention_mask":
            f[i.name] = np.ones((n, p + t), dtype=np.int64)
        elif i.name == "position_ids":
            f[i.name] = np.tile(np.arange(p, p + t, dtype=np.int64)[None], (n, 1))
        else:
            f[i.name] = np.zeros((past_n or n, 3, p, 64), dtype=np.float32)
    return f


def annotated():
    """The graph with every computed tensor's dims named by the input dims
    they follow (N, T, P, P+T), found by running it at three shapes."""
    names = [o for n in model.graph.node for o in n.output if o]
    outs = {o.name for o in model.graph.output}
    every = copy.deepcopy(model)
    every.graph.output.extend(helper.ValueInfoProto(name=n) for n in names if n not in outs)
    s = ort.InferenceSession(every.SerializeToString(), options(L.ORT_DISABLE_ALL, False), providers=["CPUExecutionProvider"])
    got = [o.name for o in s.get_outputs()]
    probes = [(2, 5, 11, 2), (3, 7, 13, 1), (5, 3, 0, 5)]
    shapes = [dict(zip(got, (a.shape for a in s.run(None, feeds(s, *c))))) for c in probes]
    symbols = [("N", lambda c: c[0]), ("T", lambda c: c[1]), ("P", lambda c: c[2]), ("P+T", lambda c: c[1] + c[2])]
    elem = {"tensor(float)": TensorProto.FLOAT, "tensor(int64)": TensorProto.INT64, "tensor(bool)": TensorProto.BOOL}
    types = {o.name: o.type for o in s.get_outputs()}
    out = copy.deepcopy(model)
    for name in got:
        if name in outs or types[name] not in elem or len({len(x[name]) for x in shapes}) != 1:
            continue
        dims = []
        for k in range(len(shapes[0][name])):
            vals = [x[name][k] for x in shapes]
            if len(set(vals)) == 1:
                dims.append(vals[0])
                continue
            dims.append(next((sym for sym, f in symbols if all(f(c) == v for c, v in zip(probes, vals))), None))
        if None not in dims:
            out.graph.value_info.append(helper.make_tensor_value_info(name, elem[types[name]], dims))
    return out.SerializeToString()


saved = os.path.join(tempfile.mkdtemp(), "optimized.onnx")
ort.InferenceSession(plain, options(save=saved), providers=["CPUExecutionProvider"])
optimized = open(saved, "rb").read()
configs = [
    ("unnamed dims, optimised, prepacked", plain, {}),
    ("no prepacking", plain, {"prepack": False}),
    ("no graph optimisation", plain, {"level": L.ORT_DISABLE_ALL}),
    ("a saved optimised graph (an on-disk cache)", optimized, {"level": L.ORT_DISABLE_ALL}),
    ("no memory-reuse planning (not in the C API)", plain, {"reuse": False}),
    ("dims named in value_info", annotated(), {}),
]
times = {c[0]: [] for c in configs}
digests = {c[0]: set() for c in configs}
for r in range(rounds):
    for label, graph, kw in configs:
        start = time.perf_counter()
        s = ort.InferenceSession(graph, options(**kw), providers=["CPUExecutionProvider"])
        times[label].append(time.perf_counter() - start)
        digests[label].add(hashlib.sha256(s.run(["logits"], feeds(s))[0].tobytes()).hexdigest())
base = statistics.median(times[configs[0][0]])
print(f"ONNX Runtime {ort.__version__}, {len(model.graph.node)} nodes, {rounds} rounds (median build time, ratio to the first)")
reference = digests[configs[0][0]]
for label, _, _ in configs:
    m = statistics.median(times[label])
    same = "logits identical" if digests[label] == reference and len(reference) == 1 else "logits differ"
    print(f"  {label:48s} {m:6.3f} s  {m / base:5.2f}x  {same}")
