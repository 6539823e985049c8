# Two commands do all set-up on a fresh Debian/Ubuntu machine with Rust and python3:
#   make demo   runs nasrob's main job on the embedded default data
#   make test   runs the whole test suite (what CI runs)
#
# libtorch comes from, in order: $LIBTORCH if set; a python3 that has torch $(TORCH_VERSION);
# otherwise a virtual environment under $(NASROB_CACHE) that this Makefile creates once
# (PyPI torch==$(TORCH_VERSION), a CUDA 13 build that also runs on CPU, about 4.6 GB).
# Build outputs go to a stable CARGO_TARGET_DIR under the same cache, so fresh clones reuse them.

SHELL := /bin/bash
TORCH_VERSION := 2.11.0
# NB201's reference network (TinyNetwork), which the model tests compare nasrob's with; only its
# torch code is used, so it installs without its pinned dependencies.
XAUTODL_VERSION := 1.0.0
# NATS-Bench's API, whose classes and pickling write the archive files the weights-import test reads.
NATS_BENCH_VERSION := 1.8
NASROB_CACHE ?= $(HOME)/.cache/nasrob
TORCH_VENV ?= $(NASROB_CACHE)/torch-venv
export CARGO_TARGET_DIR ?= $(NASROB_CACHE)/target
# libgomp (libtorch's OpenMP) spins idle threads by default, which starves parallel test threads
# on a small machine; the network commands of the binary set this themselves.
export OMP_WAIT_POLICY ?= PASSIVE
DEMO_DIR ?= $(NASROB_CACHE)/demo
# The demo and the tests share one (dev-profile, optimised dependencies) build; benchmarks use
# `cargo run --release`.
NASROB := $(CARGO_TARGET_DIR)/debug/nasrob

# libjpeg-turbo (for PIL-identical JPEG corruption): the system's when pkg-config finds it
# (libturbojpeg0-dev on Debian), otherwise built from source, which needs cmake (nasm makes it
# faster). Without root, a missing cmake stops the build with what to install; nothing here needs
# root when cmake or the system's libjpeg-turbo is present.
define with_sysdeps
set -euo pipefail; \
if pkg-config --exists libturbojpeg 2>/dev/null; then \
  export TURBOJPEG_SOURCE=pkg-config; \
elif ! command -v cmake >/dev/null 2>&1 || ! command -v nasm >/dev/null 2>&1; then \
  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
  if $$sudo true 2>/dev/null; then \
    echo "nasrob: installing cmake and nasm with apt-get (to build libjpeg-turbo)" >&2; \
    $$sudo apt-get update -qq && $$sudo apt-get install -y -qq cmake nasm >/dev/null; \
  elif ! command -v cmake >/dev/null 2>&1; then \
    echo "nasrob: libjpeg-turbo is built from source here, which needs cmake, and this account cannot install it: load or install cmake (\`module load cmake\`, or \`python3 -m pip install --user cmake\`), or install libjpeg-turbo's development files (libturbojpeg0-dev) so that pkg-config finds libturbojpeg" >&2; \
    exit 2; \
  fi; \
fi;
endef

# Finds or installs libtorch and exports LIBTORCH for torch-sys.
define with_torch
set -euo pipefail; \
if [ -z "$${LIBTORCH:-}" ]; then \
  py=""; \
  for cand in "$(TORCH_VENV)/bin/python" python3; do \
    if "$$cand" -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "$(TORCH_VERSION)")' >/dev/null 2>&1; then py="$$cand"; break; fi; \
  done; \
  if [ -z "$$py" ]; then \
    echo "nasrob: installing PyTorch $(TORCH_VERSION) into $(TORCH_VENV) (once; about 4.6 GB)" >&2; \
    python3 -m venv "$(TORCH_VENV)"; \
    "$(TORCH_VENV)/bin/pip" install --quiet --disable-pip-version-check "torch==$(TORCH_VERSION)"; \
    py="$(TORCH_VENV)/bin/python"; \
  fi; \
  export LIBTORCH="$$("$$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"; \
  if ! "$$py" -c 'import xautodl' >/dev/null 2>&1; then \
    echo "nasrob: installing NB201's reference code (xautodl $(XAUTODL_VERSION)) for the model tests" >&2; \
    "$$py" -m pip install --quiet --disable-pip-version-check --no-deps "xautodl==$(XAUTODL_VERSION)" || true; \
  fi; \
  if ! "$$py" -c 'import nats_bench' >/dev/null 2>&1; then \
    echo "nasrob: installing NATS-Bench's API (nats_bench $(NATS_BENCH_VERSION)) for the weights-import test" >&2; \
    "$$py" -m pip install --quiet --disable-pip-version-check --no-deps "nats_bench==$(NATS_BENCH_VERSION)" || true; \
  fi; \
  if ! "$$py" -c 'import numpy' >/dev/null 2>&1; then \
    echo "nasrob: installing numpy beside torch for the reference comparisons" >&2; \
    "$$py" -m pip install --quiet --disable-pip-version-check numpy || true; \
  fi; \
  export NASROB_TORCH_PYTHON="$${NASROB_TORCH_PYTHON:-$$py}"; \
fi;
endef

