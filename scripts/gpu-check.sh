#!/usr/bin/env bash
# The GPU checks of issues 3 and 7 as one prepared run: the device machine is
# lent for 15 minutes in all (start-up included), so everything is built and
# packed here and the run there is bounded by timeouts.
#
#   here:  scripts/gpu-check.sh prepare DATA     # DATA holds cifar-10-batches-bin/
#          -> runs/gpu-carry/: stripped release binary, ONNX Runtime, CIFAR-10 subset (< 64 MiB)
#   there: scripts/gpu-check.sh run              # device tool: carry ["runs/gpu-carry"]; writes to $OUT
#
# The subset is the first 15,000 training images (data_batch_1 whole,
# data_batch_2 cut to 5,000 records, batches 3-5 to one record each because
# the reader wants every file; training uses --train-limit 15000, the probe
# sees all 15,003) and the first 5,000 test images.
#
# `run` records: the card, `mixco doctor` (the run-time load of
# libtorch_cuda), images/s of the training step against the bare encoder
# passes (ResNet-18 at width 64 and 16, bf16 and float32), and MoCo-v2
# against MoCo-v2 + MixCo (mix T 0.05 and 0.2) after the same epochs: the
# trainer's kNN monitor per epoch and `mixco eval` (linear probe, kNN) at the
# end. Knobs for a dry run on the CPU: DEVICE=cpu WIDTH=8 LIMIT=512 EPOCHS=1
# ITERS=2 TRAIN_TIMEOUT=60. The numbers are gathered in $OUT/summary.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
carry=$here/runs/gpu-carry

prepare() {
    local data=${1:?usage: scripts/gpu-check.sh prepare DATA}
    local src=$data/cifar-10-batches-bin rec=3073
    [ -f "$src/data_batch_1.bin" ] || { echo "error: $src/data_batch_1.bin not found" >&2; exit 2; }
    local ort
    ort=$(ls "$here"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -1)
    [ -n "$ort" ] || { echo "error: no ONNX Runtime in .venv (run make venv)" >&2; exit 2; }
    [ -x "$here/target/release/mixco" ] || { echo "error: build first: cargo build --release" >&2; exit 2; }
    local tmp
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' RETURN
    mkdir -p "$tmp/data/cifar-10-batches-bin"
    local d=$tmp/data/cifar-10-batches-bin
    cp "$src/data_batch_1.bin" "$d/"
    head -c $((5000 * rec)) "$src/data_batch_2.bin" > "$d/data_batch_2.bin"
    for i in 3 4 5; do head -c $rec "$src/data_batch_$i.bin" > "$d/data_batch_$i.bin"; done
    head -c $((5000 * rec)) "$src/test_batch.bin" > "$d/test_batch.bin"
    [ -f "$src/batches.meta.txt" ] && cp "$src/batches.meta.txt" "$d/"
    cp "$here/target/release/mixco" "$tmp/mixco"
    strip "$tmp/mixco"
    cp "$ort" "$tmp/libonnxruntime.so"
    rm -rf "$carry.tmp" && mkdir -p "$carry.tmp"
    # xz: the raw files come to ~100 MiB, over the device tool's 64 MiB
    tar -C "$tmp" -cf - data mixco libonnxruntime.so | xz -T0 -6 > "$carry.tmp/bundle.tar.xz"
    rm -rf "$carry" && mv "$carry.tmp" "$carry"
    du -h "$carry/bundle.tar.xz"
}

