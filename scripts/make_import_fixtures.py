"""Writes the `mixco zoo import` test fixtures with PyTorch (torch.save).

    .venv-bench/bin/python scripts/make_import_fixtures.py zoo/tests/fixtures

(`make bench-venv` creates .venv-bench with torch 2.11.0.) The models are
tiny ResNet-10s (base width 4) with torchvision's module names, so the
files stay small; `expected.json` records, per fixture, every kept tensor's
shape and sum, and the encoder's features for a fixed input, computed here
by PyTorch, which the Rust tests compare against after import and export.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + idt)


class ResNet10(nn.Module):
    """torchvision's ResNet layout (names included) at base width `w`, one block per stage."""

    def __init__(self, w, stem, fc):
        super().__init__()
        k, s, p = (3, 1, 1) if stem == "cifar" else (7, 2, 3)
        self.conv1 = nn.Conv2d(3, w, k, s, p, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.maxpool = nn.Identity() if stem == "cifar" else nn.MaxPool2d(3, 2, 1)
        cin = w
        for i, m in enumerate([1, 2, 4, 8]):
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w * m, 1 if i == 0 else 2)))
            cin = w * m
        self.fc = fc(cin)

    def features(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def randomise(model, gen):
    # Non-trivial BN statistics so that folding them is checked too.
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(0.5 + torch.rand(t.shape, generator=gen))
                else:
                    t.copy_(0.2 * torch.randn(t.shape, generator=gen))


def fixed_input(size):
    n = 2 * 3 * size * size
    return (torch.arange(n, dtype=torch.float64).mul(0.37).sin().add(1).div(2)).float().reshape(2, 3, size, size)


CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
IMNET_MEAN, IMNET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def features(model, size, mean, std):
    model.eval()
    x = fixed_input(size)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return model.features(x).flatten().tolist()


def summary(sd):
    return {k: {"shape": list(v.shape), "sum": float(v.double().sum())} for k, v in sd.items()}


def main(out):
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    expected = {}

    # The reference MoCo / MixCo code: DataParallel-wrapped MoCo module with
    # encoder_q / encoder_k (fc = MLP head), queue, saved with epoch/arch/optimizer.
    mlp = lambda c: nn.Sequential(nn.Linear(c, c), nn.ReLU(), nn.Linear(c, 16))
    q, k = ResNet10(4, "cifar", mlp), ResNet10(4, "cifar", mlp)
    randomise(q, gen)
    k.load_state_dict(q.state_dict())
    moco = nn.Module()
    moco.encoder_q, moco.encoder_k = q, k
    moco.register_buffer("queue", F.normalize(torch.randn(16, 32, generator=gen), dim=0))
    moco.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
    wrapped = nn.Module()  # what nn.DataParallel adds to the names: `module.`
    wrapped.module = moco
    opt = torch.optim.SGD(moco.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    moco.encoder_q.features(fixed_input(32)).sum().backward()
    opt.step()
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": wrapped.state_dict(), "optimizer": opt.state_dict()},
               f"{out}/moco_r10w4.pth.tar")
    expected["moco_r10w4.pth.tar"] = {
        "tensors": summary({k[len("module.encoder_q."):]: v for k, v in wrapped.state_dict().items()
                            if k.startswith("module.encoder_q.") and ".fc." not in k}),
        "features": features(q, 32, CIFAR_MEAN, CIFAR_STD),
    }

    # A plain torchvision-style classifier state dict (imagenet stem), in half precision.
    tv = ResNet10(4, "imagenet", lambda c: nn.Linear(c, 10))
    randomise(tv, gen)
    tv = tv.half().float()  # the values the half file holds, exactly
    torch.save(tv.half().state_dict(), f"{out}/torchvision_r10w4_half.pth")
    tv = tv.float()
    expected["torchvision_r10w4_half.pth"] = {
        "tensors": summary({k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}),
        "features": features(tv, 64, IMNET_MEAN, IMNET_STD),
    }

    # A pickle that would run a shell command when loaded with pickle.load.
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/mixco-pwned",))

    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "payload": Evil()}, f"{out}/malicious.pth.tar")

    # The pre-1.6 (non-zip) format.
    torch.save({"conv1.weight": torch.zeros(2)}, f"{out}/legacy.pth", _use_new_zipfile_serialization=False)

    with open(f"{out}/expected.json", "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
