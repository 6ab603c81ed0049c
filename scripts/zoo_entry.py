"""Prints a zoo manifest entry for a finished run and stages its release
assets (NAME.safetensors, NAME.onnx) under dist/zoo/ for upload.

    python3 scripts/zoo_entry.py NAME RUN_DIR EVAL.json [--description TEXT]

RUN_DIR holds final.safetensors and encoder.onnx; EVAL.json is what
`mixco eval ENCODER --json` wrote for it (its first result is the model).
Everything else (method, architecture, data, epochs) is read from the
checkpoint's own metadata, so the entry cannot disagree with the file.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mixco_report import load_reports  # noqa: E402

BASE = "https://github.com/mixco-rs/mixco/releases/download/models-v0.1"

p = argparse.ArgumentParser()
p.add_argument("name")
p.add_argument("run")
p.add_argument("eval")
p.add_argument("--description", default="")
p.add_argument("--dist", default="dist/zoo")
a = p.parse_args()

ck = os.path.join(a.run, "final.safetensors")
onnx = os.path.join(a.run, "encoder.onnx")
with open(ck, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    meta = json.loads(f.read(n)).get("__metadata__", {})
cfg = json.loads(meta.get("hparams", "{}"))
reports = load_reports(a.eval)


def field(*keys):
    for k in keys:
        if k in meta:
            return meta[k]
        if k in cfg:
            return cfg[k]
    raise SystemExit(f"{ck}: metadata has none of {keys}")


os.makedirs(a.dist, exist_ok=True)
files = []
for kind, src, ext in [("checkpoint", ck, "safetensors"), ("onnx", onnx, "onnx")]:
    dst = os.path.join(a.dist, f"{a.name}.{ext}")
    shutil.copyfile(src, dst)
    data = open(dst, "rb").read()
    files.append((kind, f"{BASE}/{a.name}.{ext}", len(data), hashlib.sha256(data).hexdigest()))

mixco = str(field("mixco")).lower() == "true"
lines = [
    "[[model]]",
    f'name = "{a.name}"',
    f'description = "{a.description}"',
    f'method = "{field("method")}"',
    f"mixco = {'true' if mixco else 'false'}",
    f'arch = "{field("arch")}"',
    f"width = {field('width')}",
    f'stem = "{field("stem")}"',
    f'dataset = "{field("dataset")}"',
    f"epochs = {cfg['epochs'] if 'epochs' in cfg else field('epochs')}",
]
for kind, url, size, sha in files:
    lines += ["[[model.file]]", f'kind = "{kind}"', f'urls = ["{url}"]', f"size = {size}", f'sha256 = "{sha}"']
for report in reports:
    res = report["results"][0]
    metrics = [("linear", res["linear"]["top1"])] + [(f"knn{k}", v) for k, v in res["knn_top1"]]
    for probe, v in metrics:
        lines += ["[[model.metric]]", f'dataset = "{report["dataset"]}"', f'probe = "{probe}"', f"top1 = {100 * v:.2f}"]
print("\n".join(lines) + "\n")
