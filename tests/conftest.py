"""Suite-wide guard: the tests run the code as edited.

A compiled module (setup.py, Cython) beside its .py wins the import; if
the .py was edited since, the tests would measure the old code.
"""
import pytest

from gproxy.compiled import stale_modules


def pytest_sessionstart(session):
    stale = stale_modules()
    if stale:
        pytest.exit("compiled modules older than their source (run `make compile`): " + ", ".join(stale),
                    returncode=2)
