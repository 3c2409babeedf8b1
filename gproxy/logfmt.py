"""Access-log records and the text HAProxy would log for them.

This module only formats: no sockets, no clock reads. The engine fills one
`RequestRecord` along each request (a `__slots__` object, cheap to create and
to update with plain attribute stores); `logsink.LogSink` later turns it into
a line with `format_httplog` or `format_tcplog`, off the request path, and
wraps the line in an RFC 3164 syslog header with `format_rfc3164`.

The layouts are HAProxy 2.6's, checked against Debian's haproxy 2.6.12:

- `option httplog`: `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS
  %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %{+Q}r`
- `option tcplog`: `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc
  %sq/%bq`

Dates are local time, `dd/Mon/yyyy:HH:MM:SS.mmm`, with English month names
whatever the locale. The request line is escaped like HAProxy's log encoder
does (`"`, `#` and non-printable bytes become `#XX`), so a hostile client can
neither break the quoting nor forge a second log line.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

__all__ = [
    "RequestRecord",
    "format_httplog",
    "format_tcplog",
    "format_rfc3164",
    "rfc3164_prefix",
    "syslog_pri",
    "termination_state",
    "escape_request_line",
    "clear_date_cache",
    "FACILITIES",
    "SEVERITIES",
    "CAUSES",
    "PHASES",
    "REQ_COOKIE_FLAGS",
    "RESP_COOKIE_FLAGS",
    "NO_SERVER",
    "STATS_SERVER",
    "BAD_REQUEST_LINE",
    "NORMAL_TERMINATION",
]

# --- names HAProxy prints in place of a server or a request line -----------
NO_SERVER = "<NOSRV>"
STATS_SERVER = "<STATS>"
BAD_REQUEST_LINE = "<BADREQ>"
NORMAL_TERMINATION = "----"

# --- syslog codes (RFC 3164 / 5424; the names HAProxy's `log` accepts) ----
FACILITIES: dict[str, int] = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
    "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "auth2": 10, "ftp": 11,
    "ntp": 12, "audit": 13, "alert": 14, "cron2": 15,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip
SEVERITIES: dict[str, int] = {
    "emerg": 0, "alert": 1, "crit": 2, "err": 3,
    "warning": 4, "notice": 5, "info": 6, "debug": 7,
}  # fmt: skip

# --- termination state (HAProxy configuration.txt, "Session state at
# disconnection"): cause, then the phase the session was in, then (HTTP only)
# the request and response persistence-cookie flags. --------------------------
CAUSE_NONE = "-"  # normal end
CAUSE_CLIENT_ABORT = "C"  # the client aborted or closed too early
CAUSE_SERVER = "S"  # the server aborted or answered an error
CAUSE_PROXY = "P"  # the proxy refused or denied (deny rule, bad request)
CAUSE_RESOURCE = "R"  # a local resource ran out (memory, sockets, ports)
CAUSE_INTERNAL = "I"  # an internal error (a bug)
CAUSE_DOWN = "D"  # killed because the server went down
CAUSE_KILLED = "K"  # killed by an administrator (shutdown sessions)
CAUSE_CLIENT_TIMEOUT = "c"  # `timeout client` (or http-request) expired
CAUSE_SERVER_TIMEOUT = "s"  # `timeout server`, `connect` or `queue` expired
CAUSE_LOCAL = "L"  # answered locally (stats page, redirect)
CAUSE_UNIT = "U"  # a unit-level error (HAProxy: an applet or service)
CAUSES = frozenset("-CSPRIDKcsLU")

PHASE_NONE = "-"  # normal end, after the last byte
PHASE_REQUEST = "R"  # waiting for the full request head
PHASE_QUEUE = "Q"  # waiting in a queue for a connection slot
PHASE_CONNECT = "C"  # connecting to the server
PHASE_HEADERS = "H"  # waiting for the complete response head
PHASE_DATA = "D"  # transferring data
PHASE_LAST = "L"  # sending the last data to the client
PHASE_TARPIT = "T"  # held in the tarpit
PHASE_INITIAL = "I"  # still in the initial state (HAProxy 2.x)
PHASES = frozenset("-RQCHDLTI")

REQ_COOKIE_NONE = "N"  # the client sent no persistence cookie
REQ_COOKIE_INVALID = "I"  # the cookie names no known server
REQ_COOKIE_DOWN = "D"  # the cookie's server is down: redispatched
REQ_COOKIE_VALID = "V"  # valid, and the request went to that server
REQ_COOKIE_EXPIRED = "E"  # expired (maxidle)
REQ_COOKIE_OLD = "O"  # too old (maxlife)
REQ_COOKIE_UNUSED = "U"  # present but persistence was not used
REQ_COOKIE_NA = "-"  # persistence does not apply
REQ_COOKIE_FLAGS = frozenset("NIDVEOU-")

RESP_COOKIE_NONE = "N"  # no cookie was set
RESP_COOKIE_INSERTED = "I"  # the proxy inserted one (insert mode)
RESP_COOKIE_UPDATED = "U"  # the proxy updated it (maxidle/maxlife)
RESP_COOKIE_PROVIDED = "P"  # the server set it, passed unchanged
RESP_COOKIE_REWRITTEN = "R"  # the server's cookie was rewritten (rewrite/prefix)
RESP_COOKIE_DELETED = "D"  # the proxy deleted the server's cookie
RESP_COOKIE_NA = "-"  # persistence does not apply
RESP_COOKIE_FLAGS = frozenset("NIUPRD-")

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip

# Epoch seconds in a double carry about 0.25 us of error today; nudging by
# 0.5 us before truncating to milliseconds keeps 15:03:14.190 from printing
# as .189 while staying far below a millisecond.
_MS_ROUNDING = 0.0005

# Lines are logged in time order, so a handful of cached seconds covers the
# typical burst; each miss costs one datetime conversion.
_DATE_CACHE_SIZE = 64


class RequestRecord:
    """What one request (or TCP session) leaves behind for the access log.

    Fields are plain attributes the engine sets as the request progresses;
    every timer is in milliseconds and stays -1 while its phase is not
    reached, as HAProxy prints it.
    """

    __slots__ = (
        "client_ip", "client_port", "accept_time", "frontend", "backend", "server",
        "t_request", "t_queue", "t_connect", "t_response", "t_active",
        "status", "bytes_out", "bytes_in", "req_cookie", "resp_cookie", "termination",
        "actconn", "feconn", "beconn", "srv_conn", "retries", "redispatched",
        "srv_queue", "backend_queue", "request_line",
    )  # fmt: skip

    def __init__(
        self,
        client_ip: str = "-",
        client_port: int = 0,
        accept_time: float = 0.0,
        frontend: str = "-",
        backend: str = "-",
        server: str = NO_SERVER,
        t_request: int = -1,
        t_queue: int = -1,
        t_connect: int = -1,
        t_response: int = -1,
        t_active: int = -1,
        status: int = -1,
        bytes_out: int = 0,
        req_cookie: str = "-",
        resp_cookie: str = "-",
        termination: str = NORMAL_TERMINATION,
        actconn: int = 0,
        feconn: int = 0,
        beconn: int = 0,
        srv_conn: int = 0,
        retries: int = 0,
        redispatched: bool = False,
        srv_queue: int = 0,
        backend_queue: int = 0,
        request_line: str = BAD_REQUEST_LINE,
        bytes_in: int = 0,
    ) -> None:
        self.client_ip = client_ip  # printed as is, IPv6 without brackets
        self.client_port = client_port
        self.accept_time = accept_time  # epoch seconds
        self.frontend = frontend
        self.backend = backend  # HAProxy prints the frontend's name when none was chosen
        self.server = server  # NO_SERVER, or STATS_SERVER for the stats page
        self.t_request = t_request  # TR: time to receive the full request head
        self.t_queue = t_queue  # Tw: time spent in queues
        self.t_connect = t_connect  # Tc: time to connect to the server
        self.t_response = t_response  # Tr: server time to send the response head
        self.t_active = t_active  # Ta (http) / Tt (tcp): total time
        self.status = status
        self.bytes_out = bytes_out  # to the client, headers included
        self.bytes_in = bytes_in  # from the client, headers included
        self.req_cookie = req_cookie  # captured request cookie, "-" if none
        self.resp_cookie = resp_cookie  # captured response cookie, "-" if none
        self.termination = termination  # see termination_state()
        self.actconn = actconn
        self.feconn = feconn
        self.beconn = beconn
        self.srv_conn = srv_conn
        self.retries = retries
        self.redispatched = redispatched
        self.srv_queue = srv_queue  # requests served before this one from the server queue
        self.backend_queue = backend_queue  # ... and from the backend queue
        self.request_line = request_line  # decoded as latin-1 (or surrogateescape)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"RequestRecord({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RequestRecord):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable


def termination_state(
    cause: str,
    phase: str,
    req_cookie_flag: str = REQ_COOKIE_NA,
    resp_cookie_flag: str = RESP_COOKIE_NA,
) -> str:
    """The 4-character `%tsc` state; `%ts` (tcplog) is its first 2 characters.

    >>> termination_state(CAUSE_SERVER_TIMEOUT, PHASE_QUEUE)
    'sQ--'
    """
    if (
        cause not in CAUSES
        or phase not in PHASES
        or req_cookie_flag not in REQ_COOKIE_FLAGS
        or resp_cookie_flag not in RESP_COOKIE_FLAGS
    ):
        raise ValueError(
            f"invalid termination state {cause!r}{phase!r}{req_cookie_flag!r}{resp_cookie_flag!r}"
        )
    return cause + phase + req_cookie_flag + resp_cookie_flag


@lru_cache(maxsize=_DATE_CACHE_SIZE)
def _log_date(second: int) -> str:
    """`dd/Mon/yyyy:HH:MM:SS` in local time for one epoch second."""
    t = datetime.fromtimestamp(second)
    return f"{t.day:02d}/{_MONTHS[t.month - 1]}/{t.year:04d}:{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


@lru_cache(maxsize=_DATE_CACHE_SIZE)
def _syslog_date(second: int) -> str:
    """`Mmm dd HH:MM:SS` (day padded with a space) in local time, RFC 3164."""
    t = datetime.fromtimestamp(second)
    return f"{_MONTHS[t.month - 1]} {t.day:2d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


# The last accept date printed, as [milliseconds since the epoch, text]:
# under load a dozen requests share each millisecond, and the keep-alive ones
# logged together come in order.
_last_accept = [-1, ""]


def clear_date_cache() -> None:
    """Forget cached date strings; needed only after the time zone changes."""
    _log_date.cache_clear()
    _syslog_date.cache_clear()
    _last_accept[:] = [-1, ""]


def _accept_date(epoch: float) -> str:
    stamp = int(epoch * 1000.0 + _MS_ROUNDING)
    last = _last_accept
    if stamp == last[0]:
        return last[1]  # type: ignore[return-value]
    second, ms = divmod(stamp, 1000)
    text = f"{_log_date(second)}.{ms:03d}"
    last[0] = stamp
    last[1] = text
    return text


def escape_request_line(line: str) -> str:
    """Escape like HAProxy's log encoder: `"`, `#`, bytes < 32 and >= 127 as `#XX`.

    Characters up to U+00FF stand for the byte of the same value (latin-1
    decoding); lone surrogates from `surrogateescape` give back their byte;
    anything else is escaped byte by byte from its UTF-8 form.
    """
    if line.isascii() and line.isprintable() and '"' not in line and "#" not in line:
        return line  # the usual case: one scan, no copy
    out: list[str] = []
    for ch in line:
        code = ord(ch)
        if 32 <= code < 127 and ch != '"' and ch != "#":
            out.append(ch)
        elif code < 256:
            out.append(f"#{code:02X}")
        else:
            try:
                raw = ch.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raw = ch.encode("utf-8", "surrogatepass")
            out.extend(f"#{b:02X}" for b in raw)
    return "".join(out)


def format_httplog(rec: RequestRecord) -> str:
    """The `option httplog` line for one request (without syslog header)."""
    retries = f"+{rec.retries}" if rec.redispatched else rec.retries
    return (
        f"{rec.client_ip}:{rec.client_port} [{_accept_date(rec.accept_time)}] "
        f"{rec.frontend} {rec.backend}/{rec.server} "
        f"{rec.t_request}/{rec.t_queue}/{rec.t_connect}/{rec.t_response}/{rec.t_active} "
        f"{rec.status} {rec.bytes_out} {rec.req_cookie} {rec.resp_cookie} {rec.termination} "
        f"{rec.actconn}/{rec.feconn}/{rec.beconn}/{rec.srv_conn}/{retries} "
        f'{rec.srv_queue}/{rec.backend_queue} "{escape_request_line(rec.request_line)}"'
    )


def format_tcplog(rec: RequestRecord) -> str:
    """The `option tcplog` line for one TCP session (without syslog header)."""
    retries = f"+{rec.retries}" if rec.redispatched else rec.retries
    return (
        f"{rec.client_ip}:{rec.client_port} [{_accept_date(rec.accept_time)}] "
        f"{rec.frontend} {rec.backend}/{rec.server} "
        f"{rec.t_queue}/{rec.t_connect}/{rec.t_active} "
        f"{rec.bytes_out} {rec.termination[:2]} "
        f"{rec.actconn}/{rec.feconn}/{rec.beconn}/{rec.srv_conn}/{retries} "
        f"{rec.srv_queue}/{rec.backend_queue}"
    )


def syslog_pri(facility: str, severity: str) -> int:
    """PRI = facility * 8 + severity; unknown names raise ValueError."""
    try:
        return FACILITIES[facility] * 8 + SEVERITIES[severity]
    except KeyError as exc:
        raise ValueError(f"unknown syslog facility or severity: {exc.args[0]!r}") from None


def format_rfc3164(
    message: str,
    facility: str,
    severity: str,
    tag: str,
    pid: int,
    now: float,
    hostname: str | None = None,
) -> bytes:
    """One syslog datagram: `<PRI>Mmm dd HH:MM:SS [HOST ]TAG[PID]: MESSAGE\\n`.

    HAProxy omits the host name by default and ends every datagram with a
    newline (seen on the wire from haproxy 2.6.12); we do the same.
    """
    line = f"{rfc3164_prefix(facility, severity, tag, pid, int(now), hostname)}{message}\n"
    return line.encode("utf-8", "backslashreplace")


def rfc3164_prefix(
    facility: str, severity: str, tag: str, pid: int, second: int, hostname: str | None = None
) -> str:
    """The datagram's head up to the message, `<PRI>Mmm dd HH:MM:SS [HOST ]TAG[PID]: `.

    It is the same for every line of one second: a sender keeps it and only
    appends messages (see logsink), `format_rfc3164` is the one-shot form.
    """
    host = f"{hostname} " if hostname else ""
    return f"<{syslog_pri(facility, severity)}>{_syslog_date(second)} {host}{tag}[{pid}]: "
