"""A worker process: serves traffic on sockets the master bound.

The master forks it with everything already decided (`WorkerSpec`): the
configuration, the listening sockets of its slot (held by the master too;
with several workers, each has its own SO_REUSEPORT sockets, see
gproxy.master_sockets), the server state to carry over, and its two channels to
the master (gproxy.control). The worker then

1. builds a `Gproxy` on the inherited sockets (`Gproxy.adopt`) and
   re-applies the saved server state before it accepts anything;
2. chroots and drops to `user`/`group` (gproxy.daemon);
3. starts serving, says READY on its beat pipe and beats every second;
4. answers the master's runtime-API questions on its control socket, and
   shares state changes with the other workers on its relay socket: a
   command that a CLI client ran here successfully and that changes state
   (commands.RELAYED) is written to the master, which writes it to every
   other live worker; a command read there is run here at admin level,
   and not relayed again;
5. stops when the master says so: SIGUSR1 is a graceful stop (stop
   accepting, let connections finish for at most `hard_stop_after`; each
   keep-alive connection ends after its next response), SIGTERM a fast one.
   If the master dies (its end of the control socket closes), the worker
   stops gracefully too, so an orphan never keeps the ports.

Anything that fails before READY makes the worker exit with
WORKER_BOOT_ERROR, which tells the master not to start it again (gunicorn's
named exit codes): a configuration that cannot run stops the master at
start-up, or is rolled back on a reload.
"""

from __future__ import annotations

import gc
import os
import signal
import socket as _stdsocket
import sys
import traceback
from dataclasses import dataclass
from typing import Iterator, Mapping, Sequence

import gevent
from gevent import socket as gsocket
from gevent.event import Event
from gevent.lock import Semaphore

from gproxy import control, server_state
from gproxy.config.model import Config
from gproxy.daemon import drop_privileges, set_parent_death_signal
from gproxy.health import ForceHealth, SetAdmin
from gproxy.master_sockets import LISTEN_BACKLOG, tcp_key
from gproxy.proxy import Gproxy
from gproxy.runtime_api import commands
from gproxy.runtime_api.framing import Command, split_words

