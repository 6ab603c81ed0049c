#!/usr/bin/env bash
# The main job on the embedded synthetic dataset (no downloads).
set -euo pipefail
mixco=${1:-target/debug/mixco}
out=${DEMO_OUT:-runs/demo}
mkdir -p "$out"
echo "== the embedded synthetic dataset"
"$mixco" data info synthetic
"$mixco" data preview synthetic -o "$out/synthetic.png"
