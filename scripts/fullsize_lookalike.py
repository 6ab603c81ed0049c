"""Full-size stand-ins for CIFAR-100 and Tiny ImageNet, in their official
layouts, built from the real samples in shared/datasets (the complete sets
cannot be downloaded here): for timing `mixco eval --transfer` at the real
sizes, not for accuracy (images repeat).

  CIFAR-100: the 5,000 + 1,000 sample records, each repeated 10 times
             (50,000 + 10,000 records, the official sizes).
  Tiny ImageNet: 200 classes (the sample's 20 real wnids and 180 made-up
             ones), 500 training and 50 validation JPEGs each (hard links to
             the sample's real JPEGs, cycled): 100,000 + 10,000 images.

    python3 scripts/fullsize_lookalike.py SAMPLE_ROOT OUT_ROOT
"""
import os
import shutil
import sys

src, out = sys.argv[1], sys.argv[2]
c100_src, c100 = os.path.join(src, "cifar-100-binary"), os.path.join(out, "cifar-100-binary")
os.makedirs(c100, exist_ok=True)
for name in os.listdir(c100_src):
    data = open(os.path.join(c100_src, name), "rb").read()
    if name.endswith(".bin"):
        data *= 10
    open(os.path.join(c100, name), "wb").write(data)

t_src, t = os.path.join(src, "tiny-imagenet-200"), os.path.join(out, "tiny-imagenet-200")
shutil.rmtree(t, ignore_errors=True)
real = [w.strip() for w in open(os.path.join(t_src, "wnids.txt")) if w.strip()]
wnids = real + [f"n9{i:07d}" for i in range(200 - len(real))]
train_jpegs = sorted(
    os.path.join(root, f) for root, _, files in os.walk(os.path.join(t_src, "train")) for f in files if f.endswith(".JPEG")
)
val_jpegs = sorted(os.path.join(t_src, "val", "images", f) for f in os.listdir(os.path.join(t_src, "val", "images")))
os.makedirs(os.path.join(t, "val", "images"))
with open(os.path.join(t, "wnids.txt"), "w") as f:
    f.write("".join(w + "\n" for w in wnids))
shutil.copy(os.path.join(t_src, "words.txt"), os.path.join(t, "words.txt"))
k = 0
ann = []
for ci, w in enumerate(wnids):
    d = os.path.join(t, "train", w, "images")
    os.makedirs(d)
    for i in range(500):
        os.link(train_jpegs[k % len(train_jpegs)], os.path.join(d, f"{w}_{i}.JPEG"))
        k += 1
    for i in range(50):
        name = f"val_{ci * 50 + i}.JPEG"
        os.link(val_jpegs[(ci * 50 + i) % len(val_jpegs)], os.path.join(t, "val", "images", name))
        ann.append(f"{name}\t{w}\t0\t0\t63\t63\n")
with open(os.path.join(t, "val", "val_annotations.txt"), "w") as f:
    f.write("".join(ann))
print(f"wrote {c100} (50,000 + 10,000 records) and {t} (200 classes, 100,000 + 10,000 JPEGs)")
