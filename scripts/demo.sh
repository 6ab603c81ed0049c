#!/usr/bin/env bash
# The main job on the embedded synthetic dataset (no downloads): pre-train a
# small MoCo-v2 + MixCo encoder for about two minutes on the CPU, export it
# to ONNX (checked against libtorch), and evaluate it with a linear probe and
# kNN against the same architecture at its random initialisation.
set -euo pipefail
mixco=${1:-target/debug/mixco}
out=${DEMO_OUT:-runs/demo}
data=(--dataset synthetic --synthetic-train 5000 --synthetic-test 1000)
rm -rf "$out"
mkdir -p "$out"
echo "== 1/3 pre-training ResNet-10 (width 16) with MoCo-v2 + MixCo on the embedded synthetic shapes"
"$mixco" data preview synthetic -o "$out/synthetic.png" >/dev/null
"$mixco" train "${data[@]}" --method moco-v2 --mixco --mix-temperature 0.2 \
    --arch resnet10 --width 16 --epochs 12 --batch-size 128 --queue-size 1024 \
    --knn-k 20 --output "$out"
echo "== 2/3 exporting the encoder to ONNX"
"$mixco" export --onnx "$out/final.safetensors" -o "$out/encoder.onnx" --verify
echo "== 3/3 evaluating with ONNX Runtime: linear probe and kNN, trained against random"
"$mixco" eval "$out/encoder.onnx" "${data[@]}" --json "$out/eval.json" --png "$out/eval.png"
echo "== files in $out: final.safetensors, encoder.onnx, eval.json, eval.png/.svg (bars), log.jsonl,"
echo "   curves.png/.svg, events.out.tfevents.* (tensorboard --logdir $(dirname "$out")), synthetic.png"
