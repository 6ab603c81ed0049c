"""Writes the `mixco zoo import` test fixtures with PyTorch (torch.save).

    .venv-bench/bin/python scripts/make_import_fixtures.py zoo/tests/fixtures

(`make bench-venv` creates .venv-bench with torch 2.11.0 and omegaconf.)

Every checkpoint layout mixco reads (zoo/src/layout.rs) is written here by
real PyTorch, in both of torch.save's formats: the zip format and the legacy
one (`_use_new_zipfile_serialization=False`, what torch < 1.6 wrote and
mmselfsup's publish script still writes). The networks are small ResNets
(base width 4) whose module names follow each publisher's code: torchvision's
ResNet (conv1, bn1, relu, maxpool, layer1..4, avgpool, fc, in that order, so
that `list(resnet.children())` is torchvision's too), and the official MixCo
code's own ResNet (`block_layers`, `Block`), reproduced from its published
structure. The files around the weights are what each publisher saves:
MoCo's and MixCo's {epoch, arch, state_dict, optimizer}, Lightning's
checkpoint dict (solo-learn, lightly) with hyper-parameters as an
argparse.Namespace or an OmegaConf config, mmselfsup's {meta, state_dict,
message_hub}, VISSL's classy_state_dict.

`expected.json` records, per fixture, what the importer must find (layout,
encoder prefix, format) and PyTorch's features of the query encoder for a
fixed input, which the Rust tests compare with mixco's ONNX export.
"""
import argparse
import json
import os
import sys
import types
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

W = 4  # base width: fixtures stay small (ResNet-18 at width 4: 44k parameters)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class ResNet(nn.Module):
    """torchvision's ResNet layout (names and child order) at base width `w`."""

    def __init__(self, blocks, w=W, stem="imagenet", fc=None):
        super().__init__()
        k, s, p = (3, 1, 1) if stem == "cifar" else (7, 2, 3)
        self.conv1 = nn.Conv2d(3, w, k, s, p, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if stem == "cifar" else nn.MaxPool2d(3, 2, 1)
        cin = w
        for i, (m, n) in enumerate(zip([1, 2, 4, 8], blocks)):
            layers = [BasicBlock(cin, w * m, 1 if i == 0 else 2)] + [BasicBlock(w * m, w * m, 1) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layers))
            cin = w * m
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = fc(cin) if fc else nn.Linear(cin, 10)
        self.feature_dim = cin

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return torch.flatten(self.avgpool(x), 1)


