"""Writes the MoCo v1 layout fixture from the MoCo v2 one, without torch.

    python3 scripts/derive_moco_v1_fixture.py zoo/tests/fixtures

MoCo v1 checkpoints differ from v2 only in the projection: one linear layer
(`encoder_q.fc.weight`, `encoder_q.fc.bias`) instead of the MLP (`fc.0`,
`fc.2`). This reads `moco_r10w4.pth.tar` (written by PyTorch through
scripts/make_import_fixtures.py), swaps the MLP for a seeded linear layer in
both encoders, and writes `moco_v1_r10w4.pth.tar` in torch.save's zip format
with the same pickle structures (`torch._utils._rebuild_tensor_v2`, storages
as persistent ids). The backbone tensors are byte for byte the v2 file's, so
PyTorch's features for them (in expected.json) are the v1 file's too.
"""
import collections
import io
import json
import os
import pickle
import random
import struct
import sys
import types
import zipfile


class Storage:
    def __init__(self, kind, key, numel, data):
        self.kind, self.key, self.numel, self.data = kind, key, numel, data


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        return (rebuild_tensor_v2, (self.storage, self.offset, tuple(self.size), tuple(self.stride), False, collections.OrderedDict()))


# The names torch.save's pickle refers to, so that pickle writes them as GLOBALs.
torch = types.ModuleType("torch")
utils = types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
torch._utils = utils


def rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks):
    return Tensor(storage, offset, size, stride)


rebuild_tensor_v2.__module__, rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
utils._rebuild_tensor_v2 = rebuild_tensor_v2
STORAGE_TYPES = {}
for name in ["FloatStorage", "LongStorage", "HalfStorage"]:
    cls = type(name, (), {"__module__": "torch"})
    setattr(torch, name, cls)
    STORAGE_TYPES[name] = cls


class Reader(pickle.Unpickler):
    def __init__(self, data, zf, prefix):
        super().__init__(io.BytesIO(data))
        self.zf, self.prefix = zf, prefix

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor_v2
        if module == "torch" and name in STORAGE_TYPES:
            return STORAGE_TYPES[name]
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"{module}.{name} is not expected in this fixture")

    def persistent_load(self, pid):
        _, kind, key, _, numel = pid
        return Storage(kind, key, numel, self.zf.read(f"{self.prefix}/data/{key}"))


class Writer(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.kind, obj.key, "cpu", obj.numel)
        return None


def floats(values):
    return struct.pack(f"<{len(values)}f", *values)


def main(folder):
    src = os.path.join(folder, "moco_r10w4.pth.tar")
    with zipfile.ZipFile(src) as zf:
        prefix = zf.namelist()[0].split("/")[0]
        root = Reader(zf.read(f"{prefix}/data.pkl"), zf, prefix).load()
    state = root["state_dict"]
    rng = random.Random(7)
    keys = [int(t.storage.key) for t in state.values() if isinstance(t, Tensor)]
    next_key = max(keys) + 1
    v1 = collections.OrderedDict()
    for k, t in state.items():
        head = ".fc." in k
        if head and k.endswith("fc.0.weight"):
            enc = k.split(".fc.")[0]
            dim, width = 16, t.size[1]
            w = Storage(STORAGE_TYPES["FloatStorage"], str(next_key), dim * width, floats([rng.gauss(0, 0.2) for _ in range(dim * width)]))
            b = Storage(STORAGE_TYPES["FloatStorage"], str(next_key + 1), dim, floats([rng.gauss(0, 0.2) for _ in range(dim)]))
            next_key += 2
            v1[f"{enc}.fc.weight"] = Tensor(w, 0, [dim, width], [width, 1])
            v1[f"{enc}.fc.bias"] = Tensor(b, 0, [dim], [1])
        elif not head:
            v1[k] = t
    root = {"epoch": 200, "arch": "resnet50", "state_dict": v1}
    buf = io.BytesIO()
    Writer(buf, protocol=2).dump(root)
    out = os.path.join(folder, "moco_v1_r10w4.pth.tar")
    name = "moco_v1_r10w4"
    storages = {t.storage.key: t.storage for t in v1.values()}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{name}/data.pkl", buf.getvalue())
        zf.writestr(f"{name}/byteorder", "little")
        for key in sorted(storages, key=int):
            zf.writestr(f"{name}/data/{key}", storages[key].data)
        zf.writestr(f"{name}/version", "3\n")
    expected_path = os.path.join(folder, "expected.json")
    expected = json.load(open(expected_path))
    expected["moco_v1_r10w4.pth.tar"] = expected["moco_r10w4.pth.tar"]  # the same backbone, so PyTorch's same features
    with open(expected_path, "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
    print(f"wrote {out} ({len(v1)} entries; fc.0/fc.2 replaced by one fc)")


if __name__ == "__main__":
    main(sys.argv[1])
