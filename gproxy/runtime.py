"""Live state of proxies and servers: counters, health, queues, selection.

These objects are what the stats socket, the stats page and the checks read,
and what the proxy layer updates. They do no I/O: the gevent layer calls
`take_slot()`/`release()` around each request, feeds check outcomes to
`ServerRuntime.apply()`, and waits on the `Waiter`s queued here. Counters are
plain integers updated in place (cheap on the hot path; formatted off it).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, replace
from typing import Callable, Protocol

from gproxy.balance import make_balancer
from gproxy.client_limits import ClientConnections
from gproxy.config.model import BackendConfig, FrontendConfig, ServerConfig
from gproxy.events import BackendStateChanged, EventBus, ServerStateChanged
from gproxy.health import CheckDone, CheckOutcome, ServerHealth
from gproxy.rates import RateCounter

IDEMPOTENT_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})
MAX_IDLE_PER_SERVER = 64  # idle keep-alive connections kept per server


def hrsp_index(status: int) -> int:
    """The `hrsp` slot of a status: 1xx..5xx, then "other"."""
    index = status // 100 - 1
    return index if 0 <= index < 5 else 5


class Waiter(Protocol):
    """A queued request; `set(server)` hands it a slot (gevent AsyncResult fits)."""

    def set(self, value: "ServerRuntime | None" = None) -> None: ...


class Counters:
    """HAProxy's per-proxy/per-server counters that `show stat` prints."""

    __slots__ = (
        "cur", "max", "total", "bytes_in", "bytes_out", "denied_req", "denied_resp",
        "err_req", "err_conn", "err_resp", "retries", "redispatches", "hrsp",
        "cli_abrt", "srv_abrt", "lbtot", "req_tot", "conn_tot", "last_sess",
        "qmax", "q_time_sum", "c_time_sum", "r_time_sum", "t_time_sum", "timed",
        # HAProxy's ssl stats module; proxy_failed: garbage PROXY headers (also in err_req).
        "ssl_sess", "ssl_reused_sess", "ssl_failed_handshake", "proxy_failed",
        # dcon: connections refused before any session (maxconn_per_client).
        "denied_conn",
        # Rates (`rate`, `req_rate`, `conn_rate` and their max), fed by the
        # rate sampler from stot/req_tot/conn_tot: nothing per request.
        "sess_rate", "req_rate", "conn_rate",
        # Highest qtime/ctime/rtime/ttime of a request, in ms (`*_max`).
        "q_time_max", "c_time_max", "r_time_max", "t_time_max",
    )

    def __init__(self) -> None:
        self.clear(all_counters=True)

    def clear(self, all_counters: bool) -> None:
        self.max = 0
        self.qmax = 0
        self.q_time_max = self.c_time_max = self.r_time_max = self.t_time_max = 0
        if not all_counters:
            self.sess_rate.clear_peak()
            self.req_rate.clear_peak()
            self.conn_rate.clear_peak()
            return
        self.sess_rate, self.req_rate, self.conn_rate = RateCounter(), RateCounter(), RateCounter()
        self.cur = 0
        self.total = self.bytes_in = self.bytes_out = 0
        self.denied_req = self.denied_resp = 0
        self.err_req = self.err_conn = self.err_resp = 0
        self.retries = self.redispatches = 0
        self.hrsp = [0, 0, 0, 0, 0, 0]  # 1xx..5xx, other
        self.cli_abrt = self.srv_abrt = 0
        self.lbtot = self.req_tot = self.conn_tot = 0
        self.last_sess = 0.0
        self.q_time_sum = self.c_time_sum = self.r_time_sum = self.t_time_sum = 0
        self.timed = 0
        self.ssl_sess = self.ssl_reused_sess = self.ssl_failed_handshake = self.proxy_failed = 0
        self.denied_conn = 0

    def count_status(self, status: int) -> None:
        self.hrsp[hrsp_index(status)] += 1

    def record_times(self, queue_ms: int, connect_ms: int, response_ms: int, total_ms: int) -> None:
        """One finished request's timers (ms; a phase not reached is -1,
        counted as 0): the sums behind qtime..ttime and their maxima."""
        # Comparisons rather than max(): two calls per request, four times each.
        if queue_ms < 0:
            queue_ms = 0
        if connect_ms < 0:
            connect_ms = 0
        if response_ms < 0:
            response_ms = 0
        if total_ms < 0:
            total_ms = 0
        self.timed += 1
        self.q_time_sum += queue_ms
        self.c_time_sum += connect_ms
        self.r_time_sum += response_ms
        self.t_time_sum += total_ms
        if queue_ms > self.q_time_max:
            self.q_time_max = queue_ms
        if connect_ms > self.c_time_max:
            self.c_time_max = connect_ms
        if response_ms > self.r_time_max:
            self.r_time_max = response_ms
        if total_ms > self.t_time_max:
            self.t_time_max = total_ms

    def enter(self, now: float) -> None:
        self.cur += 1
        self.total += 1
        self.last_sess = now
        if self.cur > self.max:
            self.max = self.cur


