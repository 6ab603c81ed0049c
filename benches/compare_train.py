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
p.add_argument("--no-bf16", action="store_true", help="skip mixco's --bf16 true step")
a = p.parse_args()
# mixco sets these two with mallopt at start-up (src/main.rs); the same for
# PyTorch, as a second reference, shows how much of the ratio they make.
TUNED = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647"
here = os.path.dirname(os.path.abspath(__file__))


def run(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return out


ours = {"moco-v2": [], "moco-v2 + MixCo": []}
ours_bf16 = {"moco-v2": [], "moco-v2 + MixCo": []}
theirs = {"moco-v2": [], "moco-v2 + MixCo": []}
theirs_tuned = {"moco-v2": [], "moco-v2 + MixCo": []}
plain_env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
tuned_env = dict(plain_env, GLIBC_TUNABLES=TUNED)
for r in range(a.rounds):
    for bf16, into in [("false", ours), ("true", ours_bf16)][: 1 if a.no_bf16 else 2]:
        rows = json.loads(run([a.mixco, "bench", "train", "--json", "--device", "cpu", "--threads", str(a.threads), "--bf16", bf16,
                               "--arch", "resnet18", "--width", str(a.width), "--batch-size", str(a.batch_size)]))
        for row in rows:
            for k in into:
                if row["what"] == f"{k}: full step":
                    into[k].append(row["images_per_s"])
    for env, into in [(plain_env, theirs), (tuned_env, theirs_tuned)]:
        for k, flag in [("moco-v2", []), ("moco-v2 + MixCo", ["--mixco"])]:
            best = 0.0
            for w in a.workers.split(","):
                line = run([sys.executable, os.path.join(here, "torch_train_step.py"), "--threads", str(a.threads),
                            "--width", str(a.width), "--batch-size", str(a.batch_size), "--workers", w] + flag, env)
                best = max(best, json.loads(line)["images_per_s"])
            into[k].append(best)
    print(f"round {r + 1}: mixco {ours}, mixco bf16 {ours_bf16}, PyTorch {theirs}, PyTorch tuned malloc {theirs_tuned}",
          file=sys.stderr)

import torch  # noqa: E402  (only for its version)

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"machine: {os.cpu_count()} cores, {cpu}; threads {a.threads}; ResNet-18 width {a.width}, batch {a.batch_size}; "
      f"PyTorch {torch.__version__} (best of DataLoader workers {a.workers}); medians of {a.rounds} alternating rounds")
print("| step | mixco float32 | mixco --bf16 true | PyTorch reference | PyTorch, mixco's malloc settings "
      "| ratio float32 | ratio bf16 | ratio float32 vs tuned PyTorch |")
print("|---|---|---|---|---|---|---|---|")
med = statistics.median
for k in ours:
    m, t, tt = med(ours[k]), med(theirs[k]), med(theirs_tuned[k])
    b = med(ours_bf16[k]) if ours_bf16[k] else float("nan")
    print(f"| {k} | {m:.0f} | {b:.0f} | {t:.0f} | {tt:.0f} | {m / t:.2f}x | {b / t:.2f}x | {m / tt:.2f}x |")