run() {
    local out=${OUT:?set OUT (the device tool sets it)}
    local device=${DEVICE:-cuda} width=${WIDTH:-64} limit=${LIMIT:-15000} epochs=${EPOCHS:-}
    local iters=${ITERS:-30} bench_timeout=${BENCH_TIMEOUT:-60}
    local train_budget=${TRAIN_BUDGET:-90} train_timeout=${TRAIN_TIMEOUT:-120}
    local work
    work=$(mktemp -d)
    tar -C "$work" -xJf "$carry/bundle.tar.xz"
    local mixco=$work/mixco
    export MIXCO_DATA=$work/data MIXCO_ORT_LIB=$work/libonnxruntime.so MIXCO_CACHE=$work/cache
    if [ "$device" != cpu ]; then
        local torch
        torch=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
        export LD_LIBRARY_PATH=$torch/lib:${LD_LIBRARY_PATH:-}
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/card.txt"
        python3 -c 'import torch;print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$out/card.txt"
    fi
    nproc | sed 's/^/cpu cores: /' | tee -a "$out/card.txt"
    "$mixco" doctor 2>&1 | tee "$out/doctor.txt"

    # speed: bare forward/backward against full steps (bf16 is the CUDA default)
    local specs=("$width true" "$width false" "16 true")
    for spec in "${specs[@]}"; do
        set -- $spec
        local tag=r18w$1-bf16-$2
        timeout "$bench_timeout" "$mixco" bench train --device "$device" --arch resnet18 --width "$1" --batch-size 256 \
            --bf16 "$2" --iters "$iters" --json > "$out/bench-$tag.json" 2> "$out/bench-$tag.err" \
            || echo "bench $tag: rc $?" | tee -a "$out/failures.txt"
        cat "$out/bench-$tag.json"
    done

    # data-parallel on the card (issue 20): 2 ranks with Gloo over CUDA tensors
    # on one GPU (cuda:0 for both), against 1 process, same global batch
    if [ "$device" != cpu ]; then
        timeout "$bench_timeout" "$mixco" bench train --device cuda:0 --arch resnet18 --width "$width" --batch-size 256 \
            --iters "$iters" --nproc-per-node 2 --json > "$out/bench-dist2.json" 2> "$out/bench-dist2.err" \
            || echo "bench dist2: rc $?" | tee -a "$out/failures.txt"
        cat "$out/bench-dist2.json"
    fi

    # epochs: what the measured MixCo step rate fits into the training budget
    # (0.6 for augmentation, the kNN monitor and start-up), so that every run
    # reaches the same epoch
    if [ -z "$epochs" ]; then
        epochs=$(python3 - "$out/bench-r18w$width-bf16-true.json" "$train_budget" "$limit" <<'PY'
import json, sys
try:
    rows = json.load(open(sys.argv[1]))
    ips = next(r["images_per_s"] for r in rows if r["what"] == "moco-v2 + MixCo: full step")
except Exception:
    ips = 0
print(max(1, min(50, int(float(sys.argv[2]) * ips * 0.6 / int(sys.argv[3])))))
PY
)
    fi
    echo "epochs: $epochs" | tee -a "$out/card.txt"

    # accuracy after the same epochs; SIGINT keeps last.safetensors if a run is cut
    local common=(--dataset cifar10 --cut-data --device "$device" --arch resnet18 --width "$width" --stem cifar
                  --batch-size 256 --epochs "$epochs" --train-limit "$limit" --lr 0.06 --key-momentum 0.99
                  --queue-size 4096 --knn-every 1)
    declare -A runs=([moco-v2]="--method moco-v2" [mixco-t0.05]="--method moco-v2 --mixco"
                     [mixco-t0.2]="--method moco-v2 --mixco --mix-temperature 0.2")
    for name in moco-v2 mixco-t0.05 mixco-t0.2; do
        local dir=$out/$name
        # shellcheck disable=SC2086
        /usr/bin/time -f "$name: %e s wall" -a -o "$out/wall-times.txt" \
            timeout -s INT "$train_timeout" "$mixco" train "${common[@]}" ${runs[$name]} --output "$dir" \
            > "$out/train-$name.log" 2>&1 || echo "train $name: rc $?" | tee -a "$out/failures.txt"
        tail -n 3 "$out/train-$name.log"
        local ckpt=$dir/final.safetensors
        [ -f "$ckpt" ] || ckpt=$dir/last.safetensors
        [ -f "$ckpt" ] || continue
        rm -f "$dir"/epoch-*.safetensors
        "$mixco" export --onnx "$ckpt" -o "$dir/encoder.onnx" > /dev/null
        timeout 180 "$mixco" eval "$dir/encoder.onnx" --dataset cifar10 --cut-data --baseline none --json "$out/eval-$name.json" \
            || echo "eval $name: rc $?" | tee -a "$out/failures.txt"
    done
    python3 "$here/scripts/gpu_summary.py" "$out" | tee "$out/summary.md"
    rm -rf "$work"
}

case "${1:-}" in
    prepare) shift; prepare "$@" ;;
    run) run ;;
    *) echo "usage: scripts/gpu-check.sh prepare DATA | run" >&2; exit 2 ;;
esac
