"""Feature extraction with PyTorch eager inference of a mixco checkpoint's
weights (same architecture, batch and threads): the baseline `mixco bench
eval` is compared with in docs/BENCHMARKS.md.

    .venv-bench/bin/python benches/torch_features.py runs/x/final.safetensors --threads 2
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors_np import read

p = argparse.ArgumentParser()
p.add_argument("checkpoint")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--batch-size", type=int, default=256)
p.add_argument("--images", type=int, default=4096)
p.add_argument("--repeat", type=int, default=5)
p.add_argument("--channels-last", action="store_true")
a = p.parse_args()
torch.set_num_threads(a.threads)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + idt)


class ResNet(nn.Module):
    """torchvision's basic-block ResNet names at any base width and stem."""

    def __init__(self, width, blocks, stem):
        super().__init__()
        k, s, pd = (3, 1, 1) if stem == "cifar" else (7, 2, 3)
        self.conv1, self.bn1 = nn.Conv2d(3, width, k, s, pd, bias=False), nn.BatchNorm2d(width)
        self.maxpool = nn.Identity() if stem == "cifar" else nn.MaxPool2d(3, 2, 1)
        cin = width
        for i, n in enumerate(blocks):
            cout = width * 2 ** i
            layer = [Block(cin if j == 0 else cout, cout, 2 if (i > 0 and j == 0) else 1) for j in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            cin = cout

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


meta, tensors = read(a.checkpoint)
blocks = {"resnet10": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}[meta["arch"]]
model = ResNet(int(meta["width"]), blocks, meta["stem"])
model.load_state_dict({k: v for k, v in tensors.items() if k in model.state_dict()}, strict=True)
model.eval()
size = int(meta["input_size"])
mean = torch.tensor(json.loads(meta["mean"])).view(1, 3, 1, 1)
std = torch.tensor(json.loads(meta["std"])).view(1, 3, 1, 1)
batch = torch.from_numpy(np.random.default_rng(1).random((a.batch_size, 3, size, size), dtype=np.float32))
if a.channels_last:
    model = model.to(memory_format=torch.channels_last)
passes = -(-a.images // a.batch_size)


def run():
    with torch.inference_mode():
        x = (batch - mean) / std
        if a.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return model(x)


run()
rates = []
for _ in range(a.repeat):
    t = time.perf_counter()
    for _ in range(passes):
        run()
    rates.append(passes * a.batch_size / (time.perf_counter() - t))
print(f"{a.checkpoint}: {statistics.median(rates):.0f} images/s (median of {len(rates)}; batch {a.batch_size}, {size} px, "
      f"threads {a.threads}{', channels-last' if a.channels_last else ''}) [PyTorch {torch.__version__} eager]")
