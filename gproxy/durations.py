"""Durations for gproxy: the suite's one parser (gsuite.durations)."""

from gsuite.durations import format_duration, parse_duration

__all__ = ["format_duration", "parse_duration"]
