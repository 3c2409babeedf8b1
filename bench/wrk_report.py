"""Reading wrk's text report (`wrk --latency`) into numbers (no I/O).

The lines used, from wrk 4.1:

    Latency Distribution
       50%  212.00us
       99%    1.52ms
    123456 requests in 10.00s, 9.54MB read
    Socket errors: connect 0, read 12, write 0, timeout 0
    Non-2xx or 3xx responses: 3
    Requests/sec:  12345.67
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$", re.MULTILINE)
_REQUESTS_RE = re.compile(r"^\s*(\d+) requests in (\d+(?:\.\d+)?)(us|ms|s|m|h)", re.MULTILINE)
_RATE_RE = re.compile(r"^Requests/sec:\s+(\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_SOCKET_ERRORS_RE = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX_RE = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkOutputError(ValueError):
    """wrk's output does not hold the figures (wrk failed or changed its format)."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rate: float  # requests per second, as wrk prints it
    latency_ms: dict[str, float]  # "50", "75", "90", "99" -> milliseconds
    socket_errors: dict[str, int] = field(default_factory=dict)  # connect, read, write, timeout
    non_2xx: int = 0

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values()) + self.non_2xx

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors}


def _millis(number: str, unit: str) -> float:
    return round(float(number) * _TIME_UNITS_MS[unit], 3)  # wrk prints 2 decimals: no float noise


def _percentile_key(text: str) -> str:
    """"50" for "50" or "50.000"; "99.9" for "99.900"."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_wrk(text: str) -> WrkResult:
    """The figures of one wrk run; raise WrkOutputError if they are missing."""
    rate = _RATE_RE.search(text)
    total = _REQUESTS_RE.search(text)
    if rate is None or total is None:
        raise WrkOutputError("no 'Requests/sec' or 'requests in' line in wrk's output")
    latency = {_percentile_key(match.group(1)): _millis(match.group(2), match.group(3))
               for match in _PERCENTILE_RE.finditer(text)}
    errors = _SOCKET_ERRORS_RE.search(text)
    counts = (int(value) for value in errors.groups()) if errors else (0, 0, 0, 0)
    socket_errors = dict(zip(("connect", "read", "write", "timeout"), counts))
    non_2xx = _NON_2XX_RE.search(text)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=_millis(total.group(2), total.group(3)) / 1000.0,
        rate=float(rate.group(1)),
        latency_ms=latency,
        socket_errors=socket_errors,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )
