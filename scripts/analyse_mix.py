"""What MixCo's mixed queries do in a trained checkpoint (docs/RESULTS.md).

For 256 CIFAR-10 test images (no augmentation; batch norm in eval mode):
queries q and keys k from the query and key (momentum) encoders, mixed
queries from x_i * lam + x_{i+128} * (1 - lam) with lam ~ U(0, 1), and their
logits against [batch keys; the checkpoint's queue] at a mix temperature.
Prints per checkpoint:
  target mass   mean softmax mass on the two source keys (ideal: ~1)
  share corr    correlation of p_i / (p_i + p_j) with lam (ideal: ~1)
  excess CE     the soft cross-entropy minus the targets' own entropy
  queue mass    softmax mass on the queue rather than on batch keys
  cos(q_mix)    mean cosine between different mixed queries (collapse -> 1)
  cos(q)        the same for plain queries

    .venv-bench/bin/python scripts/analyse_mix.py DATA/cifar-10-batches-bin RUN/final.safetensors... [--t 0.05 0.2]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "benches"))
from safetensors_np import read  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("cifar")
p.add_argument("checkpoints", nargs="+")
p.add_argument("--t", type=float, nargs="+", default=[0.05, 0.2])
p.add_argument("--n", type=int, default=256)
a = p.parse_args()
torch.manual_seed(0)

raw = np.fromfile(os.path.join(a.cifar, "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)[: a.n]
images = torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)


def encoder(t, prefix, depth_blocks, x):
    """Eval-mode forward of a torchvision-named basic-block ResNet + MLP head."""
    g = lambda name: t[prefix + name]

    def bn(name, x):
        return F.batch_norm(x, g(name + ".running_mean"), g(name + ".running_var"), g(name + ".weight"), g(name + ".bias"), False, 0.0, 1e-5)

    x = F.relu(bn("bn1", F.conv2d(x, g("conv1.weight"), padding=g("conv1.weight").shape[-1] // 2)))
    for s, nb in enumerate(depth_blocks):
        for b in range(nb):
            pre = f"layer{s + 1}.{b}."
            stride = 2 if (s > 0 and b == 0) else 1
            out = F.relu(bn(pre + "bn1", F.conv2d(x, g(pre + "conv1.weight"), stride=stride, padding=1)))
            out = bn(pre + "bn2", F.conv2d(out, g(pre + "conv2.weight"), padding=1))
            idt = x
            if prefix + pre + "downsample.0.weight" in t:
                idt = bn(pre + "downsample.1", F.conv2d(x, g(pre + "downsample.0.weight"), stride=stride))
            x = F.relu(out + idt)
    f = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
    z = F.linear(F.relu(F.linear(f, g("head.0.weight"), g("head.0.bias"))), g("head.2.weight"), g("head.2.bias"))
    return F.normalize(z, dim=1)


print(f"{'checkpoint':40} {'T':>5} {'target mass':>11} {'share corr':>10} {'excess CE':>9} {'queue mass':>10} {'cos(q_mix)':>10} {'cos(q)':>7}")
for path in a.checkpoints:
    meta, t = read(path)
    blocks = {"resnet10": [1] * 4, "resnet18": [2] * 4, "resnet34": [3, 4, 6, 3]}[meta["arch"]]
    mean = torch.tensor(json.loads(meta["mean"])).view(1, 3, 1, 1)
    std = torch.tensor(json.loads(meta["std"])).view(1, 3, 1, 1)
    norm = lambda x: (x - mean) / std
    half = a.n // 2
    gen = torch.Generator().manual_seed(1)
    lam = torch.rand(half, generator=gen)
    mixed = lam.view(-1, 1, 1, 1) * images[:half] + (1 - lam.view(-1, 1, 1, 1)) * images[half:]
    with torch.no_grad():
        q = encoder(t, "", blocks, norm(images))
        k = encoder(t, "momentum.", blocks, norm(images))
        qm = encoder(t, "", blocks, norm(mixed))
    queue = t["queue"]
    keys = torch.cat([k, queue])
    target = torch.zeros(half, keys.shape[0])
    ar = torch.arange(half)
    target[ar, ar] = lam
    target[ar, ar + half] = 1 - lam
    ent = -(target.clamp_min(1e-12).log() * target).sum(1).mean()
    off = ~torch.eye(half, dtype=torch.bool)
    cos_mix = (qm @ qm.t())[off].mean().item()
    cos_q = (q @ q.t())[~torch.eye(a.n, dtype=torch.bool)].mean().item()
    for T in a.t:
        logp = F.log_softmax(qm @ keys.t() / T, dim=1)
        prob = logp.exp()
        mass = (prob[ar, ar] + prob[ar, ar + half]).mean().item()
        share = prob[ar, ar] / (prob[ar, ar] + prob[ar, ar + half])
        corr = np.corrcoef(share.numpy(), lam.numpy())[0, 1]
        excess = (-(target * logp).sum(1).mean() - ent).item()
        qmass = prob[:, a.n:].sum(1).mean().item()
        name = os.path.basename(os.path.dirname(path)) or path
        print(f"{name:40} {T:5.2f} {mass:11.3f} {corr:10.3f} {excess:9.3f} {qmass:10.3f} {cos_mix:10.3f} {cos_q:7.3f}")
