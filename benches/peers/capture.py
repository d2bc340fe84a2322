"""Python ONNX Runtime's own cost of exposing intermediate tensors, on the
same model file and the same batch as `cargo bench -p assay-stdlib --bench
capture` (which writes the batch to ASSAY_BENCH_INPUT_NPY). Interleaved
rounds, medians and min-max of each ratio to a plain run."""
import os
import statistics
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort

model_path, batch_path = sys.argv[1], sys.argv[2]
x = np.load(batch_path)
m = onnx.load(model_path)
clips = [n.output[0] for n in m.graph.node if n.op_type == "Clip"]
every = [o for n in m.graph.node for o in n.output]


def exposed(names):
    g = onnx.load(model_path)
    have = {o.name for o in g.graph.output}
    for n in names:
        if n not in have:
            g.graph.output.append(onnx.helper.make_empty_tensor_value_info(n))
    return g.SerializeToString()


configs = {
    "plain": onnx.load(model_path).SerializeToString(),
    "one layer": exposed(["/_blocks.15/Relu6_output_0"]),
    "all ReLU6": exposed(clips),
    "every tensor": exposed(every),
}
sessions = {k: ort.InferenceSession(b, providers=["CPUExecutionProvider"]) for k, b in configs.items()}
feed = {sessions["plain"].get_inputs()[0].name: x}
for s in sessions.values():
    s.run(None, feed)
times = {k: [] for k in sessions}
for _ in range(int(os.environ.get("ROUNDS", "15"))):
    for k, s in sessions.items():
        t = time.perf_counter()
        s.run(None, feed)
        times[k].append(time.perf_counter() - t)
plain = statistics.median(times["plain"])
print(f"Python ONNX Runtime {ort.__version__}, batch {x.shape[0]}: plain {plain:.4f} s")
for k, v in times.items():
    if k == "plain":
        continue
    ratios = [a / b for a, b in zip(v, times["plain"])]
    print(f"  ratio {k} / plain: {statistics.median(v) / plain:.3f}x (per round {min(ratios):.2f}-{max(ratios):.2f})")
for k, v in times.items():
    print(f"RESULT onnxruntime-python|{k}|{statistics.median(v):.6f}|{min(v):.6f}|{max(v):.6f}")
