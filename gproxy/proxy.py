"""The gproxy process: builds live state from a Config, binds, serves.

`Gproxy` wires the parts together and owns their lifecycle: listeners (one
gproxy.acceptor.Acceptor per bind, which stops accepting at maxconn so that
backpressure happens at accept; an HTTP connection waits for its first bytes
parked, without a greenlet), health checkers (one greenlet per checked
server), log sinks, and the event subscriptions that turn state changes into
log messages. The per-connection work is in http_proxy / tcp_proxy.
"""

from __future__ import annotations

import itertools
import random
import socket
import sys
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from gevent.event import Event

from gproxy.acceptor import Acceptor, Parked

from gproxy.checker import HealthChecker, run_check
from gproxy.config.model import Address, Config, LogTarget, StatsSocket
from gproxy.context import Clock, ProxyContext
from gproxy.health import StartCheck
from gproxy.events import BackendStateChanged, EventBus, ServerStateChanged
from gproxy.http_proxy import HttpSession
from gproxy.listeners import Listener, PreambleError, accept_preamble, bind_tcp, matching_listener
from gproxy.logfmt import _accept_date as accept_date  # the date of every log line
from gproxy.logfmt import format_httplog, format_tcplog
from gproxy.logsink import LogSink
from gproxy.netio import close_quietly
from gproxy.runtime import BackendRuntime, FrontendRuntime, ProcessState, Stream
from gproxy.runtime_api.server import StatsSocketServer, process_facts
from gproxy.session_pool import SessionPool
from gproxy.stats_page.routes import LocalRoutes
from gproxy.tcp_proxy import TcpSession
from gproxy.proxy_protocol import check_preamble

if TYPE_CHECKING:
    from gproxy.tls import TlsContexts

GRACEFUL_STOP_TIMEOUT = 30.0  # seconds a soft stop waits for connections