.PHONY: demo test test-python test-query build build-query install fmt device-bundle

build:
	@$(with_sysdeps) $(with_torch) cargo build --locked

build-query:
	@$(with_sysdeps) cargo build --release --locked --no-default-features

# Release binaries in $(PREFIX)/bin: `nasrob`, built without libtorch, which runs the query, space,
# import, tau, nas, plot and report commands without loading it, and `nasrob-engine`, the default
# build, which `nasrob` hands everything else to (training, attacks, sweeps, doctor, help). The
# engine finds libtorch through its rpath (the folder it was built against), so on a cluster
# install into, and build against, folders the compute nodes see.
PREFIX ?= $(HOME)/.local
install:
	@$(with_sysdeps) $(with_torch) mkdir -p "$(PREFIX)/bin" && \
	  cargo build --release --locked && \
	  install -m 755 "$(CARGO_TARGET_DIR)/release/nasrob" "$(PREFIX)/bin/nasrob-engine.tmp" && \
	  cargo build --release --locked --no-default-features && \
	  install -m 755 "$(CARGO_TARGET_DIR)/release/nasrob" "$(PREFIX)/bin/nasrob.tmp" && \
	  mv -f "$(PREFIX)/bin/nasrob-engine.tmp" "$(PREFIX)/bin/nasrob-engine" && \
	  mv -f "$(PREFIX)/bin/nasrob.tmp" "$(PREFIX)/bin/nasrob" && \
	  echo "nasrob: installed $(PREFIX)/bin/nasrob and $(PREFIX)/bin/nasrob-engine (libtorch from $$LIBTORCH)" && \
	  "$(PREFIX)/bin/nasrob" doctor

FROST_WHEEL_DIR := $(NASROB_CACHE)/downloads

# The main job on the embedded default: the `demo` sweep preset (16 architectures on the
# embedded Fashion-MNIST subset, reduced network and budgets) end to end on the CPU, as two
# shards in parallel (the networks are too small to gain from two threads each), merged into a
# benchmark folder, then a summary from the query layer and the HTML report.
demo: build
	@mkdir -p "$(DEMO_DIR)"
	$(NASROB) doctor
	@$(NASROB) data fetch frost-textures 2>/dev/null || { \
	  echo "nasrob: fetching the frost photographs from PyPI's imagecorruptions wheel instead" >&2; \
	  python3 -m pip download --quiet --no-deps --disable-pip-version-check imagecorruptions==1.1.2 -d "$(FROST_WHEEL_DIR)" && \
	  $(NASROB) data fetch frost-textures --from "$(FROST_WHEEL_DIR)/imagecorruptions-1.1.2-py3-none-any.whl"; }
	@echo "nasrob: demo sweep as two shards in parallel, one core each (shard 0 logs to $(DEMO_DIR)/shard-0.log)"
	@OMP_NUM_THREADS=1 $(NASROB) sweep run --config demo --out "$(DEMO_DIR)/sweep" --device cpu --shard 0/2 \
	  > "$(DEMO_DIR)/shard-0.log" 2>&1 & other=$$!; \
	OMP_NUM_THREADS=1 $(NASROB) sweep run --config demo --out "$(DEMO_DIR)/sweep" --device cpu --shard 1/2; here=$$?; \
	wait $$other; there=$$?; \
	if [ $$there -ne 0 ]; then tail -n 5 "$(DEMO_DIR)/shard-0.log" >&2; fi; \
	[ $$here -eq 0 ] && [ $$there -eq 0 ]
	$(NASROB) sweep merge "$(DEMO_DIR)/sweep" --out "$(DEMO_DIR)/bench"
	$(NASROB) query summary --bench "$(DEMO_DIR)/bench" --dataset fashion-mini
	$(NASROB) report --bench "$(DEMO_DIR)/bench" --out "$(DEMO_DIR)/report.html"

