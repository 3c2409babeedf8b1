"""The fuzz target of tests/fuzz runs briefly with the unit tests (plain random loop)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

TARGET = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_request_parser.py"
RUNS = 3000  # a second or so: `make fuzz` is the long run


def _load():
    spec = importlib.util.spec_from_file_location("fuzz_request_parser", TARGET)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_loop_finds_nothing():
    fuzz = _load()
    assert fuzz.plain_loop(seconds=30.0, seed=1, max_runs=RUNS) == RUNS


def test_target_reports_a_split_dependent_verdict(monkeypatch):
    # The target must be able to fail: a parser whose verdict depends on how
    # the bytes were cut is a finding.
    fuzz = _load()
    calls = []
    real = fuzz._events

    def flaky(pieces):
        calls.append(len(pieces))
        events, status = real(pieces)
        return events, (status if len(calls) == 1 else 999)

    monkeypatch.setattr(fuzz, "_events", flaky)
    with pytest.raises(AssertionError, match="depends on the split"):
        fuzz.one_input(b"\x00GET / HTTP/1.1\r\nHost: h\r\n\r\n")