class Gproxy:
    def __init__(self, config: Config, bus: EventBus | None = None, clock: Clock | None = None,
                 foreground: bool = True):
        self.config = config
        self.bus = bus or EventBus()
        self.clock = clock or Clock()
        now = self.clock.wall()
        g = config.global_
        self.process = ProcessState(started=now, maxconn=g.maxconn)
        self.ctx = ProxyContext(bus=self.bus, process=self.process, tune=g.tune, clock=self.clock)
        self.backends = {name: BackendRuntime(cfg, self.bus, now, self.clock.wall)
                         for name, cfg in config.backends.items()}
        self.frontends: dict[str, FrontendRuntime] = {}
        for name, cfg in config.frontends.items():
            backend = self.backends.get(cfg.default_backend) if cfg.default_backend else None
            self.frontends[name] = FrontendRuntime(cfg, backend)
            if backend is not None:
                backend.frontend_maxconn += cfg.maxconn
        for fe in self.frontends.values():  # the stats page and metrics some frontends serve
            fe.local_routes = LocalRoutes.for_frontend(fe.cfg, self, self.clock.wall, self.process_facts)
        self._sinks: dict[tuple[LogTarget, ...], LogSink] = {}
        self.global_sink = self._sink(g.log)
        self.foreground = foreground
        self.listening: list[tuple[FrontendRuntime, object]] = []  # (frontend, socket)
        self.servers: list[Acceptor] = []
        # Connections are counted from accept to close, parked or served:
        # maxconn (global and per frontend) stops the accepting, as a full pool did.
        self._fe_conns: dict[str, int] = {}
        self._sessions = SessionPool()  # the greenlets serving connections (reused)
        self._parked: dict[int, tuple[Parked, object]] = {}  # id -> (wait, client socket)
        self._all_closed = Event()
        self._all_closed.set()
        self._stopped = Event()
        self.stats_sockets: list[StatsSocketServer] = []
        # Set by a worker of several (gproxy.worker): the stats page's admin
        # actions reach the other workers through it, as the CLI's commands do.
        self.relay = None
        self._stream_ids = itertools.count(1)
        self.notifier = None  # the SNMP notifier, when [snmp] is configured (started in start())
        self.tls: TlsContexts | None = None  # certificates read by load_tls() (a reload builds new ones)
        self.bus.subscribe(ServerStateChanged, self._on_server_change)
        self.bus.subscribe(BackendStateChanged, self._on_backend_change)

    # ---- logs ----------------------------------------------------------------
    def _sink(self, targets: tuple[LogTarget, ...]) -> LogSink | None:
        if not targets:
            return None
        sink = self._sinks.get(targets)
        if sink is None:
            sink = self._sinks[targets] = LogSink(targets, tag="gproxy")
        return sink

    def _message(self, backend_name: str, message: str, severity: str) -> None:
        backend = self.backends.get(backend_name)
        sink = self._sink(backend.cfg.log.targets) if backend else self.global_sink
        sink = sink or self.global_sink
        if sink is not None:
            sink.log_message(message, severity)
        if self.foreground:
            print(f"[gproxy] {message}", file=sys.stderr, flush=True)

    def _on_server_change(self, event: ServerStateChanged) -> None:
        severity = "alert" if event.new.startswith(("DOWN", "MAINT")) else "notice"
        self._message(event.backend, event.message, severity)

    def _on_backend_change(self, event: BackendStateChanged) -> None:
        self._message(event.backend, event.message, "notice" if event.up else "emerg")

    def _access_logger(self, fe: FrontendRuntime):
        cfg = fe.cfg
        sink = self._sink(cfg.log.targets)
        if sink is None:
            return None
        formatter = format_httplog if (cfg.mode == "http" and cfg.log.httplog) else format_tcplog
        log_record = sink.log_record
        return lambda rec: log_record(rec, formatter)

    # ---- lifecycle -----------------------------------------------------------
    def load_tls(self, contexts: TlsContexts | None = None) -> None:
        """Read the certificates and keys (ConfigError naming the file if one
        cannot be used), or take `contexts` built by the caller (a reload
        validates the new configuration with gproxy.tls.build_contexts first)."""
        if contexts is None and self.tls is not None:
            return
        self.tls = contexts or _build_tls(self.config)
        for backend in self.backends.values():
            for server in backend.servers:
                server.tls = self.tls.servers.get((backend.name, server.name))

    def _listener(self, fe: FrontendRuntime, sock) -> Listener:
        """A listening socket's bind options, TLS context and log name."""
        assert self.tls is not None
        listeners = tuple(Listener(bind, self.tls.binds.get((fe.name, index)), str(index + 1))
                          for index, bind in enumerate(fe.cfg.listeners))
        try:
            found = matching_listener(listeners, sock.getsockname())
        except OSError:
            found = None
        return found or listeners[0]

    def bind(self) -> None:
        """Bind every listener (before daemonizing, so errors are visible)."""
        self.load_tls()
        for fe in self.frontends.values():
            for address in fe.cfg.bind:
                self.listening.append((fe, bind_tcp(address)))
        self._bind_stats_sockets()

    def adopt(self, listener: Callable[[Address], Sequence[socket.socket]],
              stats_socket: Callable[[StatsSocket], socket.socket]) -> None:
        """Serve sockets bound by another process (a worker's, from its master)
        instead of binding: `listener(address)` gives the sockets of a bind
        (one, or several of a SO_REUSEPORT group) and `stats_socket(spec)` a
        stats socket. Adopted stats sockets are not unlinked at stop: the master owns the files."""
        self.load_tls()  # certificates are read now, before privileges are dropped
        for fe in self.frontends.values():
            for address in fe.cfg.bind:
                self.listening.extend((fe, sock) for sock in listener(address))
        g = self.config.global_
        for spec in g.stats_sockets:
            stats = StatsSocketServer(spec, self, self.clock.wall, g.stats_timeout, self.process_facts)
            stats.sock = stats_socket(spec)  # set before start(): bind() keeps it, stop() won't unlink
            self.stats_sockets.append(stats)

    # ---- runtime API (stats sockets) ----------------------------------------
    def _bind_stats_sockets(self) -> None:
        g = self.config.global_
        for spec in g.stats_sockets:
            stats = StatsSocketServer(spec, self, self.clock.wall, g.stats_timeout, self.process_facts)
            stats.bind()
            self.stats_sockets.append(stats)

    def process_facts(self):
        """`show info`'s view of the process (pid, limits, listeners)."""
        checkers = sum(1 for be in self.backends.values() for srv in be.servers if srv.checker is not None)
        return process_facts(self, listeners=len(self.listening) + len(self.stats_sockets),
                             tasks=checkers + len(self.process.streams))

    def start(self) -> None:
        self._start_notifier()
        if not self.listening:
            self.bind()
        self.load_tls()
        for fe, sock in self.listening:
            handler = partial(self._accepted, fe, self._access_logger(fe),
                              HttpSession if fe.cfg.mode == "http" else TcpSession, self._listener(fe, sock))
            server = Acceptor(sock, handler, partial(self._full, fe))
            server.start()
            self.servers.append(server)
        if not self.stats_sockets:
            self._bind_stats_sockets()
        for stats in self.stats_sockets:
            stats.start()
        self._start_checks()

    def _start_notifier(self) -> None:
        """SNMP traps and notify command. Started here, after a daemon's fork, since it
        runs a thread; imported only when configured (pysnmp is slow to import)."""
        if self.config.snmp is None or self.notifier is not None:
            return
        from checks.snmp.notifier import attach
        self.notifier = attach(self.bus, self.config.snmp, source="gproxy", node=self.config.global_.node,
                               log=lambda message: self._message("", message, "notice"))

    def _start_checks(self) -> None:
        for backend in self.backends.values():
            cfg = backend.cfg
            for server in backend.servers:
                scfg = server.cfg
                if not scfg.check:
                    continue
                # As HAProxy: checks go through the server's TLS and PROXY
                # header unless `port` sends them to another service.
                same_service = scfg.check_port is None
                runner = partial(self._run_check, server, partial(
                    run_check, httpchk=cfg.httpchk, connect_timeout_ms=cfg.timeouts.connect,
                    check_timeout_ms=cfg.timeouts.check, inter_ms=scfg.inter,
                    preamble=check_preamble(scfg.send_proxy) if same_service else b"",
                    tls=server.tls if same_service else None, server_hostname=scfg.sni))
                interval = partial(server.health.next_interval_ms, scfg.inter,
                                   scfg.eff_fastinter, scfg.eff_downinter)
                checker = HealthChecker(
                    f"{backend.name}/{server.name}", run=runner, interval=interval,
                    on_result=partial(self._check_result, server),
                    # Spread first checks over the first interval, as HAProxy does.
                    first_delay_ms=random.randint(0, max(0, min(scfg.inter, 1000))),
                    should_run=partial(getattr, server.health, "checks_active"),
                )
                server.checker = checker
                checker.start()

    def _run_check(self, server, check):
        server.health.process_event(StartCheck(), self.clock.wall())
        # The address is read at each check: `set server addr` may change it.
        return check(server.host, server.cfg.check_port or server.port)

    def _check_result(self, server, outcome) -> None:
        server.check_done(outcome, self.clock.wall())

    def _client_refused(self, fe: FrontendRuntime, listener: Listener, client, address, current: int) -> None:
        """Close, count (conn_tot, dcon) and log a connection refused by maxconn_per_client."""
        close_quietly(client)
        counters = fe.counters
        counters.conn_tot += 1
        counters.denied_conn += 1
        self.process.cum_conns += 1
        sink = self._sink(fe.cfg.log.targets)
        if sink is not None:
            sink.log_message(f"{address[0]}:{address[1]} [{accept_date(self.clock.wall())}] "
                             f"{fe.name}/{listener.name}: Connection refused: {current} connections "
                             f"from this address (maxconn_per_client)", "info")

    # ---- connections: accept, park, serve -------------------------------------
    def _full(self, fe: FrontendRuntime) -> bool:
        """maxconn reached (the process's or the frontend's): stop accepting."""
        return self.process.cur_conns >= self.process.maxconn or self._fe_conns.get(fe.name, 0) >= fe.maxconn

    def _opened(self, fe: FrontendRuntime, client) -> None:
        process = self.process
        process.cur_conns += 1
        process.cum_conns += 1
        fe.counters.conn_tot += 1
        self._fe_conns[fe.name] = self._fe_conns.get(fe.name, 0) + 1
        self._all_closed.clear()
        # Head and body go out in separate writes: without TCP_NODELAY,
        # Nagle plus the client's delayed ACK stalls each response ~40 ms.
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def _closed(self, fe: FrontendRuntime) -> None:
        process = self.process
        process.cur_conns -= 1
        self._fe_conns[fe.name] -= 1
        if not process.cur_conns:
            self._all_closed.set()
        for server in self.servers:
            server.resume()

    def _accepted(self, fe: FrontendRuntime, log, session_class, listener: Listener, client, address) -> None:
        """A new connection, in the hub. A plain HTTP one is parked until its
        first bytes (no greenlet while the client is silent: memory per idle
        connection); the others get their greenlet now (the TCP mode
        connects to a server at once; TLS and PROXY have their preamble)."""
        try:
            limits = fe.client_conns
            if limits is not None:
                # maxconn_per_client: admission by the peer's address, before any
                # byte is read (HAProxy's `tcp-request connection reject`).
                admission = limits.admit(address[0])
                if not admission.admitted:
                    self._sessions.spawn(self._client_refused, fe, listener, client, address, admission.current)
                    return
            self._opened(fe, client)
            if session_class is HttpSession and listener.tls is None and not listener.bind.accept_proxy:
                self._park(fe, log, listener, client, address)
            else:
                self._sessions.spawn(self._serve, fe, log, session_class, listener, client, address)
        except BaseException:  # noqa: BLE001 - never out into the accept loop
            close_quietly(client)
            raise

    def _park(self, fe: FrontendRuntime, log, listener: Listener, client, address) -> None:
        """Wait for a counted connection's first bytes without a greenlet; the
        first request's timeout (http_request) runs from now, as it did."""
        clock = self.clock
        fe.counters.enter(clock.wall())
        accepted_at = (clock.wall(), clock.mono())
        key = id(client)

        def ready(timed_out: bool) -> None:
            del self._parked[key]
            self._sessions.spawn(self._serve, fe, log, HttpSession, listener, client, address, accepted_at)

        self._parked[key] = (Parked(client, fe.cfg.timeouts.eff_http_request / 1000.0, ready), client)

    def _serve(self, fe: FrontendRuntime, log, session_class, listener: Listener, client, address,
               accepted_at: tuple[float, float] | None = None) -> None:
        """Serve a counted connection in its greenlet; `accepted_at` (wall,
        monotonic) means it was parked: its session's clock started then."""
        process = self.process
        counters = fe.counters
        source = address[0]
        sock, local, tls, entered = client, None, False, accepted_at is not None
        handed_over = False  # parked between two requests: the connection lives on
        try:
            if listener.tls is not None or listener.bind.accept_proxy:
                # PROXY header and TLS handshake: a failure closes the
                # connection before any session exists (nothing reaches a server).
                try:
                    accepted = accept_preamble(client, address, listener, fe.cfg.timeouts.client / 1000.0)
                except PreambleError as exc:
                    self._preamble_failed(fe, listener, address, exc)
                    return
                sock, address, local, tls = accepted.sock, accepted.client, accepted.local, accepted.tls
                if tls:
                    counters.ssl_sess += 1
                    if sock.session_reused:  # resumed from a ticket or the session cache
                        counters.ssl_reused_sess += 1
            if not entered:
                counters.enter(self.clock.wall())
                entered = True
            stream = Stream(next(self._stream_ids), fe.name, f"{address[0]}:{address[1]}",
                            self.clock.wall(), partial(_shutdown_client, sock))
            process.streams[stream.id] = stream
            try:
                session = session_class(self.ctx, fe, sock, address, log)
                session.stream = stream  # the session attaches it to its server (shutdown sessions)
                session.tls, session.local_address = tls, local
                if accepted_at is not None:
                    session.accept_wall, session.accept_mono = accepted_at
                # A plain socket shows pending bytes on its descriptor (a TLS
                # layer may hold some): only then is waiting parked safe.
                session.can_park = session_class is HttpSession and sock is client
                if session.run():
                    handed_over = True
                    self._park_session(fe, session, stream, client, source)
            finally:
                if not handed_over:
                    stream.detach()
                    del process.streams[stream.id]
        finally:
            if not handed_over:
                self._end(fe, entered, sock, client, source)

    def _park_session(self, fe: FrontendRuntime, session: HttpSession, stream: Stream, client, source: str) -> None:
        """Between two requests: wait for the next one without a greenlet, for
        what is left of timeout.http_keep_alive (counted from the end of the
        response: the session waited PARK_AFTER_MS of it already)."""
        key = id(client)

        def ready(timed_out: bool) -> None:
            del self._parked[key]
            self._sessions.spawn(self._resume, fe, session, stream, client, source)

        waited = self.clock.mono() - session.idle_since if session.idle_since is not None else 0.0
        timeout = max(0.0, session.timeouts.eff_http_keep_alive / 1000.0 - waited)
        self._parked[key] = (Parked(client, timeout, ready), client)

    def _resume(self, fe: FrontendRuntime, session: HttpSession, stream: Stream, client, source: str) -> None:
        """A parked kept-alive connection turned readable (or its wait expired)."""
        handed_over = False
        try:
            if session.run(False):
                handed_over = True
                self._park_session(fe, session, stream, client, source)
        finally:
            if not handed_over:
                stream.detach()
                self.process.streams.pop(stream.id, None)
                self._end(fe, True, client, client, source)

    def _end(self, fe: FrontendRuntime, entered: bool, sock, client, source: str) -> None:
        """A connection is over: counters, sockets, admission, accepting again."""
        if entered:
            fe.counters.cur -= 1
        if sock is not client:
            close_quietly(sock)
        close_quietly(client)
        if fe.client_conns is not None:
            fe.client_conns.release(source)
        self._closed(fe)

    def _preamble_failed(self, fe: FrontendRuntime, listener: Listener, address, exc: PreambleError) -> None:
        """Count and log a connection lost before its session, as HAProxy does:
        `client [date] frontend/bind: reason` (a client that sent nothing is
        neither counted as a failure nor logged with dontlognull)."""
        counters = fe.counters
        if not exc.empty:
            if exc.kind == "ssl":
                counters.ssl_failed_handshake += 1
            else:
                counters.proxy_failed += 1
                counters.err_req += 1
        if exc.empty and fe.cfg.log.dontlognull:
            return
        sink = self._sink(fe.cfg.log.targets)
        if sink is not None:
            sink.log_message(f"{address[0]}:{address[1]} [{accept_date(self.clock.wall())}] "
                             f"{fe.name}/{listener.name}: {exc}", "info")

    def serve_forever(self) -> None:
        self.start()
        self._stopped.wait()

    def stop(self, graceful: bool = True, timeout: float = GRACEFUL_STOP_TIMEOUT) -> None:
        """Stop accepting; with `graceful`, let connections finish for `timeout`."""
        self.process.stopping = True
        for server in self.servers:
            server.close()
        for backend in self.backends.values():
            for srv in backend.servers:
                if srv.checker is not None:
                    srv.checker.stop()
        for server in self.servers:
            server.stop()
        self._all_closed.wait(timeout if graceful else 0)
        for key, (parked, client) in list(self._parked.items()):
            parked.cancel()
            del self._parked[key]
            close_quietly(client)
        self._sessions.kill(timeout=1)
        for stats in self.stats_sockets:
            stats.stop()
        if self.notifier is not None:
            self.notifier.close()  # lets queued traps leave (bounded wait), before the sinks close
            self.notifier = None
        for sink in self._sinks.values():
            sink.flush()
            sink.close()
        self._stopped.set()


class _NoTls:
    """The TLS contexts of a configuration without TLS: none (see _build_tls)."""

    binds: Mapping[tuple[str, int], object] = MappingProxyType({})
    servers: Mapping[tuple[str, str], object] = MappingProxyType({})


def uses_tls(config: Config) -> bool:
    """Whether a bind or a server of `config` speaks TLS."""
    return any(bind.ssl for fe in config.frontends.values() for bind in fe.listeners) or \
        any(server.ssl for be in config.backends.values() for server in be.servers)


def _build_tls(config: Config) -> "TlsContexts | _NoTls":
    """gproxy.tls.build_contexts, imported only when a bind or a server uses
    TLS: the ssl module and OpenSSL cost every process about 4 MiB."""
    if not uses_tls(config):
        return _NoTls()
    from gproxy.tls import build_contexts
    return build_contexts(config)


def _shutdown_client(sock) -> None:
    """Kill a stream (`shutdown session(s)`): shut its client connection down
    both ways, so the session's next read or write fails and it ends."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
