"""Durations: the one parser for every duration setting of the suite.

A duration is an integer of milliseconds or a string with a unit, as HAProxy
writes them: "200ms", "5s", "2m", "1h", "1d", "100us" (rounded up to 1 ms).
A bare numeric string ("5000") is milliseconds, like HAProxy's timeouts.
"""

from __future__ import annotations

import re

_UNITS_MS = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d)?\s*$")


def parse_duration(value: int | float | str) -> int:
    """Return `value` in whole milliseconds; raise ValueError with a readable reason."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got a boolean {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration cannot be negative ({value})")
        return value
    if isinstance(value, float):
        raise ValueError(f"durations are integers of milliseconds or strings with a unit, got {value!r}")
    if not isinstance(value, str):
        raise ValueError(f"expected a duration, got {type(value).__name__}")
    match = _DURATION_RE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration (use e.g. \"200ms\", \"5s\", \"2m\" or an integer of ms)")
    number, unit = match.groups()
    millis = float(number) * _UNITS_MS[unit or "ms"]
    whole = int(millis)
    return whole + 1 if millis > whole else whole


def format_duration(millis: int) -> str:
    """The shortest exact unit form of `millis` ("5s", "200ms", "2m")."""
    for unit, factor in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis and millis % factor == 0:
            return f"{millis // factor}{unit}"
    return f"{millis}ms"
