#!/usr/bin/env bash
# The benchmarks of docs/BENCHMARKS.md. Needs the real datasets under
# $MIXCO_DATA (see docs/DATA.md); run through `make bench`.
set -euo pipefail
mixco=${1:-target/release/mixco}
: "${MIXCO_DATA:?set MIXCO_DATA to the data root holding cifar-10-batches-bin/ and tiny-imagenet-200/}"
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== dataset loading"
"$mixco" bench data cifar10
"$mixco" bench data tinyimagenet
echo "== training step (CPU)"
"$mixco" bench train --method moco-v2 --arch resnet18 --width 16 --batch-size 256 --device cpu
"$mixco" bench train --method simclr --arch resnet18 --width 16 --batch-size 256 --device cpu
echo "== linear probe at CIFAR-100's and Tiny ImageNet's feature shapes (synthetic clusters)"
"$mixco" bench probe --synthetic 50000x128x100
"$mixco" bench probe --synthetic 100000x128x200
