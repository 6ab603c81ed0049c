#!/usr/bin/env bash
# Images/s of mixco eval's feature extraction at 224 px (ImageNet-stem ResNets), 2 threads.
set -euo pipefail
cd "$(dirname "$0")/.."
b=${1:-target/debug/mixco}; mkdir -p "${OUT:-runs/zoo-cost}"
for arch in resnet18 resnet50; do
  o=${OUT:-runs/zoo-cost}/$arch
  rm -rf $o
  $b train --dataset synthetic --synthetic-train 64 --synthetic-test 16 --arch $arch --width 64 --stem imagenet --input-size 224 \
    --epochs 1 --batch-size 8 --bn-splits 2 --queue-size 64 --knn-every 0 --threads 2 -o $o > /dev/null 2>&1
  $b export --onnx $o/final.safetensors -o $o/enc.onnx > /dev/null
  $b eval $o/enc.onnx --dataset synthetic --synthetic-train 512 --synthetic-test 128 --baseline none --no-cache --threads 2 --batch-size 64 --json $o/eval.json > /dev/null 2>&1
  python3 -c "import json; r=json.load(open('$o/eval.json')); s=r['results'][0]['seconds']['features']; print('$arch', 'features of 640 images at 224 px:', round(s,2), 's =', round(640/s,1), 'images/s')"
done
