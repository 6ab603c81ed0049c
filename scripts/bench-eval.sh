#!/usr/bin/env bash
# mixco's ONNX Runtime feature extraction against ONNX Runtime's Python API,
# same model file, batch and threads, alternating three times.
set -euo pipefail
mixco=${1:-target/release/mixco}
model=${2:-runs/demo/encoder.onnx}
threads=${THREADS:-2}
for i in 1 2 3; do
    "$mixco" bench eval "$model" --threads "$threads" --batch-size 256
    .venv/bin/python benches/ort_python.py "$model" --threads "$threads" --batch-size 256
done
