"""The configuration schema: every TOML setting declared once.

Each `Setting` carries its key, type, default, documentation, the HAProxy
directive it maps to and where it may appear. The loader validates against
these declarations, docs.py renders docs/configuration.md from them and
convert.py reads HAProxy directives through them, so the three never disagree
(gunicorn's `Setting` classes are the model). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from gsuite import config_schema as shared
from gsuite.config_schema import SettingIndex
from gproxy.config.types import (
    TOKEN_PATTERN,
    AddressType,
    BindList,
    Bool,
    Choice,
    Duration,
    FileMode,
    Int,
    LogTargetType,
    Network,
    Size,
    StatusRanges,
    Str,
    StrList,
    Table,
    TableList,
    UserOrId,
    ValueType,
)

# The two sides of a proxy. A [listen] section is both; [defaults] feeds both.
FRONTEND = frozenset({"frontend"})
BACKEND = frozenset({"backend"})
BOTH = FRONTEND | BACKEND

MAX_WEIGHT = 256  # HAProxy's limit for a server weight
MAX_PORT = 65535
MAX_HDR_LIMIT = 32767  # HAProxy's ceiling for tune.http.maxhdr
MIN_BUFSIZE = 1024
MAX_WORKERS = 64  # worker processes under one master

SYSLOG_FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "auth2",
    "ftp", "ntp", "audit", "alert", "cron2",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
SYSLOG_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")

PROXY_NAME_PATTERN = r"[A-Za-z0-9_.:-]+"  # the characters HAProxy accepts in proxy and server names


@dataclass(frozen=True)
class Setting(shared.Setting):
    """One TOML key. `haproxy` is the directive exactly as haproxy.cfg spells
    it (`gproxy convert` looks directives up by it); `aliases` are older
    spellings convert also reads."""

    type: ValueType | Table | TableList
    haproxy: str | None = None
    aliases: tuple[str, ...] = ()
    scope: frozenset[str] = BOTH  # proxy settings: the sides that use it
    http_only: bool = False  # refused in a proxy whose mode is "tcp"
    merge: bool = False  # a table merged key by key with the one in [defaults]
    in_defaults: bool = True  # may appear in [defaults]


@dataclass(frozen=True)
class Section(SettingIndex[Setting]):
    """A table of settings. `title` is how the docs name it, `anchor` its link."""

    anchor: str
    title: str
    doc: str
    settings: tuple[Setting, ...]

    @property
    def noun(self) -> str:
        """How error messages name its tables ("missing: every server needs one")."""
        return f"every {self.title}"


TLS_VERSIONS = ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")


def _token(what: str) -> Str:
    return Str(what, TOKEN_PATTERN, " (letters, digits and !#$%&'*+-.^_`|~ only)")


PROXY_NAME = Str("name", PROXY_NAME_PATTERN, " (letters, digits, '_', '.', ':' and '-' only)")
COOKIE_VALUE = Str("cookie value", r"[!#$%&'()*+\-./0-9:<>?@A-Z\[\]^_`a-z{|}]+", " (no spaces, quotes, ',', ';', '\\\\' or '~')")

# --- [global] -----------------------------------------------------------------

LOG_TARGET = Section("log-target", "log target", "One syslog destination.", (
    Setting("target", LogTargetType(), "Where lines go. A UDP target without a port uses 514.",
            required=True, haproxy="log <target>"),
    Setting("facility", Choice(SYSLOG_FACILITIES), "Syslog facility.", "local0", haproxy="log <target> <facility>"),
    Setting("level", Choice(SYSLOG_LEVELS), "Severity that access logs are sent with.", "info",
            haproxy="log <target> <facility> <level>"),
    Setting("tag", Str("tag"), "Syslog tag (program name) of each line.", "gproxy", haproxy="log-tag"),
))

STATS_SOCKET = Section("stats-socket", "stats socket", (
    "A Unix socket speaking HAProxy 2.6's runtime API (`show stat`, `set server`...)."), (
    Setting("path", Str("path"), "Path of the Unix socket.", required=True, haproxy="stats socket <path>"),
    Setting("mode", FileMode(), "Permissions of the socket file.", 0o600, haproxy="mode"),
    Setting("level", Choice(("user", "operator", "admin")),
            "Highest command level allowed: `admin` may change servers, `operator` may clear counters.",
            "operator", haproxy="level"),
    Setting("user", UserOrId(), "Owner of the socket file (default: the process's).", haproxy="user",
            aliases=("uid",)),
    Setting("group", UserOrId(), "Group of the socket file (default: the process's).", haproxy="group",
            aliases=("gid",)),
))

TUNE = Section("tune", "global.tune", "Limits of the HTTP parser.", (
    Setting("bufsize", Int(MIN_BUFSIZE), "Size of a connection buffer, in bytes.", 16384, haproxy="tune.bufsize"),
    Setting("maxhdr", Int(1, MAX_HDR_LIMIT), "Most header lines in one HTTP message (more gets 400).", 101,
            haproxy="tune.http.maxhdr"),
    Setting("max_header_bytes", Int(MIN_BUFSIZE), "Largest request head in bytes; a larger one gets 431.", 16384),
    Setting("max_uri_length", Int(64), "Longest request target (URI) in bytes; a longer one gets 414.", 8192),
))

GLOBAL = Section("global", "[global]", "Process-wide settings.", (
    Setting("maxconn", Int(0), "Most concurrent client connections for the whole process.", 4096, haproxy="maxconn"),
    Setting("log", TableList(LOG_TARGET), "Syslog targets; proxies with `log = \"global\"` use them.", (),
            haproxy="log"),
    Setting("chroot", Str("path"), "Directory to chroot into after binding (needs root).", haproxy="chroot"),
    Setting("user", UserOrId(), "User to run as after binding (needs root).", haproxy="user", aliases=("uid",)),
    Setting("group", UserOrId(), "Group to run as after binding (needs root).", haproxy="group", aliases=("gid",)),
    Setting("daemon", Bool(), "Detach into the background; `gproxy run --foreground` overrides it.", False,
            haproxy="daemon"),
    Setting("pidfile", Str("path"), "File the master writes its pid into.", haproxy="pidfile"),
    Setting("stats_socket", TableList(STATS_SOCKET, single=True),
            "The runtime API socket(s): one table or an array of tables.", (), haproxy="stats socket"),
    Setting("stats_timeout", Duration(), "Idle timeout of a runtime API connection.", 10_000,
            haproxy="stats timeout"),
    Setting("node", Str("name"), "Name shown by `show info` (default: the host name).", haproxy="node"),
    Setting("grace", Duration(minimum=0), "How long to keep accepting after a soft stop was asked.", 0,
            haproxy="grace"),
    Setting("workers", Int(1, MAX_WORKERS), (
        "Worker processes serving the same listeners; a master process holds the sockets, "
        "reloads (SIGHUP) and replaces them. With more than one, each TCP listener is one "
        "SO_REUSEPORT socket per worker, so the kernel spreads new connections over the workers."), 1),
    Setting("hard_stop_after", Duration(minimum=0), (
        "How long a worker stopping after a reload or a soft stop (SIGUSR1) may keep serving "
        "its open connections before it is killed."), 30_000, haproxy="hard-stop-after"),
    Setting("state_file", Str("path"), (
        "File where the master saves the servers' runtime state (`show servers state`) at each "
        "reload and stop, and which it re-applies at start: drain, maint and weights set on the "
        "stats socket survive a restart. Reloads carry the state without it."), None),
    Setting("tune", Table(TUNE), "Parser and buffer limits.", haproxy="tune.*"),
))

# --- proxy tables ---------------------------------------------------------------

BIND = Section("bind", "bind", (
    'One listening address written as a table, for TLS and the PROXY protocol; a plain '
    '"addr:port" string is the same as `{ address = "addr:port" }`. See docs/tls.md.'), (
    Setting("address", AddressType(bind=True), 'Address as "host:port" ("*:443" or ":443": all).',
            required=True, haproxy="bind <addr:port>"),
    Setting("ssl", Bool(), "Terminate TLS on this address (needs `crt`).", False, haproxy="ssl"),
    Setting("crt", StrList(), (
        "PEM file(s), each holding a certificate, its chain and its key (or the key in FILE.key); "
        "a directory stands for its *.pem files. With several, the name the client asks for (SNI) "
        "picks one; the first is the default."), (), haproxy="crt"),
    Setting("alpn", StrList(), 'Protocols offered through ALPN, most preferred first (e.g. ["http/1.1"]).', (),
            haproxy="alpn"),
    Setting("ssl_min_ver", Choice(TLS_VERSIONS), "Oldest TLS version accepted.", "TLSv1.2",
            haproxy="ssl-min-ver"),
    Setting("ciphers", Str("cipher list"),
            "OpenSSL cipher list for TLS 1.2 and older (default: ECDHE with AES-GCM or ChaCha20).",
            haproxy="ciphers"),
    Setting("accept_proxy", Bool(), (
        "Every connection starts with a PROXY protocol header (v1 or v2), as sent by a TLS terminator "
        "or load balancer in front; the client address it names is the one logged, forwarded and hashed."),
        False, haproxy="accept-proxy"),
))

class Credentials(StrList):
    """`stats.auth`: "user:password" strings (HAProxy's `stats auth`). Errors
    name the item by position, never by value: it holds a password."""

    def describe(self) -> str:
        return 'array of "user:password"'

    def parse(self, value: object) -> tuple[str, ...]:
        items = super().parse(value)
        for index, item in enumerate(items):
            user, colon, _ = item.partition(":")
            if not colon or not user:
                raise ValueError(f'item {index} is not "user:password" (a user name, a colon, a password)')
        return items


URI_PATH = Str("path", r"/[!-~]*", " (a path starting with '/', printable characters and no spaces)")

STATS_PAGE = Section("stats-page", "stats", (
    "The HTML statistics page (HAProxy's `stats enable`), its `;csv` export and, with `admin`, "
    "buttons that drain servers or put them in maintenance. See docs/stats-page.md."), (
    Setting("uri", URI_PATH, "Path prefix of the page; requests starting with it are answered by gproxy.",
            "/haproxy?stats", haproxy="stats uri"),
    Setting("auth", Credentials(), "Users allowed in (basic authentication); empty: no authentication.", (),
            haproxy="stats auth"),
    Setting("realm", Str("realm", r'[^"\\\x00-\x1f\x7f]+', " (no quotes, backslashes or control characters)"),
            "Realm the browser shows when it asks for a password.", "gproxy Statistics", haproxy="stats realm"),
    Setting("refresh", Duration(), "Reload the page this often (a `Refresh` header); unset: never.",
            haproxy="stats refresh"),
    Setting("admin", Bool(), "Show the drain / maintenance / ready buttons; needs `auth`.", False,
            haproxy="stats admin if TRUE"),
    Setting("hide_version", Bool(), "Do not show gproxy's version on the page.", False,
            haproxy="stats hide-version"),
))

PROMETHEUS = Section("prometheus", "prometheus", (
    "Prometheus metrics in text format 0.0.4, named like HAProxy's exporter with a `gproxy_` prefix. "
    "See docs/stats-page.md."), (
    Setting("uri", URI_PATH, "Path of the metrics (exact match, a query string is ignored).", "/metrics",
            haproxy="http-request use-service prometheus-exporter if { path <uri> }"),
))

TIMEOUT = Section("timeout", "timeout", (
    "Timeouts of a proxy, merged key by key with `[defaults]`. Unset optional ones "
    "derive from another, as in HAProxy."), (
    Setting("connect", Duration(), "Most time to connect to a server.", 5000,
            haproxy="timeout connect", aliases=("contimeout",), scope=BACKEND),
    Setting("client", Duration(), "Most inactivity on the client side.", 50_000,
            haproxy="timeout client", aliases=("clitimeout",), scope=FRONTEND),
    Setting("server", Duration(), "Most inactivity on the server side.", 50_000,
            haproxy="timeout server", aliases=("srvtimeout",), scope=BACKEND),
    Setting("http_request", Duration(), "Most time to receive a whole request head (default: `client`).",
            haproxy="timeout http-request", scope=FRONTEND),
    Setting("http_keep_alive", Duration(),
            "Most idle time between two requests on a kept-alive connection (default: `http_request`).",
            haproxy="timeout http-keep-alive"),
    Setting("queue", Duration(), "Most time a request waits in a queue; then 503 (default: `connect`).",
            haproxy="timeout queue", scope=BACKEND),
    Setting("check", Duration(),
            "Extra read timeout of a health check; unset, `inter` bounds the whole check.",
            haproxy="timeout check", scope=BACKEND),
    Setting("tunnel", Duration(), "Inactivity timeout once a connection is a tunnel (default: max of client, server).",
            haproxy="timeout tunnel", scope=BACKEND),
))

COOKIE = Section("cookie", "cookie", "Cookie persistence: which server a client sticks to.", (
    Setting("name", _token("cookie name"), "Name of the cookie.", required=True, haproxy="cookie <name>"),
    Setting("mode", Choice(("insert", "prefix", "rewrite")),
            "`insert` adds the cookie, `prefix` prefixes the application's cookie with `VALUE~`, "
            "`rewrite` replaces the application's cookie value.", "insert", haproxy="insert|prefix|rewrite"),
    Setting("indirect", Bool(), "Do not resend a valid cookie; strip it from requests in insert mode "
            "(not with `rewrite`).", False, haproxy="indirect"),
    Setting("nocache", Bool(), "Mark cacheable responses that set the cookie `Cache-control: private`.", False,
            haproxy="nocache"),
    Setting("postonly", Bool(), "Insert the cookie only in answers to POST.", False, haproxy="postonly"),
    Setting("preserve", Bool(), "Keep a cookie of the same name set by the server.", False, haproxy="preserve"),
    Setting("httponly", Bool(), "Add the HttpOnly attribute.", False, haproxy="httponly"),
    Setting("secure", Bool(), "Add the Secure attribute.", False, haproxy="secure"),
    Setting("domain", StrList(), "Domain attribute(s) of the inserted cookie.", (), haproxy="domain"),
))

HTTPCHK = Section("httpchk", "httpchk", (
    "HTTP health checks. `httpchk = true` sends HAProxy's default `OPTIONS / HTTP/1.0`; "
    "without `httpchk` servers are checked by a TCP connect."), (
    Setting("method", _token("method"), "Request method.", "OPTIONS", haproxy="option httpchk <method>"),
    Setting("path", Str("path", r"/\S*|\*", " (an absolute path starting with '/', or '*')"), "Request path.",
            "/", haproxy="option httpchk <method> <uri>"),
    Setting("version", Choice(("HTTP/1.0", "HTTP/1.1")), "HTTP version of the request.", "HTTP/1.0",
            haproxy="option httpchk <method> <uri> <version>"),
    Setting("host", Str("host name"), "Host header to send (needed by most HTTP/1.1 servers).",
            haproxy="http-check send hdr Host <host>"),
    Setting("expect_status", StatusRanges(), "Statuses that pass (default: any 2xx or 3xx).",
            haproxy="http-check expect status"),
    Setting("disable_on_404", Bool(), "A 404 puts a running server in NOLB (no new traffic, keeps persistence).",
            False, haproxy="http-check disable-on-404"),
))

FORWARDFOR = Section("forwardfor", "forwardfor", (
    "Add the client's address in a header. `forwardfor = true` uses every default."), (
    Setting("except", Network(), "Clients in this network get no header.", haproxy="except"),
    Setting("header", _token("header name"), "Header name.", "X-Forwarded-For", haproxy="header"),
    Setting("if_none", Bool(), "Add the header only when the request has none.", False, haproxy="if-none"),
))

_SERVER_TUNABLES = (
    Setting("weight", Int(0, MAX_WEIGHT), "Share of the traffic; 0 takes none unless persistence sends it.",
            1, haproxy="weight"),
    Setting("check", Bool(), "Run health checks.", False, haproxy="check"),
    Setting("inter", Duration(), "Interval between checks while the server is fully up.", 2000, haproxy="inter"),
    Setting("fastinter", Duration(), "Interval while going up or down (default: `inter`).", haproxy="fastinter"),
    Setting("downinter", Duration(), "Interval while fully down (default: `inter`).", haproxy="downinter"),
    Setting("rise", Int(1), "Consecutive passing checks that bring a down server up.", 2, haproxy="rise"),
    Setting("fall", Int(1), "Consecutive failing checks that bring an up server down.", 3, haproxy="fall"),
    Setting("port", Int(1, MAX_PORT), "Port health checks connect to (default: the server's).", haproxy="port"),
    Setting("backup", Bool(), "Serve only when no active server is up.", False, haproxy="backup"),
    Setting("cookie", COOKIE_VALUE, "This server's value of the persistence cookie.", haproxy="cookie"),
    Setting("maxconn", Int(0), "Most concurrent requests sent to it; 0 means no limit.", 0, haproxy="maxconn"),
    Setting("maxqueue", Int(0), "Most requests waiting for it; beyond, they are redispatched. 0: no limit.",
            0, haproxy="maxqueue"),
    Setting("disabled", Bool(), "Start in maintenance (MAINT).", False, haproxy="disabled"),
    Setting("ssl", Bool(), "Talk TLS to the server (its health checks too, unless `port` sends them elsewhere).",
            False, haproxy="ssl"),
    Setting("verify", Choice(("none", "required")),
            "With `ssl`: `required` checks the server's certificate against `ca_file` (or the system's "
            "CAs) and, when `sni` is set, its name; `none` accepts any certificate.", "required",
            haproxy="verify"),
    Setting("ca_file", Str("path"), "With `ssl`: PEM file of the CAs that sign the server's certificate.",
            haproxy="ca-file"),
    Setting("sni", Str("host name"), "With `ssl`: the server name sent in the handshake (SNI).",
            haproxy="sni str(<name>)"),
    Setting("send_proxy", Choice(("v1", "v2")),
            "Open each connection with a PROXY protocol header naming the client, in text (`v1`) or "
            "binary (`v2`); the connection then serves that client only.",
            haproxy="send-proxy|send-proxy-v2"),
)

SERVER = Section("server", "server", (
    "One server of a backend or listen. Ids are 1, 2, ... in file order."), (
    Setting("name", PROXY_NAME, "Server name, unique in its backend.", required=True, haproxy="server <name>"),
    Setting("address", AddressType(), 'Address as "host:port" (IPv6: "[::1]:80").', required=True,
            haproxy="server <name> <addr:port>"),
) + _SERVER_TUNABLES)

DEFAULT_SERVER = Section("default-server", "default_server", (
    "Defaults for every server of the proxy: any server key but `name` and `address`. "
    "Merged key by key: `[defaults]`, then the proxy's, then the server's own."), _SERVER_TUNABLES)

PROXY = Section("proxy", "proxy settings", (
    "Each key applies to the frontend side, the backend side or both (column Side); "
    "a `[listen]` has both sides."), (
    Setting("mode", Choice(("http", "tcp")), "Protocol: `http` parses requests, `tcp` forwards bytes. "
            "HAProxy's default is tcp, so `gproxy convert` always writes the mode.", "http", haproxy="mode"),
    Setting("bind", BindList(), (
        'Addresses to listen on, e.g. ["*:80", "[::1]:8080"] ("*:80" or ":80": all); an item may be a '
        '[bind](#bind) table for TLS or the PROXY protocol.'),
            haproxy="bind", scope=FRONTEND, in_defaults=False),
    Setting("default_backend", PROXY_NAME, "The backend (or listen) this frontend sends requests to.",
            haproxy="default_backend", scope=FRONTEND),
    Setting("maxconn", Int(0), "Most concurrent connections this frontend accepts.", 2000,
            haproxy="maxconn", scope=FRONTEND),
    Setting("maxconn_per_client", Int(1),
            "Most concurrent connections from one client address; the next one is closed at once, "
            "counted in `dcon` and logged. Unset: no limit. HAProxy: a stick-table storing `conn_cur` "
            "and `tcp-request connection reject if { src_conn_cur ge <n+1> }`.", scope=FRONTEND),
    Setting("max_body_size", Size(),
            "Largest request body: a larger Content-Length gets 413 before anything reaches a server; "
            "a chunked body growing past it is cut (see docs/reliability.md). Counted in `dreq` and "
            "logged. Unset: no limit. HAProxy: `http-request deny deny_status 413` on `req.body_size`.",
            scope=FRONTEND, http_only=True),
    Setting("log", TableList(LOG_TARGET, keyword="global"),
            '`"global"` (the targets of `global.log`) or an array of targets. Unset: no logs.',
            haproxy="log"),
    Setting("httplog", Bool(), "Log each request in HAProxy's HTTP format.", False,
            haproxy="option httplog", scope=FRONTEND, http_only=True),
    Setting("tcplog", Bool(), "Log each connection in HAProxy's TCP format.", False,
            haproxy="option tcplog", scope=FRONTEND),
    Setting("dontlognull", Bool(), "Do not log connections that sent no data.", False,
            haproxy="option dontlognull", scope=FRONTEND),
    Setting("log_health_checks", Bool(), "Log every change of a health check result, not only up/down.", False,
            haproxy="option log-health-checks", scope=BACKEND),
    Setting("timeout", Table(TIMEOUT), "Timeouts.", haproxy="timeout", merge=True),
    Setting("connection_mode", Choice(("keep-alive", "server-close", "close")),
            "`keep-alive` both sides, `server-close` closes server connections after each response, "
            "`close` closes both.", "keep-alive",
            haproxy="option http-keep-alive|http-server-close|httpclose", http_only=True),
    Setting("forwardfor", Table(FORWARDFOR, switch=True), "Add X-Forwarded-For.",
            haproxy="option forwardfor", http_only=True),
    Setting("redirect_to_https", Bool(),
            "Answer requests that came without TLS with a 301 to the same path in https (the port-80 listener).",
            False, haproxy="http-request redirect scheme https code 301 if !{ ssl_fc }", scope=FRONTEND,
            http_only=True),
    Setting("hsts", Duration(minimum=0),
            "Add `Strict-Transport-Security: max-age=<seconds>` to every response (unset: none).",
            haproxy='http-response set-header Strict-Transport-Security "max-age=<seconds>"',
            scope=FRONTEND, http_only=True),
    Setting("stats", Table(STATS_PAGE), "The statistics page served by this frontend.",
            haproxy="stats", scope=FRONTEND, http_only=True),
    Setting("prometheus", Table(PROMETHEUS), "The Prometheus exporter served by this frontend.",
            haproxy="http-request use-service prometheus-exporter", scope=FRONTEND, http_only=True),
    Setting("balance", Choice(("roundrobin", "static-rr", "leastconn", "source", "first", "uri")),
            "Load-balancing algorithm (`uri` needs mode http).", "roundrobin", haproxy="balance", scope=BACKEND),
    Setting("balance_uri_whole", Bool(), 'With `balance = "uri"`: hash the query string too.', False,
            haproxy="balance uri whole", scope=BACKEND, http_only=True),
    Setting("hash_type", Choice(("map-based", "consistent")),
            "How hashing algorithms (source, uri) map to servers.", "map-based", haproxy="hash-type", scope=BACKEND),
    Setting("cookie", Table(COOKIE), "Cookie persistence.", haproxy="cookie", scope=BACKEND, http_only=True),
    Setting("httpchk", Table(HTTPCHK, switch=True), "HTTP health checks.",
            haproxy="option httpchk", scope=BACKEND, http_only=True),
    Setting("retries", Int(0), "Connection attempts retried on a server before giving up.", 3,
            haproxy="retries", scope=BACKEND),
    Setting("redispatch", Bool(), "Let a retry go to another server, breaking persistence.", False,
            haproxy="option redispatch", aliases=("redispatch",), scope=BACKEND),
    Setting("allbackups", Bool(), "Balance over all backup servers, not only the first one up.", False,
            haproxy="option allbackups", scope=BACKEND),
    Setting("fullconn", Int(0), "Backend load considered full (0: 10% of the frontends' maxconn).", 0,
            haproxy="fullconn", scope=BACKEND),
    Setting("default_server", Table(DEFAULT_SERVER), "Defaults for the servers.",
            haproxy="default-server", scope=BACKEND, merge=True),
    Setting("server", TableList(SERVER), "The servers, as `[[backend.NAME.server]]` tables.",
            haproxy="server", scope=BACKEND, in_defaults=False),
))

# Top level of a file: the proxy kinds in the order the docs present them.
PROXY_KINDS = ("listen", "frontend", "backend")
TOP_LEVEL = ("global", "defaults", "snmp") + PROXY_KINDS  # [snmp]: gsuite.snmp_config checks it
SIDES = {"listen": BOTH, "frontend": FRONTEND, "backend": BACKEND, "defaults": BOTH}

ALL_SECTIONS = (GLOBAL, TUNE, LOG_TARGET, STATS_SOCKET, PROXY, BIND, TIMEOUT, COOKIE, HTTPCHK, FORWARDFOR,
                SERVER, DEFAULT_SERVER, STATS_PAGE, PROMETHEUS)
