#!/usr/bin/env bash
# The main job on the embedded synthetic dataset (no downloads): pre-train a
# small MoCo-v2 + MixCo encoder for about two minutes on the CPU and compare
# it with the same encoder at its random initialisation.
set -euo pipefail
mixco=${1:-target/debug/mixco}
out=${DEMO_OUT:-runs/demo}
rm -rf "$out"
mkdir -p "$out"
echo "== the embedded synthetic dataset (5,000 training, 1,000 test images)"
"$mixco" data preview synthetic -o "$out/synthetic.png"
echo "== pre-training ResNet-10 (width 16) with MoCo-v2 + MixCo"
"$mixco" train --dataset synthetic --synthetic-train 5000 --synthetic-test 1000 \
    --method moco-v2 --mixco --mix-temperature 0.2 \
    --arch resnet10 --width 16 --epochs 12 --batch-size 128 --queue-size 1024 \
    --knn-k 20 --output "$out"
echo "== files: $out/final.safetensors (checkpoint), $out/log.jsonl, $out/curves.svg, $out/synthetic.png"
