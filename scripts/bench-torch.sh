#!/usr/bin/env bash
# mixco against the reference implementations, each comparison alternating
# runs on the same machine and threads (docs/BENCHMARKS.md):
#  1. the MoCo-v2 (+ MixCo) training step against PyTorch's reference step;
#  2. feature extraction (ONNX Runtime) against PyTorch eager inference of the
#     same weights;
#  3. the linear probe against scikit-learn on the same CIFAR-10 features and
#     on synthetic features of CIFAR-100's and Tiny ImageNet's shapes.
# Run through `make bench-torch`; a checkpoint trained on CIFAR-10 is needed
# for 2 and 3 (default: the first data point's MoCo-v2 run, see RESULTS.md).
set -euo pipefail
mixco=${1:-target/release/mixco}
ck=${2:-runs/first-point/moco-v2/final.safetensors}
: "${MIXCO_DATA:?set MIXCO_DATA to the data root holding cifar-10-batches-bin/}"
py=.venv-bench/bin/python
threads=${THREADS:-2}
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== 1. training step (ResNet-18 width 16, batch 256, CPU)"
$py benches/compare_train.py "$mixco" --rounds 3 --threads "$threads"
echo "== 2. feature extraction (batch 256, 32 px)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$mixco" export --onnx "$ck" -o "$work/encoder.onnx"
for i in 1 2 3; do
    "$mixco" bench eval "$work/encoder.onnx" --threads "$threads" --batch-size 256
    $py benches/torch_features.py "$ck" --threads "$threads"
    $py benches/torch_features.py "$ck" --threads "$threads" --channels-last
done
echo "== 3. linear probe (mixco bench probe vs scikit-learn, same protocol, same features)"
"$mixco" eval "$work/encoder.onnx" --dataset cifar10 --baseline none --threads "$threads" \
    --json "$work/eval.json" --dump-features "$work/npy"
THREADS=$threads scripts/bench-probe.sh "$mixco" "$py" "$work/npy"
