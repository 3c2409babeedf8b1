# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test unit e2e deps bench clean

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

bench: $(STAMP) deps
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
