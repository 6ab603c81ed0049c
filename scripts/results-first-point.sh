#!/usr/bin/env bash
# Issue 7's first data point on the real CIFAR-10: ResNet-18 width 16, cifar
# stem, batch 256, K 4096, lr 0.06 cosine, key momentum 0.99, 3 epochs, seed 0;
# MoCo-v2, MoCo-v2 + MixCo at the paper's mix temperature 0.05, and at 0.2.
# Then linear probe and kNN on CIFAR-10 test for each (plus the random encoder).
set -euo pipefail
mixco=${1:-target/release/mixco}
: "${MIXCO_DATA:?set MIXCO_DATA to the data root holding cifar-10-batches-bin/}"
out=${RESULTS_OUT:-runs/first-point}
common=(--dataset cifar10 --arch resnet18 --width 16 --stem cifar --batch-size 256 --queue-size 4096
        --lr 0.06 --key-momentum 0.99 --epochs 3 --seed 0 --method moco-v2)
run() {
    local name=$1; shift
    [ -f "$out/$name/final.safetensors" ] || /usr/bin/time -f "$name: %e s wall" "$mixco" train "${common[@]}" "$@" --output "$out/$name"
    "$mixco" export --onnx "$out/$name/final.safetensors" -o "$out/$name/encoder.onnx" --verify
}
run moco-v2
run mixco-t0.05 --mixco --mix-temperature 0.05
run mixco-t0.2 --mixco --mix-temperature 0.2
"$mixco" eval "$out/moco-v2/encoder.onnx" --dataset cifar10 --json "$out/eval-moco-v2.json"
for name in mixco-t0.05 mixco-t0.2; do
    "$mixco" eval "$out/$name/encoder.onnx" --dataset cifar10 --baseline none --json "$out/eval-$name.json"
done
