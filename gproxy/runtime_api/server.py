"""The stats sockets (gevent): one unix stream server per `global.stats_socket`.

Binding: the socket is bound under a temporary name, given its mode and
owner, then renamed over the configured path, so clients never see a
half-configured socket. A socket file left by a dead process is replaced;
one that still accepts connections belongs to a live process and is an
error (two daemons must not share a socket).

Each connection runs in its own greenlet (at most MAX_CONNECTIONS per
socket, HAProxy's `stats maxconn` default; more wait in the backlog) and is
bounded everywhere: `stats_timeout` of silence closes it, a request line
longer than framing.MAX_REQUEST closes it, answers are written with the
same timeout. Any error in a command is answered or logged and closes that
connection only: the daemon never goes down because of a CLI client.

With several workers, `relay` (set by gproxy.worker) gets the words of each
command that succeeded and must reach the other workers (commands.relayed),
before the client gets its answer.
"""

from __future__ import annotations

import grp
import itertools
import os
import pwd
import resource
import socket as _stdsocket
import stat
import sys
from typing import Callable

from gevent import socket
from gevent.pool import Pool
from gevent.server import StreamServer

from gproxy import rate_sampler
from gproxy.config.model import StatsSocket
from gproxy.errors import GproxyError
from gproxy.runtime_api import commands
from gproxy.runtime_api.framing import CLOSE, NEED_DATA, CliFramer, Command
from gproxy.runtime_api.reports import ProcessFacts
from gproxy.runtime_api.view import ProxyState

MAX_CONNECTIONS = 10  # HAProxy's default `stats maxconn`
RECV_SIZE = 16384
LISTEN_BACKLOG = 64
_ids = itertools.count(1)

Relay = Callable[[tuple[str, ...]], None]  # a command's words, for the other workers


class StatsSocketError(GproxyError):
    """A stats socket cannot be bound (path in use, bad owner, ...)."""


def _uid(user: int | str | None) -> int:
    if user is None:
        return -1
    if isinstance(user, int):
        return user
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        raise StatsSocketError(f"stats socket: unknown user {user!r}") from None


def _gid(group: int | str | None) -> int:
    if group is None:
        return -1
    if isinstance(group, int):
        return group
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise StatsSocketError(f"stats socket: unknown group {group!r}") from None


def _check_path(path: str) -> None:
    """Refuse a path held by a live process; remove a stale socket file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise StatsSocketError(f"stats socket {path}: exists and is not a socket")
    probe = _stdsocket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return  # stale: whoever created it is gone; the rename below replaces it
    except OSError as exc:
        raise StatsSocketError(f"stats socket {path}: {exc.strerror or exc}") from None
    finally:
        probe.close()
    raise StatsSocketError(f"stats socket {path}: in use by a running process")


def bind_unix(spec: StatsSocket) -> _stdsocket.socket:
    """A listening unix socket at `spec.path`, with its mode and owner."""
    _check_path(spec.path)
    directory = os.path.dirname(spec.path) or "."
    if not os.path.isdir(directory):
        raise StatsSocketError(f"stats socket {spec.path}: directory {directory} does not exist")
    uid, gid = _uid(spec.user), _gid(spec.group)
    temp = f"{spec.path}.{os.getpid()}.tmp"
    sock = _stdsocket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
    try:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        sock.bind(temp)
        os.chmod(temp, spec.mode)
        if uid != -1 or gid != -1:
            os.chown(temp, uid, gid)
        sock.listen(LISTEN_BACKLOG)
        os.rename(temp, spec.path)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise StatsSocketError(f"stats socket {spec.path}: {exc.strerror or exc}") from None
    return sock


class StatsSocketServer:
    """One `stats_socket`: its listener and its CLI connections."""

    def __init__(self, spec: StatsSocket, state: ProxyState, clock: Callable[[], float], timeout_ms: int,
                 facts: Callable[[], ProcessFacts]):
        self.spec = spec
        self.state = state
        self.clock = clock
        self.timeout_ms = timeout_ms
        self.facts = facts
        self.sock: _stdsocket.socket | None = None
        self.server: StreamServer | None = None
        self._inode: int | None = None
        self.relay: Relay | None = None  # set by a worker of the master (gproxy.worker)

    def bind(self) -> None:
        if self.sock is None:
            self.sock = bind_unix(self.spec)
            self._inode = os.stat(self.spec.path).st_ino

    def start(self) -> None:
        self.bind()
        self.server = StreamServer(self.sock, handle=self._handle, spawn=Pool(MAX_CONNECTIONS))
        self.server.start()
        # Rates need samples from the start (a rate_max seen before the
        # first `show stat` counts); one sampler per process, however many
        # sockets. Statistics never keep the socket from serving.
        try:
            rate_sampler.ensure_started(self.state)
        except Exception as exc:
            print(f"gproxy: stats socket {self.spec.path}: no rates: {exc!r}", file=sys.stderr)

    def stop(self, timeout: float = 1.0) -> None:
        """Stop accepting, give open CLI connections `timeout`, remove the file."""
        try:
            rate_sampler.stop(self.state)
        except Exception:
            pass  # never started (see start): nothing to stop
        if self.server is not None:
            self.server.stop(timeout=timeout)
            self.server = None
        elif self.sock is not None:
            self.sock.close()
        self.sock = None
        try:
            # Remove the path only if it is still ours (a newer process may own it now).
            if self._inode is not None and os.stat(self.spec.path).st_ino == self._inode:
                os.unlink(self.spec.path)
        except OSError:
            pass
        self._inode = None

    def _handle(self, conn: socket.socket, address) -> None:
        try:
            serve_connection(conn, self.state, self.spec.level, self.timeout_ms, self.clock, self.facts,
                             self.relay)
        except Exception as exc:  # a CLI client must never take the daemon down
            print(f"gproxy: stats socket {self.spec.path}: {exc!r}", file=sys.stderr)
        finally:
            try:
                conn.close()
            except OSError:
                pass


def serve_connection(conn: socket.socket, state: ProxyState, level, timeout_ms: int,
                     clock: Callable[[], float], facts: Callable[[], ProcessFacts],
                     relay: Relay | None = None) -> None:
    """Run one CLI connection until it closes (the framing decides when)."""
    framer = CliFramer()
    session = commands.Session(level=level, timeout_ms=timeout_ms, ident=f"0x{next(_ids):x}")
    while True:
        event = framer.next_event()
        if event is CLOSE:
            return
        if event is NEED_DATA:
            conn.settimeout(session.timeout_ms / 1000.0)
            try:
                data = conn.recv(RECV_SIZE)
            except (socket.timeout, OSError):
                return  # silent or gone: HAProxy closes at `stats timeout` too
            framer.receive_data(data)
            continue
        if isinstance(event, Command):
            ctx = commands.Context(state=state, session=session, now=clock(), facts=facts)
            outcome = commands.execute(ctx, event)
            if relay is not None and commands.relayed(event, outcome):
                relay(event.words)
            if outcome.action == "quit":
                framer.quit()
                return
            out = framer.toggle_prompt() if outcome.action == "prompt" else framer.reply(outcome.text)
        else:
            out = event  # a prompt while a payload is typed
        if out:
            conn.settimeout(session.timeout_ms / 1000.0)
            try:
                conn.sendall(out)
            except (socket.timeout, OSError):
                return


def process_facts(state, listeners: int, tasks: int) -> ProcessFacts:
    """What `show info` needs from the system, read now."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    node = state.config.global_.node or _stdsocket.gethostname()
    return ProcessFacts(pid=os.getpid(), ulimit_n=soft, maxsock=soft, listeners=listeners, tasks=tasks, node=node)
