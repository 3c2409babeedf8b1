"""Shared by the runtime-API unit tests: the golden topology as live state
(no sockets), and a sans-IO conversation driver (framing + commands)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from gproxy.config.loader import load_string
from gproxy.events import EventBus
from gproxy.health import CheckOutcome, CheckStatus, SetAdmin
from gproxy.runtime import BackendRuntime, FrontendRuntime, ProcessState
from gproxy.runtime_api import commands
from gproxy.runtime_api.framing import CLOSE, NEED_DATA, CliFramer, Command
from gproxy.runtime_api.reports import ProcessFacts

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "golden"))
import golden_compare  # noqa: E402

# Fixed ports for the golden topology (nothing listens: no I/O in unit tests).
PORTS = {"APP_PORT": 41001, "TCP_PORT": 41002, "FE_PORT": 41003, "WEB1_PORT": 41004, "WEB2_PORT": 41005,
         "CLOSED_PORT": 41006}
START = 1_700_000_000.0


@dataclass
class State:
    """What `ProxyState` asks for, built the way Gproxy builds it."""

    config: object
    frontends: dict
    backends: dict
    process: ProcessState
    bus: EventBus
    relay: object = None  # one worker: nothing to relay


def build_state(config_text: str, now: float = START) -> State:
    config = load_string(config_text)
    bus = EventBus()
    backends = {name: BackendRuntime(cfg, bus, now, lambda: now) for name, cfg in config.backends.items()}
    frontends = {}
    for name, cfg in config.frontends.items():
        backend = backends.get(cfg.default_backend) if cfg.default_backend else None
        frontends[name] = FrontendRuntime(cfg, backend)
        if backend is not None:
            backend.frontend_maxconn += cfg.maxconn
    return State(config, frontends, backends, ProcessState(now, config.global_.maxconn), bus)


def golden_config_text(directory: str = "/tmp/gproxy-unit") -> str:
    values = {name: str(port) for name, port in PORTS.items()} | {"DIR": directory}
    return golden_compare.substitute((golden_compare.GOLDEN_DIR / "gproxy.toml.in").read_text(), values)


L7OK = CheckOutcome(CheckStatus.L7OK, code=200, duration_ms=0)
L4OK = CheckOutcome(CheckStatus.L4OK, duration_ms=0)
L4CON = CheckOutcome(CheckStatus.L4CON, duration_ms=0, info="Connection refused")


def golden_state(now: float = START) -> State:
    """The golden topology in the state of the first capture: checks have
    run once (web3 refused), web2 drained."""
    state = build_state(golden_config_text(), now)
    outcomes = {"app/web1": L7OK, "app/web2": L7OK, "app/web3": L4CON, "app/bk1": L7OK,
                "tcp_lb/t1": L4OK, "be_static/s1": L4OK, "be_static/s2": L4OK}
    for key, outcome in outcomes.items():
        backend, server = key.split("/")
        state.backends[backend].by_name[server].check_done(outcome, now)
    state.backends["app"].by_name["web2"].apply(SetAdmin("drain"), now)
    return state


def facts() -> ProcessFacts:
    return ProcessFacts(pid=4242, ulimit_n=1024, maxsock=1024, listeners=6, tasks=8, node="unit")


def substitute_ports(text: str) -> str:
    return golden_compare.substitute(text, {name: str(port) for name, port in PORTS.items()})


def converse(state, data: bytes, level: str = "admin", now: float = START, chunks: list[int] | None = None,
             eof: bool = False) -> tuple[bytes, bool]:
    """Feed `data` (in `chunks` of these sizes, else at once; then an EOF if
    `eof`) to one CLI connection, as server.py does; return (bytes answered, closed)."""
    framer = CliFramer()
    session = commands.Session(level=level, timeout_ms=10_000)
    out = bytearray()
    pieces = []
    if chunks:
        offset = 0
        for size in chunks:
            pieces.append(data[offset:offset + size])
            offset += size
        pieces.append(data[offset:])
    else:
        pieces.append(data)
    pieces = [p for p in pieces if p]
    while True:
        event = framer.next_event()
        if event is CLOSE:
            return bytes(out), True
        if event is NEED_DATA:
            if pieces:
                framer.receive_data(pieces.pop(0))
                continue
            if eof:
                eof = False
                framer.receive_data(b"")
                continue
            return bytes(out), False
        if isinstance(event, Command):
            ctx = commands.Context(state=state, session=session, now=now, facts=facts)
            outcome = commands.execute(ctx, event)
            if outcome.action == "quit":
                framer.quit()
                return bytes(out), True
            out += framer.toggle_prompt() if outcome.action == "prompt" else framer.reply(outcome.text)
        else:
            out += event


def ask(state, line: str, level: str = "admin", now: float = START) -> str:
    """One command line, non-interactive: the answer without its final empty line."""
    answer, closed = converse(state, line.encode() + b"\n", level, now)
    assert closed
    text = answer.decode("latin-1")
    assert text.endswith("\n"), text
    return text[:-1]
