"""The parsed configuration: frozen value objects, the contract between the
config loader (which builds them from TOML) and everything that runs.

HAProxy's model is kept: a `[listen.NAME]` section is a frontend and a
backend of the same name, so the loader turns it into one `FrontendConfig`
(whose `default_backend` is NAME) and one `BackendConfig`. Settings given in
`[defaults]` are already folded into each proxy here, so the engine never
looks anything up twice. Durations are whole milliseconds; None means "not
set" where HAProxy derives the value from another one (see `Timeouts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import Literal

from gsuite.snmp_config import SnmpConfig

Mode = Literal["http", "tcp"]
ConnectionMode = Literal["keep-alive", "server-close", "close"]
Balance = Literal["roundrobin", "static-rr", "leastconn", "source", "first", "uri"]
CookieMode = Literal["insert", "prefix", "rewrite"]
Level = Literal["user", "operator", "admin"]
TlsVersion = Literal["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
Verify = Literal["none", "required"]
ProxyProtocolVersion = Literal["v1", "v2"]


@dataclass(frozen=True)
class Address:
    """A host and port. `host` is an IP literal or a name; "" or "*" binds all."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class BindConfig:
    """One listening address and what its connections go through before HTTP
    or TCP: a PROXY protocol header (`accept_proxy`), then a TLS handshake
    (`ssl`). docs/tls.md tells the whole story."""

    address: Address
    ssl: bool = False
    crt: tuple[str, ...] = ()  # PEM files; the first is the default, the others chosen by SNI
    alpn: tuple[str, ...] = ()  # ALPN protocols offered, most preferred first
    ssl_min_ver: TlsVersion = "TLSv1.2"
    ciphers: str | None = None  # None: gproxy's modern list (gproxy.tls.MODERN_CIPHERS)
    accept_proxy: bool = False


@dataclass(frozen=True)
class LogTarget:
    """One syslog destination: "udp://host:port", "unix:///dev/log" or "stderr"."""

    target: str
    facility: str = "local0"
    level: str = "info"  # the severity access logs are sent with
    tag: str = "gproxy"


@dataclass(frozen=True)
class StatsSocket:
    path: str
    mode: int = 0o600
    level: Level = "operator"  # HAProxy's default level
    user: int | str | None = None
    group: int | str | None = None


@dataclass(frozen=True)
class Tune:
    bufsize: int = 16384
    maxhdr: int = 101  # most header lines in one message (HAProxy's tune.http.maxhdr)
    max_header_bytes: int = 16384  # a request head larger than this gets 431
    max_uri_length: int = 8192  # a longer request target gets 414


@dataclass(frozen=True)
class GlobalConfig:
    maxconn: int = 4096
    log: tuple[LogTarget, ...] = ()
    chroot: str | None = None
    user: int | str | None = None
    group: int | str | None = None
    daemon: bool = False
    pidfile: str | None = None
    stats_sockets: tuple[StatsSocket, ...] = ()
    stats_timeout: int = 10_000
    tune: Tune = field(default_factory=Tune)
    node: str | None = None  # name reported by `show info` (default: the host name)
    grace: int = 0  # ms to keep accepting after a soft stop was asked
    workers: int = 1  # worker processes sharing the listeners, under one master (gproxy.master)
    hard_stop_after: int = 30_000  # ms an old worker may finish its connections after a reload or soft stop
    state_file: str | None = None  # where the master keeps `show servers state` (reloads, restarts)


@dataclass(frozen=True)
class Timeouts:
    """All in ms. None derives from another timeout, as in HAProxy."""

    connect: int = 5000
    client: int = 50_000
    server: int = 50_000
    http_request: int | None = None  # default: client
    http_keep_alive: int | None = None  # default: http_request
    queue: int | None = None  # default: connect
    check: int | None = None  # default: inter is the whole check timeout
    tunnel: int | None = None  # default: max(client, server)

    @property
    def eff_http_request(self) -> int:
        return self.http_request if self.http_request is not None else self.client

    @property
    def eff_http_keep_alive(self) -> int:
        return self.http_keep_alive if self.http_keep_alive is not None else self.eff_http_request

    @property
    def eff_queue(self) -> int:
        return self.queue if self.queue is not None else self.connect

    @property
    def eff_tunnel(self) -> int:
        return self.tunnel if self.tunnel is not None else max(self.client, self.server)


@dataclass(frozen=True)
class CookieConfig:
    name: str
    mode: CookieMode = "insert"
    indirect: bool = False
    nocache: bool = False
    postonly: bool = False
    preserve: bool = False
    httponly: bool = False
    secure: bool = False
    domain: tuple[str, ...] = ()


@dataclass(frozen=True)
class StatusRange:
    low: int
    high: int

    def __contains__(self, status: int) -> bool:
        return self.low <= status <= self.high


