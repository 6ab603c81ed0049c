#!/usr/bin/env bash
# The wheels as a user installs them (part of `make test`): built from the
# debug binaries the tests already built, installed into a fresh venv with
# only onnxruntime beside them, then `mixco zoo import`, `export` and `eval`
# there must give the source build's numbers, with no Rust or torch on PATH.
# Then torch is added as requirements.txt adds it (--no-deps: the same
# torch 2.11.0 and CUDA-runtime files, linked from the project venv so that
# CI does not unpack 2 GB again) with the train wheel, and `mixco train`
# runs one epoch. Prints each step's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
src=target/debug/mixco
out=target/wheel-test
rm -rf "$out"
mkdir -p "$out"
# A command's output kept in a file, shown if it fails.
quiet() { "$@" > "$out/step.log" 2>&1 || { cat "$out/step.log" >&2; return 1; }; }
step() { local t=$EPOCHREALTIME; "$@"; awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "  (%.1f s)\n", b - a }'; }
echo "wheel test: building the wheels from the debug binaries"
step $py scripts/build_wheel.py --bin target/debug/mixco-notorch --train-bin "$src" --out "$out/dist"
# The oldest glibc the wheels promise (README: Ubuntu 22.04, Debian 12, RHEL 9):
# one new libm symbol (f64::hypot is GLIBC_2.35) once raised the tag unnoticed.
for w in "$out"/dist/*.whl; do
  minor=$(basename "$w" | sed -n 's/.*manylinux_2_\([0-9]*\)_x86_64.whl/\1/p')
  [ -n "$minor" ] && [ "$minor" -le 34 ] || { echo "error: $w needs glibc 2.${minor:-?}; the wheels promise 2.34 (objdump -T the binary | grep GLIBC_2.3)" >&2; exit 1; }
done
echo "wheel test: a fresh venv with the mixco wheel and onnxruntime only"
step $py -m venv "$out/venv"
site=$("$out/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
step "$out/venv/bin/pip" install -q --disable-pip-version-check --no-deps "$out"/dist/mixco-0*.whl onnxruntime==1.31.1
# No Rust, no compiler and no torch on the path: only the venv and the system.
run() { env -i HOME="$HOME" PATH="$PWD/$out/venv/bin:/usr/bin:/bin" "$@"; }
if run "$out/venv/bin/python" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("torch") is not None)'; then :; else echo "error: torch is importable in the wheel venv" >&2; exit 1; fi
run mixco doctor > "$out/doctor.txt"
grep -q "installed:    from the mixco 0.1.0 wheel" "$out/doctor.txt" && grep -q "ONNX Runtime: $PWD/$out/venv" "$out/doctor.txt" \
  || { cat "$out/doctor.txt"; echo "error: doctor does not name the wheel and the venv's ONNX Runtime" >&2; exit 1; }
if run mixco train --dataset synthetic 2> "$out/train.err"; then echo "error: train ran without torch" >&2; exit 1; fi
grep -q "pip install 'mixco\[train\]'" "$out/train.err" || { cat "$out/train.err"; exit 1; }
data=(--dataset synthetic --synthetic-train 400 --synthetic-test 200 --no-cache)
step quiet run mixco zoo import zoo/tests/fixtures/moco_r10w4.pth.tar -o "$out/m.safetensors"
step quiet run mixco export --onnx "$out/m.safetensors" -o "$out/m.onnx"
step quiet run mixco eval "$out/m.onnx" "${data[@]}" --json "$out/wheel.json"
"$src" eval "$out/m.onnx" "${data[@]}" --json "$out/source.json" > /dev/null
$py - "$out/wheel.json" "$out/source.json" <<'PY'
import json, sys
def numbers(path):
    r = json.load(open(path))
    return [(m["model"], m["sha256"], m["linear"]["top1"], m["knn_top1"]) for m in r["results"]]
a, b = numbers(sys.argv[1]), numbers(sys.argv[2])
if a != b:
    sys.exit(f"error: the wheel's numbers {a} differ from the source build's {b}")
print(f"wheel test: eval numbers equal the source build's ({a[0][0]}: linear {a[0][2]:.4f}, kNN {a[0][3]})")
PY
echo "wheel test: torch added (--no-deps, as requirements.txt) and the train wheel"
venv_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for pkg in torch nvidia; do ln -s "$venv_site/$pkg" "$site/$pkg"; done
step "$out/venv/bin/pip" install -q --disable-pip-version-check --no-deps "$out"/dist/mixco_train-*.whl
step quiet run mixco train --dataset synthetic --synthetic-train 64 --synthetic-test 32 --arch resnet10 --width 4 --batch-size 16 \
    --bn-splits 2 --queue-size 32 --epochs 1 --threads 1 --output "$out/run"
test -f "$out/run/final.safetensors"
run mixco doctor > "$out/doctor-train.txt"
grep -q "mixco-train 0.1.0" "$out/doctor-train.txt" && grep -q "libtorch:     linked, loaded from .*/torch/lib/libtorch_cpu.so" "$out/doctor-train.txt" \
  || { cat "$out/doctor-train.txt"; echo "error: doctor does not name the train wheel and its libtorch" >&2; exit 1; }
echo "wheel test: ok ($(du -m "$out"/dist/mixco-0*.whl | cut -f1) MB + $(du -m "$out"/dist/mixco_train-*.whl | cut -f1) MB debug wheels)"
