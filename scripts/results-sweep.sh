#!/usr/bin/env bash
# Issue 7's table on the real CIFAR-10: each run named on the command line
# (or all of them), with the settings in experiments/first-point/ (the first
# data point's common.toml, then the run's own file). Finished runs are skipped and stopped
# ones resumed, so the script can be stopped and rerun.
#   MIXCO_DATA=DATA scripts/results-sweep.sh [-b target/release/mixco] [RUN...]
set -euo pipefail
mixco=target/release/mixco
if [ "${1:-}" = -b ]; then mixco=$2; shift 2; fi
: "${MIXCO_DATA:?set MIXCO_DATA to the data root holding cifar-10-batches-bin/}"
out=${RESULTS_OUT:-runs/first-point}
mkdir -p "$out"
# Each run's settings: experiments/first-point/common.toml, then RUN.toml over it.
exp=experiments/first-point
order=(moco-v2 mixco-t0.05 mixco-t0.2 simclr simclr-mixco mixco-t0.1 mixco-t0.5 mixco-t0.2-b0.5
       mixco-t0.2-b0.25 mixco-t0.05-b0.25 mixco-t0.05-warmup)
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=("${order[@]}")
for spec in "${runs[@]}"; do
    # NAME or NAME@SEED (seed 0 when absent; other seeds get their own folder)
    name=${spec%@*}; seed=0; dir=$name
    if [ "$spec" != "$name" ]; then seed=${spec#*@}; dir=$name-seed$seed; fi
    [ -f "$exp/$name.toml" ] || { echo "unknown run $name (known: $(cd $exp && ls *.toml | grep -v common | sed 's/.toml$//' | xargs))" >&2; exit 2; }
    if [ -f "$out/$dir/last.safetensors" ] && [ ! -f "$out/$dir/final.safetensors" ]; then
        # a stopped run continues from its last epoch (settings from the checkpoint)
        /usr/bin/time -f "$dir (resumed): %e s wall" -a -o "$out/wall-times.txt" \
            "$mixco" train --resume "$out/$dir/last.safetensors" --dataset cifar10 --output "$out/$dir"
    elif [ ! -f "$out/$dir/final.safetensors" ]; then
        /usr/bin/time -f "$dir: %e s wall" -a -o "$out/wall-times.txt" \
            "$mixco" train --config "$exp/common.toml" --config "$exp/$name.toml" --dataset cifar10 --seed "$seed" --output "$out/$dir"
    fi
    [ -f "$out/$dir/encoder.onnx" ] || "$mixco" export --onnx "$out/$dir/final.safetensors" -o "$out/$dir/encoder.onnx"
    [ -f "$out/eval-$dir.json" ] || "$mixco" eval "$out/$dir/encoder.onnx" --dataset cifar10 --baseline none --json "$out/eval-$dir.json"
done