@dataclass(frozen=True)
class HttpCheck:
    """`option httpchk`: the request sent and the statuses that pass."""

    method: str = "OPTIONS"
    path: str = "/"
    version: str = "HTTP/1.0"
    host: str | None = None
    # None: 2xx and 3xx pass (HAProxy's default without `http-check expect`).
    expect_status: tuple[StatusRange, ...] | None = None
    disable_on_404: bool = False

    def passes(self, status: int) -> bool:
        if self.expect_status is None:
            return 200 <= status < 400
        return any(status in r for r in self.expect_status)


@dataclass(frozen=True)
class ForwardFor:
    header: str = "X-Forwarded-For"
    except_net: IPv4Network | IPv6Network | None = None
    if_none: bool = False


@dataclass(frozen=True)
class ServerConfig:
    name: str
    address: Address
    id: int  # 1-based position in its backend (HAProxy's sid / srv_id)
    weight: int = 1
    check: bool = False
    inter: int = 2000
    fastinter: int | None = None  # default: inter
    downinter: int | None = None  # default: inter
    rise: int = 2
    fall: int = 3
    check_port: int | None = None  # default: the server's port
    backup: bool = False
    cookie: str | None = None
    maxconn: int = 0  # 0: no limit
    maxqueue: int = 0  # 0: no limit
    disabled: bool = False  # starts in MAINT (HAProxy's `disabled`)
    ssl: bool = False  # talk TLS to the server
    verify: Verify = "required"  # check its certificate (against ca_file, else the system's CAs)
    ca_file: str | None = None
    sni: str | None = None  # server name sent in the handshake, and checked when verifying
    send_proxy: ProxyProtocolVersion | None = None  # a PROXY header first on each connection

    @property
    def eff_fastinter(self) -> int:
        return self.fastinter if self.fastinter is not None else self.inter

    @property
    def eff_downinter(self) -> int:
        return self.downinter if self.downinter is not None else self.inter


@dataclass(frozen=True)
class LogSettings:
    """Where a proxy logs, and in which format."""

    targets: tuple[LogTarget, ...] = ()  # `log = "global"` copies global.log here
    httplog: bool = False
    tcplog: bool = False
    dontlognull: bool = False
    log_health_checks: bool = False


@dataclass(frozen=True)
class FrontendConfig:
    name: str
    id: int  # HAProxy's iid: position among all proxies, from 1 (2 in HAProxy with its GLOBAL)
    mode: Mode
    bind: tuple[Address, ...]
    default_backend: str | None
    maxconn: int = 2000
    timeouts: Timeouts = field(default_factory=Timeouts)
    log: LogSettings = field(default_factory=LogSettings)
    forwardfor: ForwardFor | None = None
    connection_mode: ConnectionMode = "keep-alive"
    is_listen: bool = False  # came from a [listen.NAME] section
    # `stats = {...}` and `prometheus = {...}` come with the runtime API issue.
    stats: dict | None = None
    prometheus: dict | None = None
    # `bind` with every option; empty when built without them (then `listeners` derives them).
    binds: tuple[BindConfig, ...] = ()
    hsts: int | None = None  # ms: Strict-Transport-Security max-age on every response
    redirect_to_https: bool = False  # 301 to https:// for requests received without TLS
    max_body_size: int | None = None  # bytes; a larger request body is refused with 413 (None: no limit)
    maxconn_per_client: int | None = None  # concurrent connections per client address (None: no limit)

    @property
    def listeners(self) -> tuple[BindConfig, ...]:
        """Each bind address with its options (plain addresses have none)."""
        return self.binds or tuple(BindConfig(address) for address in self.bind)


@dataclass(frozen=True)
class BackendConfig:
    name: str
    id: int
    mode: Mode
    servers: tuple[ServerConfig, ...]
    balance: Balance = "roundrobin"
    hash_type: Literal["map-based", "consistent"] = "map-based"
    uri_whole: bool = False  # `balance uri whole`: hash the query string too
    cookie: CookieConfig | None = None
    httpchk: HttpCheck | None = None  # None: TCP connect checks
    forwardfor: ForwardFor | None = None
    connection_mode: ConnectionMode = "keep-alive"
    retries: int = 3
    redispatch: bool = False
    allbackups: bool = False
    fullconn: int = 0  # 0: derived (10% of the frontends' maxconn), shown as slim
    timeouts: Timeouts = field(default_factory=Timeouts)
    log: LogSettings = field(default_factory=LogSettings)
    is_listen: bool = False

    def server(self, name: str) -> ServerConfig | None:
        for srv in self.servers:
            if srv.name == name:
                return srv
        return None


@dataclass(frozen=True)
class Config:
    """A whole, valid configuration. `proxy_order` keeps the file's order of
    proxy names (a listen appears once), which `show stat` follows."""

    global_: GlobalConfig
    frontends: dict[str, FrontendConfig]
    backends: dict[str, BackendConfig]
    proxy_order: tuple[str, ...]
    source: str | None = None  # the file it came from
    snmp: SnmpConfig | None = None  # the top-level [snmp] table: traps and notify command (docs/snmp.md)
