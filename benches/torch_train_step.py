"""The MoCo-v2 (+ MixCo) training step as the PyTorch reference code runs it,
for `mixco bench train`'s comparison (docs/BENCHMARKS.md).

Reference pipeline: PIL images -> torchvision "aug+" transforms (two crops)
in a DataLoader -> MoCo with split BN (the MoCo CIFAR demo's single-device
shuffle-BN stand-in), queue, momentum encoder -> MixCo on the query batch
(one lambda ~ U(0,1) per pair, mixed images encoded with the queries, soft
cross-entropy against keys + queue) -> SGD. Same architecture (ResNet at a
base width, cifar stem, 2-layer MLP head), batch size and threads as mixco.

    .venv-bench/bin/python benches/torch_train_step.py --threads 2 --mixco --workers 0
"""
import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("--width", type=int, default=16)
p.add_argument("--blocks", default="2,2,2,2", help="blocks per stage (2,2,2,2 = ResNet-18)")
p.add_argument("--batch-size", type=int, default=256)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
p.add_argument("--mixco", action="store_true")
p.add_argument("--steps", type=int, default=6, help="timed steps per repeat")
p.add_argument("--warmup", type=int, default=2)
p.add_argument("--repeat", type=int, default=1)
p.add_argument("--queue", type=int, default=4096)
p.add_argument("--bn-splits", type=int, default=8)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


class SplitBatchNorm(nn.BatchNorm2d):
    """From the MoCo CIFAR-10 demo: BN statistics over `num_splits` groups."""

    def __init__(self, c, num_splits):
        super().__init__(c)
        self.num_splits = num_splits

    def forward(self, x):
        n, c, h, w = x.shape
        if self.training:
            rm, rv = self.running_mean.repeat(self.num_splits), self.running_var.repeat(self.num_splits)
            out = F.batch_norm(x.view(-1, c * self.num_splits, h, w), rm, rv, self.weight.repeat(self.num_splits),
                               self.bias.repeat(self.num_splits), True, self.momentum, self.eps).view(n, c, h, w)
            self.running_mean.data.copy_(rm.view(self.num_splits, c).mean(dim=0))
            self.running_var.data.copy_(rv.view(self.num_splits, c).mean(dim=0))
            return out
        return super().forward(x)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, bn):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), bn(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), bn(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), bn(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + idt)


class Encoder(nn.Module):
    def __init__(self, w, blocks, bn, dim=128):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, w, 3, 1, 1, bias=False), bn(w)
        layers, cin = [], w
        for i, n in enumerate(blocks):
            cout = w * 2 ** i
            for j in range(n):
                layers.append(Block(cin, cout, 2 if (i > 0 and j == 0) else 1, bn))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Linear(cin, cin), nn.ReLU(), nn.Linear(cin, dim))

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class MoCo(nn.Module):
    def __init__(self, K=4096, m=0.99, T=0.2, T_mix=0.05):
        super().__init__()
        bn = (lambda c: SplitBatchNorm(c, a.bn_splits)) if a.bn_splits > 1 else nn.BatchNorm2d
        blocks = [int(b) for b in a.blocks.split(",")]
        self.encoder_q, self.encoder_k = Encoder(a.width, blocks, bn), Encoder(a.width, blocks, bn)
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.data.copy_(pq.data)
            pk.requires_grad = False
        self.K, self.m, self.T, self.T_mix = K, m, T, T_mix
        self.register_buffer("queue", F.normalize(torch.randn(128, K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for pq, pk in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            pk.data = pk.data * self.m + pq.data * (1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        b, ptr = keys.shape[0], int(self.queue_ptr)
        self.queue[:, ptr:ptr + b] = keys.t()
        self.queue_ptr[0] = (ptr + b) % self.K

    def forward(self, im_q, im_k):
        b = im_q.shape[0]
        if a.mixco:
            half = b // 2
            lam = torch.rand(half, 1, 1, 1)
            im_mix = lam * im_q[:half] + (1 - lam) * im_q[half:]
            z = F.normalize(self.encoder_q(torch.cat([im_q, im_mix])), dim=1)
            q, q_mix = z[:b], z[b:]
        else:
            q = F.normalize(self.encoder_q(im_q), dim=1)
        with torch.no_grad():
            self._momentum_update_key_encoder()
            idx = torch.randperm(b)  # batch shuffle (single device)
            k = F.normalize(self.encoder_k(im_k[idx]), dim=1)[torch.argsort(idx)]
        l_pos = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", q, self.queue.clone().detach())
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T
        loss = F.cross_entropy(logits, torch.zeros(b, dtype=torch.long))
        if a.mixco:
            logits_mix = torch.cat([q_mix @ k.t(), q_mix @ self.queue.clone().detach()], dim=1) / self.T_mix
            lam2 = lam.view(-1)
            target = torch.zeros_like(logits_mix)
            ar = torch.arange(half)
            target[ar, ar] = lam2
            target[ar, ar + half] = 1 - lam2
            loss = loss + 1.0 * torch.sum(-target * F.log_softmax(logits_mix, dim=1), dim=1).mean()
        self._dequeue_and_enqueue(k)
        return loss


class TwoCrops:
    def __init__(self, t):
        self.t = t

    def __call__(self, x):
        return [self.t(x), self.t(x)]


aug = T.Compose([
    T.RandomResizedCrop(32, scale=(0.2, 1.0)),
    T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
    T.RandomGrayscale(p=0.2),
    T.RandomHorizontalFlip(),
    T.ToTensor(),
    T.Normalize([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]),
])


class Images(torch.utils.data.Dataset):
    def __init__(self, n):
        self.x = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return TwoCrops(aug)(Image.fromarray(self.x[i])), 0


steps = a.warmup + a.steps * a.repeat
loader = torch.utils.data.DataLoader(Images(a.batch_size * steps), batch_size=a.batch_size, shuffle=True,
                                     num_workers=a.workers, drop_last=True, persistent_workers=a.workers > 0)
model = MoCo()
opt = torch.optim.SGD(model.parameters(), lr=0.06, momentum=0.9, weight_decay=5e-4)
model.train()
times, t0 = [], None
for i, (views, _) in enumerate(loader):
    if i == a.warmup or (i > a.warmup and (i - a.warmup) % a.steps == 0):
        if t0 is not None:
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
    loss = model(views[0], views[1])
    opt.zero_grad()
    loss.backward()
    opt.step()
times.append(time.perf_counter() - t0)
rate = statistics.median(a.steps * a.batch_size / t for t in times)
what = "moco-v2 + MixCo" if a.mixco else "moco-v2"
print(json.dumps({"what": f"PyTorch reference {what}: full step (workers {a.workers})", "images_per_s": rate,
                  "torch": torch.__version__, "threads": a.threads}))
