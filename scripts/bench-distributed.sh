#!/usr/bin/env bash
# Data-parallel overhead on this machine (docs/BENCHMARKS.md, issue 20):
# `mixco bench train` as 2 ranks x 1 thread against 1 process x 2 threads at
# the same global batch, alternated REPEAT times per method; prints each
# pair's full-step images/s ratio (2 ranks / 1 process), their mean, and the
# ranks' time in collectives per step.
#   scripts/bench-distributed.sh target/release/mixco [REPEAT]
set -euo pipefail
mixco=${1:-target/release/mixco}
repeat=${2:-3}
common=(bench train --arch resnet18 --width 16 --batch-size 256 --warmup 2 --iters 8 --json)
out=$(mktemp -d)
for method in moco-v2 simclr; do
    for i in $(seq "$repeat"); do
        "$mixco" "${common[@]}" --method "$method" --threads 2 >"$out/$method-one-$i.json"
        "$mixco" "${common[@]}" --method "$method" --threads 1 --nproc-per-node 2 2>/dev/null >"$out/$method-two-$i.json"
    done
done
python3 - "$out" "$repeat" <<'PY'
import json, sys, statistics
out, repeat = sys.argv[1], int(sys.argv[2])
for method in ["moco-v2", "simclr"]:
    for row in range(4):
        if row % 2 == 0:
            continue  # full steps only
        ratios, coll, name = [], [], None
        for i in range(1, repeat + 1):
            one = json.load(open(f"{out}/{method}-one-{i}.json"))[row]
            two = json.load(open(f"{out}/{method}-two-{i}.json"))[row]
            name = one["what"]
            ratios.append(two["images_per_s"] / one["images_per_s"])
            coll.append((two["collective_ms"], two["median_ms"], one["median_ms"]))
        print(f"{name}: 2 ranks / 1 process images/s " + ", ".join(f"{r:.2f}" for r in ratios) + f" (mean {statistics.mean(ratios):.2f})")
        for c, ms2, ms1 in coll:
            print(f"    step {ms1:.0f} ms (1 process) vs {ms2:.0f} ms (2 ranks), of which {c:.1f} ms in collectives")
PY
rm -rf "$out"
