# vigie: every target creates or updates .venv itself, so each works on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: install demo demo-serve test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps 'invisible-watermark==0.2.0'
	touch $(STAMP)

# Benchmarks also need the reference implementations (faiss, vpdq, ...); vpdq builds against libav*-dev.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python demo/run_demo.py

# the demo, then `vigie serve` on 127.0.0.1:8000 over its bank with a fresh API key (Ctrl-C stops it)
demo-serve: $(STAMP)
	$(BIN)/python demo/run_demo.py --serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench demo
	$(BIN)/mypy src

test: lint
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) vigie-data demo/out
