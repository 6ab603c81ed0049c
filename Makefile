# The two commands: `make demo` (the main job on the embedded synthetic
# dataset) and `make test` (the whole test suite). Both create the project
# venv with the pinned wheels and build what they need.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# libtorch from the torch wheel; read lazily, once the venv exists.
LIBTORCH_DIR = $(shell $(PY) -c 'import importlib.util as u; print(u.find_spec("torch").submodule_search_locations[0])')
CARGO  = LIBTORCH="$(LIBTORCH_DIR)" cargo

.PHONY: demo test fuzz venv build check-no-torch wheel bench bench-venv bench-torch clean

venv: $(STAMP)

$(STAMP): requirements.txt
	@command -v cargo >/dev/null || { echo "error: cargo not found; install Rust from https://rustup.rs" >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); $(PYTHON) -m venv --without-pip $(VENV); } || \
	  { echo "error: '$(PYTHON) -m venv' failed; install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
	@if [ -x $(VENV)/bin/pip ]; then $(VENV)/bin/pip install -q --disable-pip-version-check --no-deps -r requirements.txt; \
	  else $(PYTHON) -m pip --python $(PY) install -q --disable-pip-version-check --no-deps -r requirements.txt; fi
	@touch $@

build: venv
	$(CARGO) build

demo: build
	./scripts/demo.sh target/debug/mixco

# The export/eval/zoo binary must build and run without libtorch.
check-no-torch: venv
	$(CARGO) build --no-default-features
	@if ldd target/debug/mixco | grep -q libtorch; then echo "error: the --no-default-features binary links libtorch" >&2; exit 1; fi
	@target/debug/mixco --help >/dev/null
	@cp target/debug/mixco target/debug/mixco-notorch
	@echo "check-no-torch: the --no-default-features binary has no libtorch"

# The wheel test (scripts/wheel-test.sh) runs on the debug binaries the tests
# build anyway, before the test suite so that its summary closes the output.
test: venv check-no-torch
	$(CARGO) build
	./scripts/wheel-test.sh
	$(CARGO) test --workspace

# The wheels users install: `pip install dist/mixco-*.whl onnxruntime==1.31.1`
# (and dist/mixco_train-*.whl with torch==2.11.0 for `mixco train`).
wheel: venv
	$(CARGO) build --release --no-default-features
	cp target/release/mixco target/release/mixco-notorch
	$(CARGO) build --release
	$(PY) scripts/build_wheel.py --bin target/release/mixco-notorch --train-bin target/release/mixco --out dist

# The randomised parser tests with MIXCO_FUZZ variants of each file (default
# 100,000; `make test` runs a few thousand). The test profile keeps overflow
# checks on, so an arithmetic overflow on a hostile field fails the run.
fuzz: venv
	MIXCO_FUZZ=$${MIXCO_FUZZ:-100000} $(CARGO) test -p mixco-zoo -p mixco-data --test robustness
	MIXCO_FUZZ=$${MIXCO_FUZZ:-100000} $(CARGO) test -p mixco-eval --test onnx_without_libtorch mutated
	MIXCO_FUZZ=$${MIXCO_FUZZ:-100000} $(CARGO) test -p mixco-eval --lib npy::tests::mutated

bench: venv
	$(CARGO) build --release
	./scripts/bench.sh target/release/mixco

# PyTorch, torchvision and scikit-learn with all their dependencies (~3.5 GB,
# CUDA libraries included: torch does not import without them), only for the
# comparisons against the reference implementations; not needed otherwise.
bench-venv: .venv-bench/.installed

.venv-bench/.installed: requirements-bench.txt
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install -q --disable-pip-version-check -r requirements-bench.txt
	@touch $@

# mixco against PyTorch (training step, feature extraction) and scikit-learn
# (linear probe); needs the CIFAR-10 data under $$MIXCO_DATA.
bench-torch: venv bench-venv
	$(CARGO) build --release
	./scripts/bench-torch.sh target/release/mixco

clean:
	cargo clean
	rm -rf $(VENV) .venv-bench
