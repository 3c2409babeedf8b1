"""heartbeat's errors: one small hierarchy, caught by kind."""

from __future__ import annotations


class HeartbeatError(Exception):
    """Base of every error heartbeat raises on purpose."""


class ConfigError(HeartbeatError):
    """An invalid configuration; `problems` lists every (key path, reason)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{p}: {r}" if p else r for p, r in self.problems))

    def lines(self) -> list[str]:
        return [f"{p}: {r}" if p else r for p, r in self.problems]


class PacketRejected(HeartbeatError):
    """A heartbeat packet failed authentication, replay or sender checks.
    `reason` is one of the counted categories (bad-hmac, replay, unknown-node,
    malformed, unknown-key)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class IllegalTransition(HeartbeatError):
    """A state machine got an event its current state does not accept."""


class AgentError(HeartbeatError):
    """A resource agent could not be found or run."""