class ServerRuntime:
    """One server: its config, health state, counters, queue and idle connections."""

    def __init__(self, backend: "BackendRuntime", cfg: ServerConfig, now: float):
        self.backend = backend
        self.cfg = cfg
        self.name = cfg.name
        self.id = cfg.id
        self.host = cfg.address.host
        self.port = cfg.address.port
        self.cookie = cfg.cookie.encode() if cfg.cookie else None
        self.initial_weight = cfg.weight
        self.weight = cfg.weight  # effective weight used by the balancer
        self.maxconn = cfg.maxconn
        self.maxqueue = cfg.maxqueue
        self.health = ServerHealth(rise=cfg.rise, fall=cfg.fall, check_enabled=cfg.check,
                                   disabled=cfg.disabled, now=now)
        self.counters = Counters()
        self.queue: collections.deque[Waiter] = collections.deque()
        self.idle: list = []  # idle keep-alive sockets to this server
        self.checker = None  # set by the process layer when checks run
        self.tls = None  # the ssl.SSLContext of a server with `ssl` (set by the process layer)
        self.streams: set[Stream] = set()  # client streams holding a slot here (shutdown sessions)

    # The balancer reads these two attributes.
    @property
    def cur_conns(self) -> int:
        return self.counters.cur + len(self.queue)

    @property
    def is_full(self) -> bool:
        return self.maxconn > 0 and self.counters.cur >= self.maxconn

    @property
    def usable(self) -> bool:
        return self.weight > 0 and self.health.usable_for_new_traffic

    @property
    def status(self) -> str:
        return self.health.status_text()

    def apply(self, event, now: float) -> None:
        """Feed a health/admin event; publish what changed."""
        was_usable = self.backend.has_usable_server()
        for transition in self.health.process_event(event, now):
            self.backend.on_server_transition(self, transition, now)
        self.backend.after_server_change(was_usable, now)

    def check_done(self, outcome: CheckOutcome, now: float) -> None:
        self.apply(CheckDone(outcome), now)

    def shutdown_sessions(self) -> int:
        """`shutdown sessions server`: kill every stream using this server."""
        streams = list(self.streams)
        for stream in streams:
            stream.kill()
        return len(streams)


