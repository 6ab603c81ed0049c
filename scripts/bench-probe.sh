#!/usr/bin/env bash
# The linear probe against scikit-learn's same protocol (benches/sklearn_probe.py),
# on the same features with the same threads, one after the other:
#   - synthetic Gaussian class clusters of CIFAR-100's and Tiny ImageNet's
#     feature shapes (50,000 x 128 over 100 classes, 100,000 x 128 over 200);
#   - every `--dump-features` set found in FEATURES (DATASET-MODEL-train.npy).
# Prints one JSON line per run (mixco's from `mixco bench probe --json`).
#
#   scripts/bench-probe.sh target/release/mixco .venv-bench/bin/python FEATURES
set -euo pipefail
mixco=$1
py=$2
feats=$3
threads=${THREADS:-2}
export RAYON_NUM_THREADS=$threads
here=$(dirname "$0")

compare() { # DIR DATASET MODEL [mixco bench probe flags...]
    local dir=$1 ds=$2 model=$3
    shift 3
    mkdir -p "$dir"
    "$mixco" bench probe "$@" --json >"$dir/mixco-$ds-$model.json"
    "$py" "$here/../benches/sklearn_probe.py" "$dir" "$ds" "$model" --threads "$threads" 2>/dev/null >"$dir/sklearn-$ds-$model.json"
    python3 - "$dir/mixco-$ds-$model.json" "$dir/sklearn-$ds-$model.json" "$ds/$model" <<'PY'
import json, sys
m, s = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
r = m["result"]
print(json.dumps({"features": sys.argv[3], "shape": [m["rows"], m["dim"], m["classes"]],
    "mixco_s": round(m["seconds"], 2), "floor_s": round(m["floor_s"], 2), "over_floor": round(m["seconds"] / m["floor_s"], 2),
    "sklearn_s": round(s["seconds"], 1), "speedup": round(s["seconds"] / m["seconds"], 1),
    "mixco_top1": round(100 * r["top1"], 2), "sklearn_top1": round(100 * s["top1"], 2),
    "diff": round(100 * (r["top1"] - s["top1"]), 2), "alpha": [r["alpha"], s["alpha"]],
    "evaluations": sum(f["evaluations"] for f in r["fits"])}))
PY
}

for shape in 50000x128x100 100000x128x200; do
    dir="$feats/synthetic-$shape"
    compare "$dir" synthetic clusters --synthetic "$shape" --write "$dir"
done
for train in "$feats"/*-train.npy; do
    base=$(basename "$train" -train.npy)
    case "$base" in *-labels) continue ;; esac
    ds=${base%%-*}
    model=${base#*-}
    [ -f "$feats/$ds-train-labels.npy" ] || continue
    compare "$feats" "$ds" "$model" --features "$feats" --dataset "$ds" --model "$model"
done
