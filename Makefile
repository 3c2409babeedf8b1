# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test unit e2e deps bench fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

deps:
	bash scripts/install-debian-deps.sh

demo: $(STAMP)
	$(PY) -m gproxy.demo

test: $(STAMP) deps
	$(PY) -m pytest -q

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

e2e: $(STAMP) deps
	$(PY) -m pytest -q tests/e2e

# Coverage-guided fuzzing of the request parser for FUZZ_SECONDS (atheris if it
# installs, else the target's plain random loop); findings are written to build/.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(PY) -m pip install -q -e '.[fuzz]' || echo "atheris unavailable: plain random loop"
	mkdir -p build/fuzz-corpus
	$(PY) tests/fuzz/fuzz_request_parser.py -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=build/ build/fuzz-corpus

# Issue 8's table, gproxy against HAProxy 2.6 (about 3 minutes; BENCH_ARGS=--quick for about 1).
BENCH_ARGS ?=
bench: $(STAMP) deps
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