class BackendRuntime:
    """A backend: its servers, balancer, backend queue and counters."""

    def __init__(self, cfg: BackendConfig, bus: EventBus, now: float, clock: Callable[[], float]):
        self.cfg = cfg
        self.name = cfg.name
        self.bus = bus
        self.clock = clock
        self.servers = [ServerRuntime(self, s, now) for s in cfg.servers]
        # Split once: usable_group() runs per request and the roles never change.
        self._actives = tuple(s for s in self.servers if not s.cfg.backup)
        self._backups = tuple(s for s in self.servers if s.cfg.backup)
        self.by_name = {s.name: s for s in self.servers}
        self.by_cookie = {s.cookie: s for s in self.servers if s.cookie}
        self.balancer = make_balancer(cfg.balance, cfg.hash_type)
        self.queue: collections.deque[Waiter] = collections.deque()
        self.counters = Counters()
        self.frontend_maxconn = 0  # sum of the maxconn of frontends using it (for slim)
        self.last_change = now
        self.down_since: float | None = None if self.has_usable_server() else now
        self.downtime = 0.0
        self.chkdown = 0  # times the backend lost its last usable server
        self.last_error: ErrorCapture | None = None  # last invalid response (show errors)

    # ---- selection -------------------------------------------------------
    def usable_group(self) -> list[ServerRuntime]:
        """Usable servers of the active group: actives, else the backups
        (only the first one unless `allbackups`)."""
        actives = [s for s in self._actives if s.weight > 0 and s.health.usable_for_new_traffic]
        if actives:
            return actives
        backups = [s for s in self._backups if s.usable]
        if backups and not self.cfg.allbackups:
            return backups[:1]
        return backups

    def has_usable_server(self) -> bool:
        return any(s.usable for s in self.servers)

    def pick(self, key: bytes | None, avoid: ServerRuntime | None = None) -> tuple[ServerRuntime | None, bool]:
        """(server, must_queue). (None, False): no server at all -> 503."""
        group = self.usable_group()
        if not group:
            return None, False
        free = [s for s in group if not s.is_full]
        if not free:
            return None, True
        server = self.balancer.pick(free, key, avoid)
        if server is None:
            return None, True
        return server, False

    def persistent_server(self, cookie: bytes) -> ServerRuntime | None:
        return self.by_cookie.get(cookie)

    # ---- slots and queues ------------------------------------------------
    def take_slot(self, server: ServerRuntime, now: float) -> None:
        server.counters.enter(now)
        server.counters.lbtot += 1
        self.counters.enter(now)

    def record_times(self, server: ServerRuntime, queue_ms: int, connect_ms: int, response_ms: int,
                     total_ms: int) -> None:
        """A request that reached its server and got a response: its timers
        (the log's Tw, Tc, Tr, Ta) for qtime..ttime and their maxima, on the
        server and on the backend, as HAProxy updates both."""
        server.counters.record_times(queue_ms, connect_ms, response_ms, total_ms)
        self.counters.record_times(queue_ms, connect_ms, response_ms, total_ms)

    def release(self, server: ServerRuntime) -> None:
        """A request left `server`: hand its slot to the oldest waiter."""
        server.counters.cur -= 1
        self.counters.cur -= 1
        if server.queue or self.queue:  # the usual case: nobody waits, no call
            self.dequeue(server)

    def dequeue(self, server: ServerRuntime) -> None:
        while not server.is_full and (server.queue or self.queue):
            if server.queue and server.health.usable_for_persistent:
                waiter = server.queue.popleft()
            elif self.queue and server.usable:
                waiter = self.queue.popleft()
            else:
                return
            self.take_slot(server, self.clock())
            waiter.set(server)

    def enqueue(self, waiter: Waiter, server: ServerRuntime | None) -> int:
        """Queue a request; returns its position (requests ahead of it)."""
        queue = server.queue if server else self.queue
        queue.append(waiter)
        counters = server.counters if server else self.counters
        counters.qmax = max(counters.qmax, len(queue))
        return len(queue) - 1

    def cancel(self, waiter: Waiter, server: ServerRuntime | None) -> None:
        queue = server.queue if server else self.queue
        try:
            queue.remove(waiter)
        except ValueError:
            pass

    def wake_queues(self) -> None:
        """Servers became usable again: let them pull queued requests."""
        for server in self.servers:
            if server.usable:
                self.dequeue(server)

    def redistribute_queue(self, server: ServerRuntime) -> None:
        """A server became unusable: its persistent waiters go back to the
        backend queue (HAProxy requeues them; redispatch picks another)."""
        while server.queue:
            self.queue.append(server.queue.popleft())
        self.wake_queues()

    # ---- state changes ---------------------------------------------------
    def counts(self) -> tuple[int, int]:
        act = sum(1 for s in self.servers if not s.cfg.backup and s.usable)
        bck = sum(1 for s in self.servers if s.cfg.backup and s.usable)
        return act, bck

    def on_server_transition(self, server: ServerRuntime, transition, now: float) -> None:
        act, bck = self.counts()
        name = f"{self.name}/{server.name}"
        queued = len(self.queue)
        left = (f"{act} active and {bck} backup servers left. {server.counters.cur} sessions active, "
                f"0 requeued, {queued} remaining in queue.")
        online = f"{act} active and {bck} backup servers online. 0 sessions requeued, {queued} total in queue."
        kind = transition.kind
        # HAProxy's wording (reference/haproxy.md 2.1 and 2.2), so log watchers match.
        if kind == "went_down":
            message = f"Server {name} is DOWN, {transition.detail}. {left}"
        elif kind == "went_up":
            message = f"Server {name} is UP, {transition.detail}. {online}"
        elif kind == "stopping":
            message = f"Server {name} is stopping, {transition.detail}. {left}"
        elif kind == "entered_drain":
            message = f"Server {name} enters drain state. {online}"
        elif kind == "left_drain":
            message = f"Server {name} is UP (leaving forced drain)."
        elif kind == "entered_maint":
            message = f"Server {name} is going DOWN for maintenance. {left}"
        elif kind == "left_maint":
            message = f"Server {name} is UP/READY (leaving forced maintenance)."
        else:
            message = f"Server {name} is {transition.new}, {transition.detail}."
        if not server.usable:
            self.redistribute_queue(server)
            close_idle(server)
        else:
            self.wake_queues()
        self.bus.publish(ServerStateChanged(
            backend=self.name, server=server.name, old=transition.old, new=transition.new,
            reason=transition.reason, message=message, active_left=act, backup_left=bck,
            kind=str(getattr(kind, "value", kind)),
            check_status=transition.outcome.status.name if transition.outcome is not None else "",
            at=self.clock()))

    def after_server_change(self, was_usable: bool, now: float) -> None:
        usable = self.has_usable_server()
        if usable == was_usable:
            return
        self.last_change = now
        if usable:
            if self.down_since is not None:
                self.downtime += now - self.down_since
            self.down_since = None
            message = f"backend {self.name} has a server available again."
        else:
            self.down_since = now
            self.chkdown += 1
            message = f"backend {self.name} has no server available!"
            # Nothing can serve the backend queue any more: fail it now.
            while self.queue:
                self.queue.popleft().set(None)
        self.bus.publish(BackendStateChanged(backend=self.name, up=usable, message=message, at=self.clock()))

    def set_weight(self, server: ServerRuntime, weight: int) -> None:
        server.weight = weight
        if weight > 0:
            self.dequeue(server)


