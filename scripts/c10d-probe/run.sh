#!/usr/bin/env bash
# Builds and runs allreduce.cpp with 2 ranks on 127.0.0.1 (issue 20's first
# step, not part of the build): each rank prints 3 = 1 + 2.
#
# The wheel ships c10d's headers but not gloo's, which ProcessGroupGloo.hpp
# includes; gloo-stub/ declares the few gloo names that header uses (all
# behind pointers, so the class layouts are unchanged; the code is in
# libtorch_cpu.so). USE_C10D_GLOO enables the class in the header.
#   scripts/c10d-probe/run.sh            (LIBTORCH from the venv)
set -euo pipefail
cd "$(dirname "$0")"
LIBTORCH=${LIBTORCH:-$(../../.venv/bin/python -c 'import importlib.util as u; print(u.find_spec("torch").submodule_search_locations[0])')}
out=${TMPDIR:-/tmp}/mixco-c10d-probe
g++ -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=1 -DUSE_C10D_GLOO -O1 allreduce.cpp -Igloo-stub \
    -I"$LIBTORCH/include" -I"$LIBTORCH/include/torch/csrc/api/include" \
    -L"$LIBTORCH/lib" -Wl,-rpath,"$LIBTORCH/lib" -ltorch_cpu -lc10 -ltorch -o "$out" 2> >(grep -v warning >&2 || true)
"$out" 0 2 & "$out" 1 2
wait
