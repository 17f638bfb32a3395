# Two entry points (see README "Quick start"): `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench clean

$(BIN)/simlat: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[calibrate,test]'
	touch $@

setup: $(BIN)/simlat

demo: setup
	$(BIN)/simlat simulate experiments/demo.yaml
	$(BIN)/simlat sweep experiments/feed.yaml

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/engine_bench.py

clean:
	rm -rf $(VENV) .pytest_cache reports/*.html
