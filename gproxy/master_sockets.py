"""The listening sockets the master holds for its workers.

The master binds every listener once (TCP per bind address, unix per stats
socket path) and keeps it for its whole life: workers inherit the same
sockets by fork, and a re-executed master (SIGUSR2) inherits them by exec,
their numbers in the GPROXY_FDS environment variable (as gunicorn's
GUNICORN_FD). No listening socket is ever closed while a configuration still
uses it, so nothing queued in its backlog is lost by a reload or an upgrade
(HAProxy needs `-x`/`expose-fd listeners` for the same, reference/haproxy.md 3.1).

A reload binds what the new configuration adds (all or nothing: a bind that
fails closes the ones just made and refuses the reload); what it no longer
uses is closed only once the new workers are up (`prune()`), so a failed
reload can still fall back to the old configuration.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Callable

from gproxy.config.model import Address, Config, StatsSocket
from gproxy.errors import GproxyError
from gproxy.listeners import LISTEN_BACKLOG, BindError
from gproxy.runtime_api.server import _gid, _uid, bind_unix

ENV_FDS = "GPROXY_FDS"
__all__ = ["ENV_FDS", "LISTEN_BACKLOG", "SocketSet", "bind_unlistened", "tcp_key"]


def bind_unlistened(address: Address) -> socket.socket:
    """listeners.bind_tcp without its listen(): the first worker calls
    listen() when it is about to accept, so until a worker serves, the port
    refuses connections instead of queueing them for a worker that may
    never come (a failed start leaves no half-accepted client)."""
    host = "0.0.0.0" if address.host in ("", "*") else address.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, address.port))
    except OSError as exc:
        sock.close()
        raise BindError(f"cannot bind {address}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def tcp_key(address: Address) -> str:
    """The name of a TCP listener: its address as bind_tcp binds it."""
    host = "0.0.0.0" if address.host in ("", "*") else address.host
    return str(Address(host, address.port))


def bind_addresses(config: Config) -> dict[str, Address]:
    """Every TCP listener `config` needs, by key."""
    needed: dict[str, Address] = {}
    for frontend in config.frontends.values():
        for bind in frontend.bind:
            address = getattr(bind, "address", bind)  # a bind may carry more than its address
            needed.setdefault(tcp_key(address), address)
    return needed


def stats_specs(config: Config) -> dict[str, StatsSocket]:
    return {spec.path: spec for spec in config.global_.stats_sockets}


class SocketSet:
    """Listening sockets by key: `tcp` ("127.0.0.1:80") and `unix` (a path)."""

    def __init__(self, bind_tcp_: Callable[[Address], socket.socket] = bind_unlistened,
                 bind_unix_: Callable[[StatsSocket], socket.socket] = bind_unix) -> None:
        self._bind_tcp = bind_tcp_
        self._bind_unix = bind_unix_
        self.tcp: dict[str, socket.socket] = {}
        self.unix: dict[str, socket.socket] = {}
        self._inodes: dict[str, int] = {}  # the stats socket files this set created or inherited

    # -- binding ----------------------------------------------------------------------------------

    def update(self, config: Config) -> list[str]:
        """Bind what `config` needs and is not held yet; return the new keys.
        On an error, close what this call bound and raise it (a GproxyError)."""
        added_tcp: list[str] = []
        added_unix: list[str] = []
        try:
            for key, address in bind_addresses(config).items():
                if key not in self.tcp:
                    self.tcp[key] = self._bind_tcp(address)
                    added_tcp.append(key)
            for path, spec in stats_specs(config).items():
                if path in self.unix:
                    _apply_owner_and_mode(spec)
                    continue
                self.unix[path] = self._bind_unix(spec)
                added_unix.append(path)
                self._remember_inode(path)
        except GproxyError:
            for key in added_tcp:
                self.tcp.pop(key).close()
            for path in added_unix:
                self._close_unix(path, unlink=True)
            raise
        return added_tcp + added_unix

    def prune(self, configs: list[Config]) -> list[str]:
        """Close what none of `configs` uses; return the closed keys."""
        tcp_used: set[str] = set()
        unix_used: set[str] = set()
        for config in configs:
            tcp_used.update(bind_addresses(config))
            unix_used.update(stats_specs(config))
        closed = [key for key in self.tcp if key not in tcp_used]
        for key in closed:
            self.tcp.pop(key).close()
        gone = [path for path in self.unix if path not in unix_used]
        for path in gone:
            self._close_unix(path, unlink=True)
        return closed + gone

    def for_config(self, config: Config) -> tuple[dict[str, socket.socket], dict[str, socket.socket]]:
        """The sockets a worker of `config` serves: (tcp by key, unix by path)."""
        tcp = {key: self.tcp[key] for key in bind_addresses(config)}
        unix = {path: self.unix[path] for path in stats_specs(config)}
        return tcp, unix

    def all_sockets(self) -> list[socket.socket]:
        return [*self.tcp.values(), *self.unix.values()]

    # -- closing ----------------------------------------------------------------------------------

    def close_tcp(self) -> None:
        """Stop listening (a soft stop): new connections are refused once the
        workers have closed their copies too."""
        for sock in self.tcp.values():
            sock.close()
        self.tcp.clear()

    def close_all(self, unlink: bool) -> None:
        """Close everything; `unlink` removes the stats socket files this set
        made (not after a handover: the new master uses the same files)."""
        self.close_tcp()
        for path in list(self.unix):
            self._close_unix(path, unlink)

    def _close_unix(self, path: str, unlink: bool) -> None:
        self.unix.pop(path).close()
        inode = self._inodes.pop(path, None)
        if not unlink or inode is None:
            return
        try:
            if os.stat(path).st_ino == inode:  # still ours, not a newer process's
                os.unlink(path)
        except OSError:
            pass

    def _remember_inode(self, path: str) -> None:
        try:
            self._inodes[path] = os.stat(path).st_ino
        except OSError:
            pass

    # -- passing them to a re-executed master -------------------------------------------------------

    def to_env(self) -> str:
        """GPROXY_FDS for the next master; makes the sockets inheritable by exec."""
        for sock in self.all_sockets():
            os.set_inheritable(sock.fileno(), True)
        return json.dumps({"tcp": {key: sock.fileno() for key, sock in self.tcp.items()},
                           "unix": {path: sock.fileno() for path, sock in self.unix.items()}})

    @classmethod
    def from_env(cls, text: str) -> "SocketSet":
        """The sockets a previous master passed (GPROXY_FDS)."""
        try:
            data = json.loads(text)
            tcp = {str(k): int(v) for k, v in data.get("tcp", {}).items()}
            unix = {str(k): int(v) for k, v in data.get("unix", {}).items()}
        except (ValueError, AttributeError, TypeError):
            raise GproxyError(f"{ENV_FDS}: not the socket list a gproxy master passes") from None
        held = cls()
        for key, fd in tcp.items():
            held.tcp[key] = _adopt(fd, key)
        for path, fd in unix.items():
            held.unix[path] = _adopt(fd, path)
            held._remember_inode(path)
        return held


def _adopt(fd: int, name: str) -> socket.socket:
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        raise GproxyError(f"{ENV_FDS}: fd {fd} ({name}) is not a socket: {exc.strerror or exc}") from None
    os.set_inheritable(fd, False)
    sock.setblocking(False)
    return sock


def _apply_owner_and_mode(spec: StatsSocket) -> None:
    """A reload that changes a held stats socket's mode or owner applies it to the file."""
    try:
        os.chmod(spec.path, spec.mode)
        uid, gid = _uid(spec.user), _gid(spec.group)
        if uid != -1 or gid != -1:
            os.chown(spec.path, uid, gid)
    except OSError as exc:
        raise GproxyError(f"stats socket {spec.path}: {exc.strerror or exc}") from None
