"""Builds mixco's wheels from compiled binaries (`make wheel` calls it with
release builds; the wheel test in `make test` with the debug ones):

    python3 scripts/build_wheel.py --bin BIN --train-bin TRAIN_BIN --out dist

- `mixco-VERSION-py3-none-manylinux_2_N_x86_64.whl`: the `mixco` command (a
  small launcher, python/mixco) and the binary built without libtorch
  (`cargo build --no-default-features`: data, eval, export, zoo, plot,
  doctor). Requires `onnxruntime==1.31.1`; the extra `train` adds the two below.
- `mixco_train-VERSION-...whl`: the binary built with the trainer (links
  libtorch); requires `torch==2.11.0`, whose libtorch the launcher finds.

One wheel per platform serves every Python 3 (`py3-none`): the binaries do
not link Python. N is the newest glibc symbol version the binaries use (read
with objdump), so the manylinux tag is what they need, not a guess. Binaries
are stripped of debug information. Entries are written in sorted order with
a fixed timestamp, so the same binaries give the same wheel bytes.
"""
import argparse
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Licences of what the binaries embed (the charts' font), shipped in each
# wheel's .dist-info/licenses/ (PEP 639's place for them).
EMBEDDED_LICENCES = [os.path.join(ROOT, "evaluate", "fonts", "LICENSE-DejaVu.txt")]
ORT = "onnxruntime==1.31.1"
TORCH = "torch==2.11.0"
STAMP = (1980, 1, 1, 0, 0, 0)


def version():
    text = open(os.path.join(ROOT, "Cargo.toml")).read()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


def objdump(binary):
    """`objdump -p -T` of a binary: its NEEDED libraries and the symbol
    versions it uses, read once for both checks; None without objdump."""
    try:
        return subprocess.run(["objdump", "-p", "-T", binary], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def glibc_minor(dumps):
    """The newest GLIBC_2.N the binaries need (34 if objdump is missing)."""
    if any(d is None for d in dumps):
        return 34
    return max([17] + [int(m) for d in dumps for m in re.findall(r"GLIBC_2\.(\d+)", d)])


# The libraries a manylinux wheel may take from the system (PEP 600: glibc's
# and libgcc's); anything else must be inside the wheel or in a wheel it
# requires. maturin's wheel repair found liblzma here (now built in, xz2's
# "static" feature), which our tag had promised without checking.
SYSTEM_LIBS = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "libpthread.so.0", "libdl.so.2", "librt.so.1",
               "ld-linux-x86-64.so.2", "libstdc++.so.6"}
# The trainer's libtorch comes from the torch wheel it requires (the launcher
# puts torch/lib on the loader's path).
TORCH_LIBS = re.compile(r"^lib(torch|torch_cpu|torch_cuda|c10|c10_cuda|gomp-[0-9a-f]+|cudart)[.\w-]*\.so(\.\d+)*$")


def check_libraries(binary, dump, torch=False):
    """Refuses a binary that needs a shared library no manylinux system is
    sure to have (the NEEDED entries of its `dump`; skipped without objdump)."""
    needed = re.findall(r"^\s*NEEDED\s+(\S+)", dump or "", re.M)
    foreign = [n for n in needed if n not in SYSTEM_LIBS and not (torch and TORCH_LIBS.match(n))]
    if foreign:
        sys.exit(f"error: {binary} needs {', '.join(foreign)}, which a manylinux system need not have; link it statically")


def stripped(binary, tmp):
    out = os.path.join(tmp, os.path.basename(binary) + f".{len(os.listdir(tmp))}")
    if shutil.which("strip"):
        subprocess.run(["strip", "--strip-debug", "-o", out, binary], check=True)
    else:
        shutil.copyfile(binary, out)
    return out


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(out_dir, dist, ver, tag, files, metadata, entry_points=None):
    """files: (archive name, bytes, executable)."""
    info = f"{dist}-{ver}.dist-info"
    wheel = f"Wheel-Version: 1.0\nGenerator: mixco scripts/build_wheel.py\nRoot-Is-Purelib: false\nTag: {tag}\n"
    entries = list(files) + [(f"{info}/METADATA", metadata.encode(), False), (f"{info}/WHEEL", wheel.encode(), False)]
    entries += [(f"{info}/licenses/{os.path.basename(p)}", open(p, "rb").read(), False) for p in EMBEDDED_LICENCES]
    if entry_points:
        entries.append((f"{info}/entry_points.txt", entry_points.encode(), False))
    entries.sort(key=lambda e: e[0])
    record = "\n".join(record_line(n, d) for n, d, _ in entries) + f"\n{info}/RECORD,,\n"
    entries.append((f"{info}/RECORD", record.encode(), False))
    path = os.path.join(out_dir, f"{dist}-{ver}-{tag}.whl")
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for name, data, executable in entries:
            zi = zipfile.ZipInfo(name, STAMP)
            zi.external_attr = ((0o755 if executable else 0o644) | 0o100000) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    os.replace(tmp, path)
    return path


def metadata(name, ver, summary, requires, extras=()):
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {ver}", f"Summary: {summary}",
             "License: MIT OR Apache-2.0", "Requires-Python: >=3.8"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    for extra, reqs in extras:
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", required=True, help="the binary built with --no-default-features")
    p.add_argument("--train-bin", help="the binary built with the trainer (libtorch)")
    p.add_argument("--out", default="dist")
    a = p.parse_args()
    ver = version()
    os.makedirs(a.out, exist_ok=True)
    binaries = [a.bin] + ([a.train_bin] if a.train_bin else [])
    dumps = {b: objdump(b) for b in binaries}
    check_libraries(a.bin, dumps[a.bin])
    if a.train_bin:
        check_libraries(a.train_bin, dumps[a.train_bin], torch=True)
    tag = f"py3-none-manylinux_2_{glibc_minor(list(dumps.values()))}_x86_64"
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        pkg = os.path.join(ROOT, "python", "mixco")
        files = [(f"mixco/{f}", open(os.path.join(pkg, f), "rb").read(), False) for f in sorted(os.listdir(pkg)) if f.endswith(".py")]
        files.append(("mixco/bin/mixco", open(stripped(a.bin, tmp), "rb").read(), True))
        md = metadata("mixco", ver, "MixCo and friends: self-supervised visual representation learning, from data to evaluated encoder",
                      [ORT], [("train", [f"mixco-train=={ver}", TORCH])])
        written.append(write_wheel(a.out, "mixco", ver, tag, files, md, "[console_scripts]\nmixco = mixco._launch:main\n"))
        if a.train_bin:
            init = b'"""The libtorch-linked mixco binary, run by the `mixco` command of the mixco wheel."""\n'
            files = [("mixco_train/__init__.py", init, False), ("mixco_train/bin/mixco", open(stripped(a.train_bin, tmp), "rb").read(), True)]
            md = metadata("mixco-train", ver, "mixco's trainer (links the libtorch of torch==2.11.0)", [TORCH, f"mixco=={ver}"])
            written.append(write_wheel(a.out, "mixco_train", ver, tag, files, md))
    for w in written:
        print(f"{w}: {os.path.getsize(w) / 1e6:.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
