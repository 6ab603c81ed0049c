#!/usr/bin/env bash
# The artefacts of one binary, for proving that a refactor keeps bytes and
# numbers: 2-epoch MoCo-v2 + MixCo and SimCLR + MixCo synthetic runs
# (checkpoints, logs, curves), their ONNX exports (verified), eval reports
# and charts, mixco plot, and eval --transfer over a data root (CIFAR-10,
# CIFAR-100, Tiny ImageNet; cut sets accepted). Always written into the same
# folder (paths end up in outputs), then moved to DEST.
#   scripts/same-bytes.sh OLD_BINARY refs/before; scripts/same-bytes.sh NEW_BINARY refs/after
#   python3 scripts/same_bytes_compare.py refs/before refs/after
# Session 11 used it for every part of issue 23 (docs: its closing note).
set -euo pipefail
bin=$(realpath "$1"); dest=$(realpath -m "$2"); root=${MIXCO_DATA:-}
out=${TMPDIR:-/tmp}/mixco-same-bytes; rm -rf "$out" "$dest"; mkdir -p "$out"; trap 'mv "$out" "$dest"' EXIT
data=(--dataset synthetic --synthetic-train 600 --synthetic-test 200)
common=(--arch resnet10 --width 8 --epochs 2 --batch-size 64 --knn-k 20 --threads 2)
"$bin" train "${data[@]}" "${common[@]}" --method moco-v2 --mixco --queue-size 256 -o "$out/moco" > "$out/moco.stdout" 2> "$out/moco.stderr"
"$bin" train "${data[@]}" "${common[@]}" --method simclr --mixco -o "$out/simclr" > "$out/simclr.stdout" 2> "$out/simclr.stderr"
for m in moco simclr; do
  "$bin" export --onnx "$out/$m/final.safetensors" -o "$out/$m.onnx" --verify > "$out/$m.export.stdout" 2>&1
  "$bin" eval "$out/$m.onnx" "${data[@]}" --no-cache --json "$out/$m.eval.json" --png "$out/$m.eval.png" > "$out/$m.eval.stdout" 2>&1
  "$bin" plot "$out/$m" -o "$out/$m.plot.png" > /dev/null 2>&1 || true
done
if [ -n "$root" ]; then
  "$bin" eval "$out/moco.onnx" --transfer --cut-data --root "$root" --cache-dir "$out/cache" --json "$out/transfer.json" \
      --csv "$out/transfer.csv" --markdown "$out/transfer.md" --png "$out/transfer.png" > "$out/transfer.stdout" 2>&1
fi