def close_idle(server: ServerRuntime) -> None:
    while server.idle:
        sock = server.idle.pop()
        try:
            sock.close()
        except OSError:
            pass


class FrontendRuntime:
    def __init__(self, cfg: FrontendConfig, backend: BackendRuntime | None):
        self.cfg = cfg
        self.name = cfg.name
        self.backend = backend
        self.counters = Counters()
        self.maxconn = cfg.maxconn
        self.enabled = True
        # Requests gproxy answers itself (stats page, metrics): an object with
        # match(head) -> handler(session, head, rec, start_mono) -> keep-alive, or None.
        self.local_routes = None
        self.last_error: ErrorCapture | None = None  # last invalid request (show errors)
        # `maxconn_per_client`: live connections by client address (None: no limit).
        self.client_conns = ClientConnections(cfg.maxconn_per_client) if cfg.maxconn_per_client else None


class ProcessState:
    """Process-wide counters for `show info`."""

    def __init__(self, started: float, maxconn: int):
        self.started = started
        self.maxconn = maxconn  # `set maxconn global` changes it, up to hard_maxconn
        self.hard_maxconn = maxconn
        self.cur_conns = 0
        self.cum_conns = 0
        self.cum_req = 0
        self.stopping = False
        self.bytes_out = 0
        self.streams: dict[int, Stream] = {}  # live client connections by id (show sess)
        self.error_events = 0  # invalid requests/responses captured so far (show errors)
        # show info's ConnRate, SessRate, BytesOutRate (and Max*), fed by the rate sampler.
        self.conn_rate = RateCounter()
        self.sess_rate = RateCounter()
        self.bytes_out_rate = RateCounter()
        self.rate_sampler = None  # the running rate_sampler.RateSampler, once started

    def clear_rate_peaks(self) -> None:
        """`clear counters [all]`: HAProxy restarts MaxConnRate, MaxSessRate...
        either way (the process totals they come from are never cleared)."""
        self.conn_rate.clear_peak()
        self.sess_rate.clear_peak()
        self.bytes_out_rate.clear_peak()

    def capture_error(self, owner: "FrontendRuntime | BackendRuntime", capture: "ErrorCapture") -> None:
        """Keep `capture` as the last error of `owner` (a frontend for an
        invalid request, a backend for an invalid response)."""
        owner.last_error = replace(capture, event=self.error_events)
        self.error_events += 1


class Stream:
    """One client connection, for `show sess` and `shutdown session(s)`.

    The process layer creates it for each accepted connection, with `kill`
    closing that connection. The proxy layer calls `attach(server)` when a
    request gets a slot on a server and `detach()` when it releases it, so
    that `shutdown sessions server` finds the streams of a server."""

    __slots__ = ("id", "frontend", "source", "started", "kill", "server", "__weakref__")

    def __init__(self, stream_id: int, frontend: str, source: str, started: float, kill: Callable[[], None]):
        self.id = stream_id
        self.frontend = frontend
        self.source = source  # "ip:port"
        self.started = started
        self.kill = kill
        self.server: ServerRuntime | None = None

    def attach(self, server: ServerRuntime) -> None:
        self.detach()
        self.server = server
        server.streams.add(self)

    def detach(self) -> None:
        if self.server is not None:
            self.server.streams.discard(self)
            self.server = None


@dataclass(frozen=True)
class ErrorCapture:
    """An invalid request or response as `show errors` reports it."""

    when: float  # wall clock
    source: str  # the client's "ip:port"
    data: bytes  # what was received, up to the error (at most one buffer)
    error_at: int  # offset of the first invalid byte in `data`
    frontend: str = ""
    frontend_id: int = -1
    backend: str | None = None
    backend_id: int = -1
    server: str | None = None
    server_id: int = -1
    event: int = 0  # set by ProcessState.capture_error
