"""What the runtime API reads and changes: the live proxy state, as a
Protocol (the `Gproxy` object satisfies it; unit tests build a small one from
a Config without sockets), plus lookups shared by reports and commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from gproxy.config.model import Config
from gproxy.runtime import BackendRuntime, FrontendRuntime, ProcessState, ServerRuntime

PROCESS_NUM = 1  # HAProxy's relative process number (`pid` column); one process here


class ProxyState(Protocol):
    config: Config
    frontends: dict[str, FrontendRuntime]
    backends: dict[str, BackendRuntime]
    process: ProcessState
    # With workers > 1: hands a state change's command words to the other
    # workers (gproxy.worker); None with one worker.
    relay: Callable[[tuple[str, ...]], None] | None


@dataclass(frozen=True)
class ProxyEntry:
    """One proxy in configuration order: a listen has both sides."""

    name: str
    id: int
    frontend: FrontendRuntime | None
    backend: BackendRuntime | None


def proxies(state: ProxyState) -> Iterator[ProxyEntry]:
    """Every proxy in the file's order (the order of `show stat`)."""
    frontends, backends = state.frontends, state.backends
    for name in state.config.proxy_order:
        fe = frontends.get(name)
        be = backends.get(name)
        proxy_id = fe.cfg.id if fe is not None else be.cfg.id if be is not None else 0
        yield ProxyEntry(name, proxy_id, fe, be)


def _by_name_or_id(items: dict, key: str, ident) -> object | None:
    """HAProxy accepts a name or `#<numeric id>` for backends and servers."""
    if key.startswith("#"):
        try:
            wanted = int(key[1:])
        except ValueError:
            return None
        for item in items.values():
            if ident(item) == wanted:
                return item
        return None
    return items.get(key)


def find_backend(state: ProxyState, key: str) -> BackendRuntime | None:
    return _by_name_or_id(state.backends, key, lambda be: be.cfg.id)  # type: ignore[return-value]


def find_server(backend: BackendRuntime, key: str) -> ServerRuntime | None:
    return _by_name_or_id(backend.by_name, key, lambda srv: srv.id)  # type: ignore[return-value]


def find_frontend(state: ProxyState, key: str) -> FrontendRuntime | None:
    return _by_name_or_id(state.frontends, key, lambda fe: fe.cfg.id)  # type: ignore[return-value]


def find_proxy_id(state: ProxyState, key: str) -> int:
    """`show stat <proxy> ...`: a proxy name, else HAProxy's atoi() of the
    word (so an unknown name is 0, which callers report as No such proxy)."""
    for entry in proxies(state):
        if entry.name == key:
            return entry.id
    return atoi(key)


def atoi(text: str) -> int:
    """C's atoi(): optional blanks and sign, then digits; anything else stops it."""
    text = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    digits = 0
    value = 0
    for char in text:
        if not "0" <= char <= "9":
            break
        value = value * 10 + ord(char) - 48
        digits += 1
    return sign * value if digits else 0


def backend_weight(backend: BackendRuntime) -> tuple[int, int, int]:
    """(usable weight, active count, backup count) as HAProxy's BACKEND row
    shows them: the weight of the usable servers of the group in use
    (actives, or the backups when no active is usable)."""
    act = bck = act_weight = bck_weight = 0
    for srv in backend.servers:
        if srv.usable:
            if srv.cfg.backup:
                bck += 1
                bck_weight += srv.weight
            else:
                act += 1
                act_weight += srv.weight
    return (act_weight if act else bck_weight), act, bck


def fullconn(backend: BackendRuntime) -> int:
    """`slim` of a BACKEND row: `fullconn`, by default 10% (rounded up) of the
    maxconn of the frontends that use it, as HAProxy computes it."""
    if backend.cfg.fullconn:
        return backend.cfg.fullconn
    return max(1, (backend.frontend_maxconn + 9) // 10)


def server_addr(srv: ServerRuntime) -> str:
    host = srv.host
    return f"[{host}]:{srv.port}" if ":" in host else f"{host}:{srv.port}"
