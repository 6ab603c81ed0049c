"""Feature-extraction images/s of an ONNX encoder through ONNX Runtime's own
Python API: the baseline for `mixco bench eval` (same file, batch, threads).

    .venv/bin/python benches/ort_python.py encoder.onnx --threads 2 --batch-size 256
"""
import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("--threads", type=int, default=0)
p.add_argument("--batch-size", type=int, default=256)
p.add_argument("--images", type=int, default=4096)
p.add_argument("--repeat", type=int, default=5)
a = p.parse_args()

opts = ort.SessionOptions()
opts.intra_op_num_threads = a.threads
sess = ort.InferenceSession(a.model, opts, providers=["CPUExecutionProvider"])
size = int(sess.get_modelmeta().custom_metadata_map["input_size"])
batch = np.random.default_rng(1).random((a.batch_size, 3, size, size), dtype=np.float32)
passes = -(-a.images // a.batch_size)
sess.run(["features"], {"images": batch})
rates = []
for _ in range(a.repeat):
    t = time.perf_counter()
    for _ in range(passes):
        sess.run(["features"], {"images": batch})
    rates.append(passes * a.batch_size / (time.perf_counter() - t))
print(f"{a.model}: {statistics.median(rates):.0f} images/s (median of {len(rates)}; batch {a.batch_size}, {size} px, threads {a.threads}) [onnxruntime {ort.__version__} Python]")
