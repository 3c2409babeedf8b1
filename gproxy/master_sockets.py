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

Several workers (`workers` > 1): each TCP listener is a group of sockets
bound with SO_REUSEPORT, one per worker slot, and worker slot i accepts only
from its own (`slot_indices`), so the kernel spreads new connections over
the workers (one shared socket let the first worker to wake take every
keep-alive connection). Two kernel facts shape the rest:

* closing a listening SO_REUSEPORT socket resets the connections queued in
  its backlog: a group never shrinks while its listener is in use, not even
  when a reload lowers `workers` (the sockets are spread over fewer workers
  instead) nor when a worker is replaced (its replacement takes its slot);
* each listening socket of a group gets its share of new connections whether
  anyone accepts from it or not: `slot_indices` gives every socket to some
  worker, whatever the number of sockets and of workers.

`tcp` holds each listener's first socket (the only one with workers = 1,
bound without SO_REUSEPORT as before), `more` the rest of its group.
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
__all__ = ["ENV_FDS", "LISTEN_BACKLOG", "SocketSet", "bind_unlistened", "slot_indices", "tcp_key"]


def slot_indices(held: int, workers: int, index: int) -> tuple[int, ...]:
    """Which of a listener's `held` sockets worker slot `index` (of
    `workers`) accepts from. Every socket goes to exactly one worker when
    there are at least as many sockets as workers (i, i+N, i+2N...: a group
    kept after `workers` shrank); with fewer sockets, workers share them
    (i mod held), so no socket is ever left without a worker either way."""
    if held < 1 or not 0 <= index < workers:
        raise ValueError(f"slot {index} of {workers} with {held} sockets")
    if held >= workers:
        return tuple(range(index, held, workers))
    return (index % held,)


def slots_wanted(config: Config) -> int:
    """Sockets per TCP listener for `config`: one per worker."""
    return max(1, config.global_.workers)


