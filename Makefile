# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test unit e2e deps bench fuzz clean compile

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,compile]'
	touch $(STAMP)

# gproxy's modules compiled with Cython (setup.py), in place; rebuilt when
# a source changes (an extension left older than its .py would run old code).
COMPILED := $(VENV)/.compiled
$(COMPILED): $(STAMP) setup.py $(wildcard gproxy/*.py gproxy/protocol/*.py)
	$(PY) setup.py -q build_ext --inplace --parallel 2
	touch $@

compile: $(COMPILED)

deps:
	bash scripts/install-debian-deps.sh

demo: $(STAMP) $(COMPILED)
	$(PY) -m gproxy.demo

test: $(STAMP) $(COMPILED) deps
	$(PY) -m pytest -q

unit: $(STAMP) $(COMPILED)
	$(PY) -m pytest -q tests/unit

e2e: $(STAMP) $(COMPILED) deps
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
bench: $(STAMP) $(COMPILED) deps
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
	find gproxy -name '*.so' -delete -o -name '*.c' -delete