# What the reference comparisons in the tests need (see src/prerequisites.rs), installed once:
# a Python with the packages below (NASROB_TEST_PYTHON), numpy in the torch environment (above),
# and Debian's Chromium, which renders the report. Under CI (CI=true) a test whose prerequisite
# is missing fails; elsewhere it is skipped, and the skips are counted at the end of `make test`.
TEST_VENV ?= $(NASROB_CACHE)/test-venv
TEST_PYTHON_PACKAGES := numpy scipy pandas pyarrow matplotlib pillow pyyaml nbformat pytest polars
TEST_PYTHON_IMPORTS := numpy, scipy, pandas, pyarrow, matplotlib, PIL, yaml, nbformat, pytest, polars
SKIP_LOG := $(CARGO_TARGET_DIR)/nasrob-skipped-tests.txt
define with_test_prerequisites
if [ -z "$${NASROB_TEST_PYTHON:-}" ]; then \
  if ! "$(TEST_VENV)/bin/python" -c 'import $(TEST_PYTHON_IMPORTS)' >/dev/null 2>&1; then \
    echo "nasrob: installing the tests' Python packages into $(TEST_VENV) (once)" >&2; \
    python3 -m venv "$(TEST_VENV)" && "$(TEST_VENV)/bin/pip" install --quiet --disable-pip-version-check $(TEST_PYTHON_PACKAGES) || true; \
  fi; \
  export NASROB_TEST_PYTHON="$(TEST_VENV)/bin/python"; \
fi; \
if ! command -v chromium >/dev/null 2>&1; then \
  echo "nasrob: installing Debian's chromium with apt-get (renders the report in a test)" >&2; \
  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
  { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq chromium >/dev/null; } || true; \
fi; \
export NASROB_SKIP_LOG="$(SKIP_LOG)";
endef

# Lints with clippy (warnings are errors) and tests both builds: without libtorch (the query
# layer) and the default one; then counts the tests that were skipped, with their reasons.
test:
	cargo fmt --all -- --check
	@rm -f "$(SKIP_LOG)"
	@$(with_sysdeps) cargo clippy --locked --all-targets --no-default-features -- -D warnings
	@$(with_sysdeps) $(with_test_prerequisites) cargo test --locked --no-default-features
	@$(with_torch) cargo clippy --locked --all-targets -- -D warnings
	@$(with_torch) $(with_test_prerequisites) cargo test --locked
	@$(MAKE) --no-print-directory test-python
	@if [ -s "$(SKIP_LOG)" ]; then \
	  echo "nasrob: $$(sort -u "$(SKIP_LOG)" | wc -l) tests skipped:"; sort -u "$(SKIP_LOG)" | sed 's/^/  /'; \
	else echo "nasrob: 0 tests skipped"; fi

# The binaries bench/device-check.sh runs on a GPU machine that has no Rust toolchain: nasrob and
# the integration tests, stripped and xz-compressed (about 50 MB together, under the size a device
# call carries) in bench/device-bin/, which git ignores.
device-bundle:
	@$(with_sysdeps) $(with_torch) cargo build --locked && \
	  tests=$$(cargo test --locked --test integration --no-run --message-format=json 2>/dev/null \
	    | python3 -c 'import json,sys; print([json.loads(l)["executable"] for l in sys.stdin if "\"executable\":\"" in l][-1])') && \
	  mkdir -p bench/device-bin && rm -f bench/device-bin/* && \
	  strip -o bench/device-bin/nasrob "$(NASROB)" && strip -o bench/device-bin/integration "$$tests" && \
	  xz -T0 -6 bench/device-bin/nasrob bench/device-bin/integration && du -sh bench/device-bin/*

# The Python package (python/) against the CLI: the extension is built by cargo in the tests'
# profile and target folder, so it reuses the dependencies compiled above, and is imported from a
# staging folder beside the build outputs; pytest runs in the tests' virtual environment.
PYTHON_STAGE := $(CARGO_TARGET_DIR)/python-stage
test-python:
	@$(with_sysdeps) $(with_test_prerequisites) export PYO3_PYTHON="$$NASROB_TEST_PYTHON"; \
	  cargo clippy --locked -p nasrob-python --all-targets -- -D warnings && \
	  cargo build --locked -p nasrob-python && \
	  rm -rf "$(PYTHON_STAGE)" && mkdir -p "$(PYTHON_STAGE)/nasrob" && \
	  cp python/nasrob/*.py python/nasrob/*.pyi python/nasrob/py.typed "$(PYTHON_STAGE)/nasrob/" && \
	  ln -s "$(CARGO_TARGET_DIR)/debug/lib_native.so" "$(PYTHON_STAGE)/nasrob/_native.so" && \
	  { [ -x "$(NASROB)" ] || cargo build --locked --no-default-features; } && \
	  NASROB_BIN="$(NASROB)" PYTHONPATH="$(PYTHON_STAGE)" "$$NASROB_TEST_PYTHON" -m pytest -q -p no:cacheprovider python/tests

test-query:
	@$(with_sysdeps) cargo test --locked --no-default-features

fmt:
	cargo fmt --all