WORKER_OK = 0
WORKER_BOOT_ERROR = 3  # could not start: the master must not start it again
SHARED_MAX_ACCEPT = 1  # accepts per wake-up when several workers share a socket (gevent's advice)
CONTROL_RECV = 65536
CONTROL_TIMEOUT_MS = 2**31 - 1  # the control socket is the master's: never idle-closed
RELAY_TIMEOUT = 1.0  # seconds to hand a command to the master; longer, its relay socket is given up
RELAY_LOG_CHARS = 120  # of a command line quoted in a message
# The collector's first threshold (CPython's default is 700): under load the
# live objects of a worker hardly grow (what a request allocates, it frees), yet
# 700 ran a young collection every ~30 close-mode requests, walking the
# sessions in flight; cycles still get collected once 10,000 objects pile up.
GC_GEN0_THRESHOLD = 10000


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs, decided by the master before the fork."""

    config: Config
    generation: int
    index: int  # 0..workers-1 within its generation
    workers: int  # how many workers its generation has
    tcp: Mapping[str, Sequence[_stdsocket.socket]]  # its slot's listening sockets by master_sockets.tcp_key
    unix: Mapping[str, _stdsocket.socket]  # stats sockets by path
    beat_fd: int  # write end of the beat pipe
    control: _stdsocket.socket  # the worker's end of the control socket pair
    master_pid: int
    state_text: str = ""  # `show servers state` of the workers replaced
    hard_stop_after: float = 30.0  # seconds a graceful stop may last
    shared: bool = False  # another worker of its generation accepts from its TCP sockets too
    foreground: bool = True  # server messages also on stderr
    relay: _stdsocket.socket | None = None  # the worker's end of the relay socket pair


def _lines_from_master(sock) -> Iterator[str]:
    """The command lines the master writes on `sock` until it closes it
    (OSError and control.ChannelError reach the caller)."""
    reader = control.RequestReader()
    while True:
        data = sock.recv(CONTROL_RECV)
        if not data:
            return
        yield from reader.feed(data)


def _execute(proxy: Gproxy, session: commands.Session, line: str) -> commands.Outcome:
    """Run one runtime API command line from the master (its own, or one
    relayed from another worker) in `session`."""
    ctx = commands.Context(state=proxy, session=session, now=proxy.clock.wall(), facts=proxy.process_facts)
    return commands.execute(ctx, Command(tuple(split_words(line)), None, line))


def restore_state(proxy: Gproxy, text: str, now: float) -> list[str]:
    """Re-apply a saved `show servers state` to `proxy` (before it accepts
    traffic); return what was done, one line per server, and any problem."""
    rows, problems = server_state.parse(text)
    done = list(problems)
    for restore in server_state.plan(rows, proxy.config):
        backend = proxy.backends.get(restore.backend)
        server = next((s for s in backend.servers if s.name == restore.server), None) if backend else None
        if backend is None or server is None:
            continue
        what = []
        if restore.admin is not None:
            server.apply(SetAdmin(restore.admin), now)
            what.append(restore.admin)
        if restore.weight is not None and (backend.balancer.dynamic
                                           or restore.weight in (0, server.initial_weight)):
            backend.set_weight(server, restore.weight)
            what.append(f"weight {restore.weight}")
        if restore.health is not None:
            server.apply(ForceHealth(restore.health), now)
            what.append(restore.health.upper() if restore.health == "down" else "NOLB")
        if what:
            done.append(f"{restore.backend}/{restore.server}: {', '.join(what)}")
    return done


class Worker:
    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self.proxy: Gproxy | None = None
        self.done = Event()
        self.stopping = False
        self._relay_sock: gsocket.socket | None = None
        self._relay_lock = Semaphore()  # one command at a time on the relay socket: lines never interleave

    def log(self, message: str) -> None:
        print(f"[gproxy] worker {os.getpid()}: {message}", file=sys.stderr, flush=True)

    # -- boot -------------------------------------------------------------------------------------

    def run(self) -> int:
        gevent.signal_handler(signal.SIGTERM, self.stop, False)
        gevent.signal_handler(signal.SIGUSR1, self.stop, True)
        try:
            proxy = self.boot()
        except BaseException:  # noqa: BLE001 - whatever it is, this worker cannot serve
            self.log("could not start:\n" + traceback.format_exc().rstrip())
            return WORKER_BOOT_ERROR
        self.proxy = proxy
        if self.stopping:  # asked to stop while booting
            gevent.spawn(self._stop, self._graceful)
        else:
            self._write(control.READY)
        beats = gevent.spawn(self._beat)
        talk = gevent.spawn(self._serve_control)
        relayed = gevent.spawn(self._serve_relay)
        self.done.wait()
        beats.kill()
        talk.kill()
        relayed.kill()
        return WORKER_OK

    def boot(self) -> Gproxy:
        spec = self.spec
        config = spec.config
        proxy = Gproxy(config, foreground=spec.foreground)
        proxy.adopt(lambda address: spec.tcp[tcp_key(address)], lambda stats: spec.unix[stats.path])
        if spec.relay is not None:
            self._relay_sock = gsocket.socket(fileno=spec.relay.detach())
            for stats in proxy.stats_sockets:
                stats.relay = self.relay
            proxy.relay = self.relay  # the stats page's admin form
        if spec.state_text:
            for line in restore_state(proxy, spec.state_text, proxy.clock.wall()):
                self.log(f"server state restored: {line}")
        _preload(proxy)
        for group in spec.tcp.values():
            for sock in group:
                sock.listen(LISTEN_BACKLOG)  # the master binds without listening (master_sockets); again is harmless
        proxy.start()
        _freeze_heap()
        # Nothing was accepted yet: the hub has not run since start().
        drop_privileges(config.global_)
        set_parent_death_signal(signal.SIGTERM)  # after the uid change, which clears it
        if os.getppid() != spec.master_pid:
            raise RuntimeError("the master exited while this worker was starting")
        if spec.shared:  # one wake-up per accept, or the first worker to wake takes a whole batch
            for server in proxy.servers:
                server.max_accept = SHARED_MAX_ACCEPT
        return proxy

    # -- stop ---------------------------------------------------------------------------------------

    _graceful = True

    def stop(self, graceful: bool) -> None:
        """Signal handler (run by the hub): start stopping in a greenlet."""
        if self.stopping and graceful:
            return  # a second SIGUSR1 changes nothing; SIGTERM still hurries a graceful stop
        self.stopping = True
        self._graceful = graceful
        if self.proxy is not None:
            gevent.spawn(self._stop, graceful)

    def _stop(self, graceful: bool) -> None:
        proxy = self.proxy
        assert proxy is not None
        if graceful:
            # The stats sockets first: a CLI command sent now must reach the
            # new workers, not one that is going away.
            for stats in proxy.stats_sockets:
                if stats.server is not None:
                    stats.server.close()
        proxy.stop(graceful, timeout=self.spec.hard_stop_after if graceful else 0)
        self.done.set()

    # -- the channels to the master -----------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            os.write(self.spec.beat_fd, data)
        except (BlockingIOError, BrokenPipeError, OSError):
            pass  # a full pipe is a busy master; a broken one a dead master (the control socket says so)

    def _beat(self) -> None:
        while True:
            gevent.sleep(control.HEARTBEAT_INTERVAL)
            self._write(control.BEAT)

    def _serve_control(self) -> None:
        sock = gsocket.socket(fileno=self.spec.control.detach())
        session = commands.Session(level="admin", timeout_ms=CONTROL_TIMEOUT_MS, ident="master")
        proxy = self.proxy
        assert proxy is not None
        try:
            for line in _lines_from_master(sock):
                sock.sendall(control.encode_answer(_execute(proxy, session, line).text))
        except (OSError, control.ChannelError):
            pass
        finally:
            sock.close()
        if not self.stopping:
            self.log("the master is gone: stopping gracefully")
            self.stop(True)

    # -- state changes shared with the other workers ------------------------------------------------

    def relay(self, words: tuple[str, ...]) -> None:
        """A command a CLI client ran here: to the master, for the other
        workers (called before the client gets its answer)."""
        if self._relay_sock is None:
            return
        line = commands.relay_line(words)
        try:
            data = control.encode_request(line)
        except ValueError:
            self.log(f"not relayed to the other workers (longer than {control.MAX_REQUEST} bytes): "
                     f"{line[:RELAY_LOG_CHARS]!r}")
            return
        with self._relay_lock:
            sock = self._relay_sock  # again: given up while this command waited its turn?
            if sock is None:
                return
            try:
                with gevent.Timeout(RELAY_TIMEOUT):
                    sock.sendall(data)
            except (OSError, gevent.Timeout) as exc:
                # A line cut in the middle would garble the next ones: give the socket up.
                reason = "timed out" if isinstance(exc, gevent.Timeout) else str(exc)
                self.log(f"relay socket to the master: {reason}: state changes are no longer "
                         "shared with the other workers")
                self._close_relay()

    def _serve_relay(self) -> None:
        """Run what the other workers relayed, at admin level, until the master closes."""
        sock = self._relay_sock
        proxy = self.proxy
        if sock is None or proxy is None:
            return
        try:
            for line in _lines_from_master(sock):
                self._run_relayed(proxy, line)
        except (OSError, control.ChannelError) as exc:
            self.log(f"relay socket: {exc}")
        self._close_relay()

    def _run_relayed(self, proxy: Gproxy, line: str) -> None:
        session = commands.Session(level="admin", timeout_ms=CONTROL_TIMEOUT_MS, ident="relay")
        try:
            outcome = _execute(proxy, session, line)
        except Exception as exc:  # noqa: BLE001 - a relayed command must not take the worker down
            self.log(f"relayed command {line[:RELAY_LOG_CHARS]!r} failed: {exc!r}")
            return
        if not outcome.ok:
            self.log(f"relayed command {line[:RELAY_LOG_CHARS]!r} failed here: {outcome.text.strip()[:200]}")

    def _close_relay(self) -> None:
        sock, self._relay_sock = self._relay_sock, None
        if sock is not None:
            sock.close()


# Imported on first use somewhere in the proxy: loaded before a chroot hides them.
_LAZY_MODULES = ("encodings.idna", "gproxy.tunnel", "ipaddress")
# The stats page's authentication (hashlib loads OpenSSL: not for every process).
_STATS_PAGE_MODULES = ("hmac",)


def _preload(proxy: Gproxy) -> None:
    import importlib
    lazy = _LAZY_MODULES
    if any(fe.local_routes is not None for fe in proxy.frontends.values()):
        lazy += _STATS_PAGE_MODULES
    for name in lazy:
        importlib.import_module(name)
    gevent.get_hub().resolver  # noqa: B018 - created (and its module imported) now
    import time
    time.localtime()  # the time zone file is read once, before a chroot


def _freeze_heap() -> None:
    """What boot built (modules, configuration, live state, 25,000 objects)
    lives as long as the worker: moved out of the collector's generations
    (gc.freeze), a full collection no longer walks it (8 ms each before)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def run_worker(spec: WorkerSpec) -> int:
    """The worker's whole life, in the forked child; returns its exit status."""
    gevent.reinit()
    os.set_blocking(spec.beat_fd, False)
    return Worker(spec).run()