class OfficialBlock(nn.Module):
    """The official MixCo code's `Block` (moco/models/base_encoder/resnet.py), basic type."""

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class OfficialResNet(nn.Module):
    """The official MixCo code's ResNet: 7x7 stem, stages in `block_layers`
    (an nn.Sequential of nn.Sequentials of Blocks), `fc`; planes scaled to `w`."""

    def __init__(self, repeats, num_classes, w=W):
        super().__init__()
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        for plane, repeat, stride in zip([w, 2 * w, 4 * w, 8 * w], repeats, [1, 2, 2, 2]):
            downsample = None
            if stride != 1 or self.inplanes != plane:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, plane, 1, stride, bias=False), nn.BatchNorm2d(plane))
            layers = [OfficialBlock(self.inplanes, plane, stride, downsample)]
            self.inplanes = plane
            layers += [OfficialBlock(plane, plane) for _ in range(1, repeat)]
            stages.append(nn.Sequential(*layers))
        self.block_layers = nn.Sequential(*stages)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * w, num_classes)

    def features(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return torch.flatten(self.avgpool(self.block_layers(x)), 1)


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


def features(model, size, stem):
    mean, std = (CIFAR_MEAN, CIFAR_STD) if stem == "cifar" else (IMNET_MEAN, IMNET_STD)
    model.eval()
    x = fixed_input(size)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return model.features(x).flatten().tolist()


def summary(sd):
    return {k: {"shape": list(v.shape), "sum": float(v.double().sum())} for k, v in sd.items()}


def mlp(c, out=16):
    return nn.Sequential(nn.Linear(c, c), nn.ReLU(), nn.Linear(c, out))


def trained(model, gen, size=32):
    """One SGD step with momentum, so that the optimiser has state to save."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.03, momentum=0.9, weight_decay=1e-4)
    model.train()
    enc = getattr(model, "encoder_q", None) or getattr(model, "backbone")
    x = fixed_input(size)
    out = enc.features(x) if hasattr(enc, "features") else enc(x)
    out.sum().backward()
    opt.step()
    return opt


def copy_of(net):
    import copy

    return copy.deepcopy(net)


class Wrapped(nn.Module):
    """What nn.DataParallel / DistributedDataParallel add to the names: `module.`."""

    def __init__(self, m):
        super().__init__()
        self.module = m


def moco_like(encoder_q, gen, dim=16):
    m = nn.Module()
    m.encoder_q, m.encoder_k = encoder_q, copy_of(encoder_q)
    for p in m.encoder_k.parameters():
        p.requires_grad = False
    m.register_buffer("queue", F.normalize(torch.randn(dim, 32, generator=gen), dim=0))
    m.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
    return m


# mmengine's HistoryBuffer, as mmselfsup's message_hub pickles it: a class of
# a module mixco never has, holding numpy arrays.
_mmengine = types.ModuleType("mmengine.logging.history_buffer")


class HistoryBuffer:
    def __init__(self, values):
        self._log_history = np.array(values)
        self._count_history = np.ones(len(values))
        self.max_length = 1000000


HistoryBuffer.__module__ = "mmengine.logging.history_buffer"
_mmengine.HistoryBuffer = HistoryBuffer
for _name in ("mmengine", "mmengine.logging"):
    sys.modules.setdefault(_name, types.ModuleType(_name))
sys.modules["mmengine.logging.history_buffer"] = _mmengine


def lightning(state_dict, opt, hparams, epoch=9):
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    return {
        "epoch": epoch,
        "global_step": 1000,
        "pytorch-lightning_version": "2.0.9",
        "state_dict": state_dict,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": epoch, "completed": epoch}}}},
        "callbacks": {"ModelCheckpoint{'monitor': None, 'mode': 'min'}": {"best_model_score": torch.tensor(0.5), "best_model_path": ""}},
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [sched.state_dict()],
        "hparams_name": "kwargs",
        "hyper_parameters": hparams,
    }


def layouts(gen, legacy):
    """(file stem, layout, encoder prefix, stem, input size, query encoder, object to save) for each layout."""
    out = []

    # MoCo v2 (facebookresearch/moco main_moco.py): DDP-wrapped MoCo, MLP head in fc.
    q = ResNet([2, 2, 2, 2], stem="cifar", fc=mlp)
    randomise(q, gen)
    moco = moco_like(q, gen)
    opt = trained(moco, gen)
    obj = {"epoch": 200, "arch": "resnet18", "state_dict": Wrapped(moco).state_dict(), "optimizer": opt.state_dict()}
    out.append(("moco", "moco", "state_dict.encoder_q.", "cifar", 32, q, obj))

    # The official MixCo code (moco/pretrain.py): its own ResNet under encoder_q, MLP head.
    q = OfficialResNet([2, 2, 2, 2], num_classes=16)
    q.fc = nn.Sequential(nn.Linear(8 * W, 8 * W), nn.ReLU(), q.fc)
    randomise(q, gen)
    enc = moco_like(q, gen)
    opt = trained(enc, gen, 64)
    obj = {"epoch": 200, "arch": "resnet18", "state_dict": Wrapped(enc).state_dict(), "optimizer": opt.state_dict()}
    out.append(("mixco_official", "mixco-official", "state_dict.encoder_q.", "imagenet", 64, q, obj))

    # solo-learn (a BaseMomentumMethod: backbone with fc = Identity, CIFAR stem; Lightning checkpoint).
    m = nn.Module()
    m.backbone = ResNet([2, 2, 2, 2], stem="cifar")
    m.backbone.fc = nn.Identity()
    m.classifier = nn.Linear(8 * W, 10)
    m.projector = nn.Sequential(nn.Linear(8 * W, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 8))
    m.momentum_backbone, m.momentum_projector = copy_of(m.backbone), copy_of(m.projector)
    randomise(m, gen)
    opt = trained(m, gen)
    cfg = {"method": "byol", "backbone": {"name": "resnet18", "kwargs": {}}, "optimizer": {"name": "lars", "lr": 1.0, "kwargs": {"eta": 0.02}}, "max_epochs": 1000}
    if legacy:  # older solo-learn saved its argparse arguments
        hp = argparse.Namespace(**{k: v for k, v in cfg.items() if k != "backbone"}, backbone="resnet18", devices=[0, 1])
    else:  # newer solo-learn: an OmegaConf config
        from omegaconf import OmegaConf

        hp = {"cfg": OmegaConf.create(cfg)}
    out.append(("solo_learn", "solo-learn", "state_dict.backbone.", "cifar", 32, m.backbone, lightning(m.state_dict(), opt, hp)))

    # lightly (its examples: backbone = nn.Sequential(*list(resnet.children())[:-1]); MoCo heads).
    m = nn.Module()
    resnet = ResNet([2, 2, 2, 2])
    m.backbone = nn.Sequential(*list(resnet.children())[:-1])
    m.projection_head = nn.Module()
    m.projection_head.layers = nn.Sequential(nn.Linear(8 * W, 8 * W), nn.ReLU(), nn.Linear(8 * W, 16))
    m.backbone_momentum, m.projection_head_momentum = copy_of(m.backbone), copy_of(m.projection_head)
    randomise(m, gen)
    resnet.features = lambda x, b=m.backbone: torch.flatten(b(x), 1)
    opt = torch.optim.SGD(m.parameters(), lr=0.06, momentum=0.9)
    out.append(("lightly", "lightly", "state_dict.backbone.", "imagenet", 64, resnet, lightning(m.state_dict(), opt, {"batch_size": 256, "memory_bank_size": 4096})))

    # mmselfsup 1.x MoCo v2: backbone, neck (MoCoV2Neck mlp), encoder_k = EMA(Sequential(backbone, neck)), queue;
    # published by tools/model_converters/publish_model.py: optimizer removed, meta and message_hub kept.
    m = nn.Module()
    m.backbone = ResNet([2, 2, 2, 2])
    del m.backbone.fc
    m.neck = nn.Module()
    m.neck.mlp = nn.Sequential(nn.Linear(8 * W, 8 * W), nn.ReLU(inplace=True), nn.Linear(8 * W, 16))
    ema = nn.Module()
    ema.module = nn.Sequential(copy_of(m.backbone), copy_of(m.neck))
    ema.register_buffer("steps", torch.tensor(1000))
    m.encoder_k = ema
    m.register_buffer("queue", F.normalize(torch.randn(16, 32, generator=gen), dim=0))
    m.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
    randomise(m, gen)
    meta = {"mmengine_version": "0.7.3", "seed": 0, "epoch": 200, "iter": 1000, "experiment_name": "mocov2_resnet50_8xb32-coslr-200e_in1k",
            "config": "model = dict(type='MoCo', queue_len=65536, feat_dim=128, momentum=0.001)"}
    hub = {"log_scalars": {"train/loss": HistoryBuffer([7.1, 6.9, 6.8]), "train/lr": HistoryBuffer([0.03])}, "runtime_info": {"epoch": 200, "iter": 1000}}
    obj = {"meta": meta, "state_dict": OrderedDict(m.state_dict()), "message_hub": hub, "param_schedulers": [{"T_max": 200, "eta_min": 0.0}]}
    out.append(("mmselfsup", "mmselfsup", "state_dict.backbone.", "imagenet", 64, m.backbone, obj))

    # VISSL: trunk._feature_blocks (an nn.ModuleDict of torchvision's modules), heads, classy_state_dict.
    resnet = ResNet([2, 2, 2, 2])
    randomise(resnet, gen)
    trunk = nn.Module()
    trunk._feature_blocks = nn.ModuleDict(OrderedDict(
        [("conv1", resnet.conv1), ("bn1", resnet.bn1), ("conv1_relu", nn.ReLU()), ("maxpool", resnet.maxpool)]
        + [(f"layer{i}", getattr(resnet, f"layer{i}")) for i in range(1, 5)]
        + [("avgpool", resnet.avgpool), ("flatten", nn.Flatten())]
    ))
    heads = nn.ModuleList([nn.Module()])
    heads[0].clf = nn.Sequential(nn.Linear(8 * W, 8 * W), nn.ReLU(), nn.Linear(8 * W, 16))
    model_sd = {"trunk": trunk.state_dict(), "heads": heads.state_dict()}
    obj = {"phase_idx": 199, "iteration": 100000, "type": "checkpoint", "iteration_num": 100000, "train_phase_idx": 99,
           "classy_state_dict": {"base_model": {"model": model_sd, "meta": {"model_version": 1}}, "optimizer": {"name": "sgd", "num_updates": 100000}, "loss": {}}}
    out.append(("vissl", "vissl", "classy_state_dict.base_model.model.trunk._feature_blocks.", "imagenet", 64, resnet, obj))

    # torchvision's state dict (a classifier, fc dropped).
    tv = ResNet([2, 2, 2, 2])
    randomise(tv, gen)
    out.append(("torchvision", "torchvision", "", "imagenet", 64, tv, tv.state_dict()))
    return out


def save(obj, path, legacy):
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)


def write_layouts(out, gen):
    expected = {}
    os.makedirs(f"{out}/layouts", exist_ok=True)
    for legacy in (False, True):
        fmt = "legacy" if legacy else "zip"
        for stem_name, layout, prefix, stem, size, encoder, obj in layouts(gen, legacy):
            name = f"{stem_name}.{fmt}.pth"
            save(obj, f"{out}/layouts/{name}", legacy)
            expected[name] = {"layout": layout, "prefix": prefix, "format": fmt, "input_size": size, "features": features(encoder, size, stem)}
    with open(f"{out}/layouts/expected.json", "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


def write_refusals(out, gen):
    """Files whose weights can be reached only through objects torch.load would call."""

    class Evil:
        def __init__(self, payload=None):
            self.payload = payload

        def __reduce__(self):
            if self.payload is None:
                return (os.system, ("echo pwned > /tmp/mixco-pwned",))
            # eval runs the command, then returns the state dict: the weights are on its path.
            return (eval, ("__import__('os').system('echo pwned > /tmp/mixco-pwned') or sd", {"sd": self.payload}))

    tv = ResNet([1, 1, 1, 1])
    randomise(tv, gen)
    # On the weights' path: refused.
    torch.save({"state_dict": Evil(tv.state_dict())}, f"{out}/malicious.pth.tar")
    # A whole pickled module (torch.save(model)): its weights sit inside a class mixco does not construct.
    torch.save(tv, f"{out}/whole_module.legacy.pth", _use_new_zipfile_serialization=False)
    # Beside the weights: the weights import, the payload is named and never run.
    torch.save({"state_dict": tv.state_dict(), "payload": Evil()}, f"{out}/payload_beside.pth.tar")


def write_reference(out, gen):
    """The fixtures earlier tests use: MoCo (ResNet-10, CIFAR stem), MoCo v1, torchvision in half precision."""
    expected = {}
    q = ResNet([1, 1, 1, 1], stem="cifar", fc=mlp)
    randomise(q, gen)
    moco = moco_like(q, gen)
    opt = trained(moco, gen)
    torch.save({"epoch": 200, "arch": "resnet18", "state_dict": Wrapped(moco).state_dict(), "optimizer": opt.state_dict()}, f"{out}/moco_r10w4.pth.tar")
    expected["moco_r10w4.pth.tar"] = {
        "tensors": summary({k[len("encoder_q."):]: v for k, v in moco.state_dict().items() if k.startswith("encoder_q.") and not k.startswith("encoder_q.fc.")}),
        "features": features(q, 32, "cifar"),
    }
    # MoCo v1: one linear projection (fc) per encoder; the backbone is imported.
    q1 = copy_of(q)
    q1.fc = nn.Linear(q1.feature_dim, 16)
    v1 = moco_like(q1, gen)
    torch.save({"epoch": 200, "arch": "resnet50", "state_dict": Wrapped(v1).state_dict()}, f"{out}/moco_v1_r10w4.pth.tar")
    expected["moco_v1_r10w4.pth.tar"] = {"features": features(q1, 32, "cifar")}

    tv = ResNet([1, 1, 1, 1], fc=lambda c: nn.Linear(c, 10))
    randomise(tv, gen)
    tv = tv.half().float()  # the values the half file holds, exactly
    torch.save(tv.half().state_dict(), f"{out}/torchvision_r10w4_half.pth")
    tv = tv.float()
    expected["torchvision_r10w4_half.pth"] = {
        "tensors": summary({k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}),
        "features": features(tv, 64, "imagenet"),
    }
    with open(f"{out}/expected.json", "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


def main(out):
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    write_reference(out, gen)
    write_refusals(out, gen)
    write_layouts(out, gen)


if __name__ == "__main__":
    main(sys.argv[1])
