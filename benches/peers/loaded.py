"""benches/peers/loaded.sh's Python ONNX Runtime side: the same plain batch
(written by loaded.assay's run as an .npy), five timed runs after one,
with the thread pool spinning (ONNX Runtime's default) or not. Prints the
median seconds."""
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

model, batch, spin, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.add_session_config_entry("session.intra_op.allow_spinning", spin)
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
x = np.load(batch)
feed = {s.get_inputs()[0].name: x}
s.run(None, feed)
times = []
for _ in range(5):
    t = time.perf_counter()
    s.run(None, feed)
    times.append(time.perf_counter() - t)
print(f"{statistics.median(times):.4f}")
