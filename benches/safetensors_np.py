"""A mixco checkpoint (safetensors) as (metadata, {name: torch tensor}),
without the safetensors package: 8-byte header length, JSON header, data."""
import json
import struct

import numpy as np
import torch

DTYPES = {"F32": np.float32, "I64": np.int64}


def read(path):
    buf = open(path, "rb").read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    meta = header.pop("__metadata__", {})
    tensors = {}
    for k, v in header.items():
        s, e = v["data_offsets"]
        tensors[k] = torch.from_numpy(np.frombuffer(buf[8 + n + s:8 + n + e], dtype=DTYPES[v["dtype"]]).reshape(v["shape"]).copy())
    return meta, tensors
