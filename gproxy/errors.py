"""The errors gproxy raises: one small hierarchy, so callers catch by kind."""

from __future__ import annotations


class GproxyError(Exception):
    """Base of every error gproxy raises on purpose."""


class ConfigError(GproxyError):
    """A configuration is invalid. `problems` lists every (key path, reason)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{path}: {reason}" for path, reason in self.problems))

    def lines(self) -> list[str]:
        return [f"{path}: {reason}" if path else reason for path, reason in self.problems]


class ProtocolError(GproxyError):
    """A peer broke HTTP framing. `status` is what to answer (400, 431, 502...)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class IllegalTransition(GproxyError):
    """A state machine got an event its current state does not accept."""
