#!/usr/bin/env bash
# Issue 7's table on the real CIFAR-10: the first data point's setting
# (ResNet-18 width 16, cifar stem, batch 256, K 4096, lr 0.06 cosine, key
# momentum 0.99, 3 epochs unless the run says otherwise) for each run named
# on the command line, or all of them. Finished runs are skipped and stopped
# ones resumed, so the script can be stopped and rerun.
#   MIXCO_DATA=DATA scripts/results-sweep.sh [-b target/release/mixco] [RUN...]
set -euo pipefail
mixco=target/release/mixco
if [ "${1:-}" = -b ]; then mixco=$2; shift 2; fi
: "${MIXCO_DATA:?set MIXCO_DATA to the data root holding cifar-10-batches-bin/}"
out=${RESULTS_OUT:-runs/first-point}
mkdir -p "$out"
common=(--dataset cifar10 --arch resnet18 --width 16 --stem cifar --batch-size 256 --queue-size 4096
        --lr 0.06 --key-momentum 0.99)
declare -A flags=(
    [moco-v2]="--method moco-v2"
    [mixco-t0.05]="--method moco-v2 --mixco --mix-temperature 0.05"
    [mixco-t0.1]="--method moco-v2 --mixco --mix-temperature 0.1"
    [mixco-t0.2]="--method moco-v2 --mixco --mix-temperature 0.2"
    [mixco-t0.5]="--method moco-v2 --mixco --mix-temperature 0.5"
    [mixco-t0.2-b0.25]="--method moco-v2 --mixco --mix-temperature 0.2 --mix-weight 0.25"
    [mixco-t0.2-b0.5]="--method moco-v2 --mixco --mix-temperature 0.2 --mix-weight 0.5"
    [mixco-t0.05-b0.25]="--method moco-v2 --mixco --mix-temperature 0.05 --mix-weight 0.25"
    [mixco-t0.05-warmup]="--method moco-v2 --mixco --mix-temperature 0.05 --mix-warmup-epochs 2"
    [simclr]="--method simclr"
    [simclr-mixco]="--method simclr --mixco"
    [moco-v2-bf16]="--method moco-v2 --bf16 true"
    [mixco-t0.2-bf16]="--method moco-v2 --mixco --mix-temperature 0.2 --bf16 true"
    # longer budgets; bf16 is faster on AMD Zen 4 (1.8x), slower on Intel Xeon without AMX (0.8-0.9x)
    [simclr-10ep]="--method simclr --epochs 10"
    [simclr-mixco-10ep]="--method simclr --mixco --epochs 10"
    [moco-v2-10ep]="--method moco-v2 --epochs 10"
    [mixco-t0.2-10ep]="--method moco-v2 --mixco --mix-temperature 0.2 --epochs 10"
    [moco-v2-10ep-bf16]="--method moco-v2 --bf16 true --epochs 10"
    [mixco-t0.2-10ep-bf16]="--method moco-v2 --mixco --mix-temperature 0.2 --bf16 true --epochs 10"
    [simclr-10ep-bf16]="--method simclr --bf16 true --epochs 10"
    [simclr-mixco-10ep-bf16]="--method simclr --mixco --bf16 true --epochs 10"
)
order=(moco-v2 mixco-t0.05 mixco-t0.2 simclr simclr-mixco mixco-t0.1 mixco-t0.5 mixco-t0.2-b0.5
       mixco-t0.2-b0.25 mixco-t0.05-b0.25 mixco-t0.05-warmup)
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=("${order[@]}")
for spec in "${runs[@]}"; do
    # NAME or NAME@SEED (seed 0 when absent; other seeds get their own folder)
    name=${spec%@*}; seed=0; dir=$name
    if [ "$spec" != "$name" ]; then seed=${spec#*@}; dir=$name-seed$seed; fi
    [ -n "${flags[$name]:-}" ] || { echo "unknown run $name (known: ${!flags[*]})" >&2; exit 2; }
    epochs=(--epochs 3)
    [[ " ${flags[$name]} " == *" --epochs "* ]] && epochs=()
    if [ -f "$out/$dir/last.safetensors" ] && [ ! -f "$out/$dir/final.safetensors" ]; then
        # a stopped run continues from its last epoch (settings from the checkpoint)
        /usr/bin/time -f "$dir (resumed): %e s wall" -a -o "$out/wall-times.txt" \
            "$mixco" train --resume "$out/$dir/last.safetensors" --dataset cifar10 --output "$out/$dir"
    elif [ ! -f "$out/$dir/final.safetensors" ]; then
        # shellcheck disable=SC2086
        /usr/bin/time -f "$dir: %e s wall" -a -o "$out/wall-times.txt" \
            "$mixco" train "${common[@]}" "${epochs[@]}" ${flags[$name]} --seed "$seed" --output "$out/$dir"
    fi
    [ -f "$out/$dir/encoder.onnx" ] || "$mixco" export --onnx "$out/$dir/final.safetensors" -o "$out/$dir/encoder.onnx"
    [ -f "$out/eval-$dir.json" ] || "$mixco" eval "$out/$dir/encoder.onnx" --dataset cifar10 --baseline none --json "$out/eval-$dir.json"
done
