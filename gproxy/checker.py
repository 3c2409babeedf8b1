"""Active health checks: the gevent side of `gproxy.health`.

`run_check()` does one check over a real socket (TCP connect, or an HTTP
request with `option httpchk`) and turns whatever the peer did into a
`CheckOutcome`; it never raises for a peer problem. `HealthChecker` is the
greenlet that runs one server's checks at the interval the state machine
asks for. The verdict on the server is not taken here: the caller feeds each
outcome to `ServerHealth.process_event(CheckDone(...))`.

Timeouts follow HAProxy (haproxy.md 2.2): with `timeout check`, the connect
timeout is min(`timeout connect`, inter) and `timeout check` bounds the reply
once connected; without it, `inter` bounds the whole check.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import sys
import time
import traceback
from typing import TYPE_CHECKING, Callable

import gevent
import gevent.event
from gevent import socket as gsocket

from gproxy.config.model import HttpCheck
from gproxy.health import CheckOutcome, CheckStatus

if TYPE_CHECKING:  # imported when a check uses TLS only: OpenSSL costs a process 4 MiB
    import ssl

# We only need the status line; a longer first line is not HTTP.
MAX_STATUS_LINE = 16384  # HAProxy's tune.bufsize
RECV_SIZE = 4096
# After an unexpected error, and when even `interval` fails: HAProxy's default inter.
DEFAULT_RETRY_MS = 2000
# Abortive close: HAProxy closes check connections with a reset so that
# neither side keeps a TIME_WAIT socket per check.
_LINGER_RESET = struct.pack("ii", 1, 0)

_STATUS_LINE_RE = re.compile(rb"^HTTP/\d\.\d (\d{3})(?: (.*))?$")


def build_http_request(check: HttpCheck) -> bytes:
    """The bytes HAProxy 2.6 sends for `option httpchk` / `http-check send`
    (haproxy.md 2.4): request line, `host` if set, `connection: close` for HTTP/1.1."""
    lines = [f"{check.method} {check.path} {check.version}\r\n"]
    if check.host:
        lines.append(f"host: {check.host}\r\n")
    if check.version.upper() == "HTTP/1.1":
        lines.append("connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def parse_status_line(line: bytes) -> tuple[int, str] | None:
    """(status, reason) from `HTTP/1.x SSS reason`, or None if it is not one."""
    match = _STATUS_LINE_RE.match(line.rstrip(b"\r\n"))
    if match is None:
        return None
    reason = (match.group(2) or b"").decode("latin-1").strip()
    return int(match.group(1)), reason


def classify_http_status(check: HttpCheck, status: int, reason: str) -> tuple[CheckStatus, str]:
    """The check status and `last_chk` info of an HTTP reply. A 404 with
    disable-on-404 wins over `expect` (haproxy.md 2.4)."""
    if status == 404 and check.disable_on_404:
        return CheckStatus.L7OKC, ""
    if check.passes(status):
        return CheckStatus.L7OK, ""
    return CheckStatus.L7STS, reason


def _error_text(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else (str(exc) or type(exc).__name__)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def run_check(
    host: str,
    port: int,
    httpchk: HttpCheck | None,
    connect_timeout_ms: int,
    check_timeout_ms: int | None,
    inter_ms: int,
    preamble: bytes = b"",
    tls: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> CheckOutcome:
    """One check of host:port; see the module docstring for the timeouts.

    A server with `send_proxy` gets `preamble` (a PROXY header) first, one
    with `ssl` a TLS handshake (its failure is a layer-6 one, L6RSP/L6TOUT;
    its success alone is L6OK), as HAProxy checks such servers."""
    started = time.monotonic()
    if check_timeout_ms is not None:
        connect_limit_ms = min(connect_timeout_ms, inter_ms)
    else:
        connect_limit_ms = inter_ms
    sock: socket.socket | None = None
    try:
        try:
            sock = gsocket.create_connection((host, port), timeout=connect_limit_ms / 1000)
        except TimeoutError:
            return CheckOutcome(CheckStatus.L4TOUT, None, _elapsed_ms(started), "")
        except socket.gaierror as exc:
            return CheckOutcome(CheckStatus.SOCKERR, None, _elapsed_ms(started), str(exc))
        except OSError as exc:
            return CheckOutcome(CheckStatus.L4CON, None, _elapsed_ms(started), _error_text(exc))
        if preamble:
            try:
                sock.sendall(preamble)
            except OSError as exc:
                return CheckOutcome(CheckStatus.L4CON, None, _elapsed_ms(started), _error_text(exc))
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_hostname=server_hostname)
            except (TimeoutError, OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                timed_out = isinstance(exc, TimeoutError) or "timed out" in str(exc)
                reason = getattr(exc, "reason", None) or str(exc)
                return CheckOutcome(CheckStatus.L6TOUT if timed_out else CheckStatus.L6RSP, None,
                                    _elapsed_ms(started), "" if timed_out else f"SSL handshake failure ({reason})")
        if httpchk is None:
            status = CheckStatus.L6OK if tls is not None else CheckStatus.L4OK
            return CheckOutcome(status, None, _elapsed_ms(started), "")
        if check_timeout_ms is not None:
            deadline = time.monotonic() + check_timeout_ms / 1000
        else:
            deadline = started + inter_ms / 1000
        return _http_exchange(sock, httpchk, deadline, started)
    finally:
        if sock is not None:
            _abort(sock)


def _http_exchange(sock: socket.socket, check: HttpCheck, deadline: float, started: float) -> CheckOutcome:
    buffer = b""
    try:
        remaining = deadline - time.monotonic()
        if remaining <= 0:  # the connect used the whole budget (no `timeout check`)
            raise TimeoutError
        sock.settimeout(remaining)
        sock.sendall(build_http_request(check))
        while b"\n" not in buffer and len(buffer) <= MAX_STATUS_LINE:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
            chunk = sock.recv(RECV_SIZE)
            if not chunk:
                break
            buffer += chunk
    except TimeoutError:
        return CheckOutcome(CheckStatus.L7TOUT, None, _elapsed_ms(started), "")
    except OSError as exc:
        return CheckOutcome(CheckStatus.L7RSP, None, _elapsed_ms(started), _error_text(exc))
    if not buffer:
        return CheckOutcome(CheckStatus.L7RSP, None, _elapsed_ms(started), "empty response")
    parsed = parse_status_line(buffer.split(b"\n", 1)[0])
    if parsed is None:
        return CheckOutcome(CheckStatus.L7RSP, None, _elapsed_ms(started), "invalid HTTP status line")
    status, reason = parsed
    verdict, info = classify_http_status(check, status, reason)
    return CheckOutcome(verdict, status, _elapsed_ms(started), info)


def _abort(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    except OSError:
        pass  # already reset by the peer: nothing to linger on
    sock.close()


def _print_error(name: str, exc: BaseException) -> None:
    print(f"gproxy: health checker {name} failed: {exc!r}", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)


class HealthChecker:
    """One greenlet running a server's checks.

    `run` does one check (typically: send `StartCheck` to the server's
    `ServerHealth`, then `run_check(...)`); `on_result` receives its outcome;
    `interval` says how long to wait before the next one (ms, asked after each
    check so it follows the state machine's inter/fastinter/downinter);
    `should_run`, if given, skips a turn when it returns False (checks paused
    or disabled). The first check waits `first_delay_ms`: the caller spreads
    first checks over the first interval.
    """

    def __init__(
        self,
        name: str,
        run: Callable[[], CheckOutcome],
        interval: Callable[[], int],
        on_result: Callable[[CheckOutcome], None],
        first_delay_ms: int,
        should_run: Callable[[], bool] | None = None,
        on_error: Callable[[str, BaseException], None] = _print_error,
    ):
        self.name = name
        self._run = run
        self._interval = interval
        self._on_result = on_result
        self._first_delay_ms = first_delay_ms
        self._should_run = should_run
        self._on_error = on_error
        self._wakeup = gevent.event.Event()
        self._greenlet: gevent.Greenlet | None = None

    @property
    def running(self) -> bool:
        return self._greenlet is not None and not self._greenlet.dead

    def start(self) -> None:
        if self.running:
            return
        self._wakeup.clear()
        self._greenlet = gevent.spawn(self._loop)
        self._greenlet.name = f"check {self.name}"

    def stop(self, timeout: float = 1.0) -> None:
        """Kill the greenlet (closing any check socket) and wait for it."""
        greenlet, self._greenlet = self._greenlet, None
        if greenlet is not None:
            greenlet.kill(block=True, timeout=timeout)

    def wake(self) -> None:
        """Check now instead of at the end of the current wait (e.g. leaving maintenance)."""
        self._wakeup.set()

    def run_once(self) -> CheckOutcome | None:
        """One check, synchronously; None if `should_run` said to skip it."""
        if self._should_run is not None and not self._should_run():
            return None
        outcome = self._run()
        self._on_result(outcome)
        return outcome

    def _loop(self) -> None:
        delay_ms = self._first_delay_ms
        while True:
            self._wakeup.wait(max(delay_ms, 0) / 1000)
            self._wakeup.clear()
            try:
                self.run_once()
                delay_ms = self._interval()
            except Exception as exc:  # a bug must not end this server's checks silently
                self._on_error(self.name, exc)
                delay_ms = self._safe_interval()

    def _safe_interval(self) -> int:
        try:
            return self._interval()
        except Exception:
            return DEFAULT_RETRY_MS