def bind_unlistened(address: Address, reuse_port: bool = False) -> socket.socket:
    """listeners.bind_tcp without its listen(): the first worker calls
    listen() when it is about to accept, so until a worker serves, the port
    refuses connections instead of queueing them for a worker that may
    never come (a failed start leaves no half-accepted client). The same
    holds for each socket of a SO_REUSEPORT group: the kernel gives new
    connections only to the sockets that listen."""
    host = "0.0.0.0" if address.host in ("", "*") else address.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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
    """Listening sockets by key: `tcp` ("127.0.0.1:80": the listener's first
    socket), `more` (the rest of its SO_REUSEPORT group, with workers > 1)
    and `unix` (a path)."""

    def __init__(self, bind_tcp_: Callable[..., socket.socket] = bind_unlistened,
                 bind_unix_: Callable[[StatsSocket], socket.socket] = bind_unix) -> None:
        self._bind_tcp = bind_tcp_
        self._bind_unix = bind_unix_
        self.tcp: dict[str, socket.socket] = {}
        self.more: dict[str, list[socket.socket]] = {}
        self.unix: dict[str, socket.socket] = {}
        self._inodes: dict[str, int] = {}  # the stats socket files this set created or inherited

    def group(self, key: str) -> list[socket.socket]:
        """Every socket of a TCP listener, in slot order."""
        return [self.tcp[key], *self.more.get(key, ())]

    def sizes(self) -> dict[str, int]:
        """Sockets held per TCP listener (what `trim` can go back to)."""
        return {key: 1 + len(self.more.get(key, ())) for key in self.tcp}

    # -- binding ----------------------------------------------------------------------------------

    def update(self, config: Config) -> list[str]:
        """Bind what `config` needs and is not held yet (listeners, and the
        sockets a listener's group lacks for `workers`); return the new keys.
        On an error, close what this call bound and raise it (a GproxyError)."""
        added_tcp: list[str] = []
        added_more: list[tuple[str, socket.socket]] = []
        flipped: list[socket.socket] = []
        added_unix: list[str] = []
        wanted = slots_wanted(config)
        try:
            for key, address in bind_addresses(config).items():
                if key not in self.tcp:
                    self.tcp[key] = self._bind(address, wanted > 1)
                    added_tcp.append(key)
                group = self.group(key)
                if len(group) < wanted and not _reuses_port(group[0]):
                    # Bound with workers = 1. Linux lets a bound (even listening)
                    # socket take SO_REUSEPORT, and the sockets bound next join its
                    # group: the first socket stays, with what its backlog holds.
                    group[0].setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    flipped.append(group[0])
                for _ in range(len(group), wanted):
                    sock = self._bind(address, True)
                    self.more.setdefault(key, []).append(sock)
                    added_more.append((key, sock))
            for path, spec in stats_specs(config).items():
                if path in self.unix:
                    _apply_owner_and_mode(spec)
                    continue
                self.unix[path] = self._bind_unix(spec)
                added_unix.append(path)
                self._remember_inode(path)
        except GproxyError:
            for key, sock in reversed(added_more):
                self.more[key].remove(sock)
                if not self.more[key]:
                    del self.more[key]
                sock.close()  # never listened: nothing queued in it
            for sock in flipped:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 0)
            for key in added_tcp:
                self.tcp.pop(key).close()
            for path in added_unix:
                self._close_unix(path, unlink=True)
            raise
        return added_tcp + added_unix

    def _bind(self, address: Address, reuse_port: bool) -> socket.socket:
        if reuse_port:
            return self._bind_tcp(address, reuse_port=True)
        return self._bind_tcp(address)

    def prune(self, configs: list[Config]) -> list[str]:
        """Close what none of `configs` uses; return the closed keys."""
        tcp_used: set[str] = set()
        unix_used: set[str] = set()
        for config in configs:
            tcp_used.update(bind_addresses(config))
            unix_used.update(stats_specs(config))
        closed = [key for key in self.tcp if key not in tcp_used]
        for key in closed:
            self._close_tcp(key)
        gone = [path for path in self.unix if path not in unix_used]
        for path in gone:
            self._close_unix(path, unlink=True)
        return closed + gone

    def trim(self, sizes: dict[str, int]) -> int:
        """Close the sockets a listener's group gained after `sizes` (a
        reload rolled back: the workers that keep serving never had them,
        and a listening socket nobody accepts from would keep taking its
        share of new connections). Returns how many were closed."""
        closed = 0
        for key in list(self.more):
            keep = max(0, sizes.get(key, 1) - 1)
            while len(self.more[key]) > keep:
                self.more[key].pop().close()
                closed += 1
            if not self.more[key]:
                del self.more[key]
        return closed

    def for_config(self, config: Config) -> tuple[dict[str, socket.socket], dict[str, socket.socket]]:
        """The first sockets of `config`'s listeners and its stats sockets: (tcp by key, unix by path)."""
        tcp = {key: self.tcp[key] for key in bind_addresses(config)}
        unix = {path: self.unix[path] for path in stats_specs(config)}
        return tcp, unix

    def for_worker(self, config: Config, index: int
                   ) -> tuple[dict[str, list[socket.socket]], dict[str, socket.socket], bool]:
        """The sockets worker slot `index` of `config` serves: (tcp by key,
        unix by path, whether another worker accepts from its TCP sockets too)."""
        workers = max(1, config.global_.workers)
        tcp: dict[str, list[socket.socket]] = {}
        shared = False
        for key in bind_addresses(config):
            group = self.group(key)
            tcp[key] = [group[i] for i in slot_indices(len(group), workers, index)]
            shared = shared or len(group) < workers
        unix = {path: self.unix[path] for path in stats_specs(config)}
        return tcp, unix, shared

    def all_sockets(self) -> list[socket.socket]:
        return [*self.tcp.values(), *(sock for group in self.more.values() for sock in group),
                *self.unix.values()]

    # -- closing ----------------------------------------------------------------------------------

    def close_tcp(self) -> None:
        """Stop listening (a soft stop): new connections are refused once the
        workers have closed their copies too."""
        for key in list(self.tcp):
            self._close_tcp(key)

    def _close_tcp(self, key: str) -> None:
        for sock in self.more.pop(key, ()):
            sock.close()
        self.tcp.pop(key).close()

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
        """GPROXY_FDS for the next master; makes the sockets inheritable by exec.
        The groups' other sockets go under "more", which a master that
        predates them ignores (`tcp` keeps its old shape)."""
        for sock in self.all_sockets():
            os.set_inheritable(sock.fileno(), True)
        return json.dumps({"tcp": {key: sock.fileno() for key, sock in self.tcp.items()},
                           "more": {key: [sock.fileno() for sock in group] for key, group in self.more.items()},
                           "unix": {path: sock.fileno() for path, sock in self.unix.items()}})

    @classmethod
    def from_env(cls, text: str) -> "SocketSet":
        """The sockets a previous master passed (GPROXY_FDS)."""
        try:
            data = json.loads(text)
            tcp = {str(k): int(v) for k, v in data.get("tcp", {}).items()}
            more = {str(k): [int(fd) for fd in v] for k, v in data.get("more", {}).items()}
            unix = {str(k): int(v) for k, v in data.get("unix", {}).items()}
        except (ValueError, AttributeError, TypeError):
            raise GproxyError(f"{ENV_FDS}: not the socket list a gproxy master passes") from None
        if not set(more) <= set(tcp):
            raise GproxyError(f"{ENV_FDS}: more sockets for a listener it does not pass")
        held = cls()
        for key, fd in tcp.items():
            held.tcp[key] = _adopt(fd, key)
        for key, fds in more.items():
            if fds:
                held.more[key] = [_adopt(fd, key) for fd in fds]
        for path, fd in unix.items():
            held.unix[path] = _adopt(fd, path)
            held._remember_inode(path)
        return held


def _reuses_port(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))


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
