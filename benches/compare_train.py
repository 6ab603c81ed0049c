"""`mixco bench train` against the PyTorch reference step
(benches/torch_train_step.py), alternating runs on the same machine and
threads; prints the medians and the ratios for docs/BENCHMARKS.md.

    .venv-bench/bin/python benches/compare_train.py target/release/mixco --rounds 3
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

p = argparse.ArgumentParser()
p.add_argument("mixco")
p.add_argument("--rounds", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--width", type=int, default=16)
p.add_argument("--batch-size", type=int, default=256)
p.add_argument("--workers", default="0,2", help="DataLoader workers to try for PyTorch (its best counts)")
a = p.parse_args()
here = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return out


ours = {"moco-v2": [], "moco-v2 + MixCo": []}
ours_bf16 = {"moco-v2": [], "moco-v2 + MixCo": []}
theirs = {"moco-v2": [], "moco-v2 + MixCo": []}
for r in range(a.rounds):
    for bf16, into in [("false", ours), ("true", ours_bf16)]:
        rows = json.loads(run([a.mixco, "bench", "train", "--json", "--device", "cpu", "--threads", str(a.threads), "--bf16", bf16,
                               "--arch", "resnet18", "--width", str(a.width), "--batch-size", str(a.batch_size)]))
        for row in rows:
            for k in into:
                if row["what"] == f"{k}: full step":
                    into[k].append(row["images_per_s"])
    for k, flag in [("moco-v2", []), ("moco-v2 + MixCo", ["--mixco"])]:
        best = 0.0
        for w in a.workers.split(","):
            line = run([sys.executable, os.path.join(here, "torch_train_step.py"), "--threads", str(a.threads),
                        "--width", str(a.width), "--batch-size", str(a.batch_size), "--workers", w] + flag)
            best = max(best, json.loads(line)["images_per_s"])
        theirs[k].append(best)
    print(f"round {r + 1}: mixco {ours}, mixco bf16 {ours_bf16}, PyTorch {theirs}", file=sys.stderr)

import torch  # noqa: E402  (only for its version)

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"machine: {os.cpu_count()} cores, {cpu}; threads {a.threads}; ResNet-18 width {a.width}, batch {a.batch_size}; "
      f"PyTorch {torch.__version__} (best of DataLoader workers {a.workers}); medians of {a.rounds} alternating rounds")
print("| step | mixco images/s (float32) | mixco images/s (--bf16 true) | PyTorch reference images/s (float32) | ratio float32 | ratio bf16 |")
print("|---|---|---|---|---|---|")
for k in ours:
    m, b, t = statistics.median(ours[k]), statistics.median(ours_bf16[k]), statistics.median(theirs[k])
    print(f"| {k} | {m:.0f} | {b:.0f} | {t:.0f} | {m / t:.2f}x | {b / t:.2f}x |")
