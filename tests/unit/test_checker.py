"""Active checks (gproxy/checker.py) against real sockets on 127.0.0.1.

L4TOUT is not tested: a connect to a loopback listener never times out (the
kernel completes the handshake even without accept), and we send nothing
outside 127.0.0.0/8.
"""

from __future__ import annotations

import socket as stdsocket

import gevent
import gevent.event
import pytest
from gevent import socket
from gevent.server import StreamServer

from gproxy.checker import (
    HealthChecker,
    build_http_request,
    classify_http_status,
    parse_status_line,
    run_check,
)
from gproxy.config.model import HttpCheck, StatusRange
from gproxy.health import CheckDone, CheckOutcome, CheckStatus, ServerHealth, StartCheck

pytestmark = pytest.mark.timeout(10)

SHORT_MS = 200  # the check timeouts of the silent-server tests
WAIT_S = 5.0  # upper bound for waiting on a greenlet; never reached when all is well


# -- peers


class HttpPeer:
    """A StreamServer answering every request with `response`, recording requests."""

    def __init__(self, response: bytes):
        self.response = response
        self.requests: list[bytes] = []
        self.server = StreamServer(("127.0.0.1", 0), self._handle)

    def _handle(self, sock: socket.socket, _address) -> None:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            self.requests.append(data)
            if self.response:
                sock.sendall(self.response)
        except OSError:
            pass  # the checker resets the connection once it has the status line

    def __enter__(self) -> "HttpPeer":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop(timeout=1)

    @property
    def port(self) -> int:
        return self.server.server_port


@pytest.fixture
def silent_listener():
    """Accepts connections (in the kernel backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def closed_port() -> int:
    sock = stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def http_check(port: int, check: HttpCheck = HttpCheck(), **kw) -> CheckOutcome:
    args = dict(connect_timeout_ms=1000, check_timeout_ms=1000, inter_ms=2000) | kw
    return run_check("127.0.0.1", port, check, **args)


# -- pure helpers


def test_default_request_bytes():
    assert build_http_request(HttpCheck()) == b"OPTIONS / HTTP/1.0\r\n\r\n"


def test_http11_request_with_host():
    check = HttpCheck(method="GET", path="/hc", version="HTTP/1.1", host="www.example.com")
    assert build_http_request(check) == b"GET /hc HTTP/1.1\r\nhost: www.example.com\r\nconnection: close\r\n\r\n"


def test_http11_request_without_host():
    check = HttpCheck(method="GET", path="/health", version="HTTP/1.1")
    assert build_http_request(check) == b"GET /health HTTP/1.1\r\nconnection: close\r\n\r\n"


@pytest.mark.parametrize(
    "line, expected",
    [
        (b"HTTP/1.0 200 OK\r\n", (200, "OK")),
        (b"HTTP/1.1 404 File not found\r\n", (404, "File not found")),
        (b"HTTP/1.1 204\r\n", (204, "")),
        (b"HTTP/1.1 20 OK\r\n", None),
        (b"SSH-2.0-OpenSSH_9.2\r\n", None),
        (b"", None),
    ],
)
def test_parse_status_line(line, expected):
    assert parse_status_line(line) == expected


def test_classify_http_status():
    default = HttpCheck()
    assert classify_http_status(default, 200, "OK") == (CheckStatus.L7OK, "")
    assert classify_http_status(default, 302, "Found") == (CheckStatus.L7OK, "")
    assert classify_http_status(default, 503, "Service Unavailable") == (CheckStatus.L7STS, "Service Unavailable")
    strict = HttpCheck(expect_status=(StatusRange(200, 200),), disable_on_404=True)
    assert classify_http_status(strict, 302, "Found") == (CheckStatus.L7STS, "Found")
    assert classify_http_status(strict, 404, "Not Found") == (CheckStatus.L7OKC, "")  # wins over expect


# -- TCP checks


def test_listening_port_is_l4ok(silent_listener):
    outcome = run_check("127.0.0.1", silent_listener, None, 1000, None, 2000)
    assert outcome.status is CheckStatus.L4OK and outcome.code is None
    assert outcome.duration_ms >= 0


def test_closed_port_is_l4con(closed_port):
    outcome = run_check("127.0.0.1", closed_port, None, 1000, None, 2000)
    assert outcome.status is CheckStatus.L4CON
    assert outcome.info == "Connection refused"


def test_closed_port_with_http_check_is_l4con(closed_port):
    assert http_check(closed_port).status is CheckStatus.L4CON


# -- HTTP checks


def test_http_200_is_l7ok_and_request_bytes_are_haproxys():
    with HttpPeer(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n") as peer:
        outcome = http_check(peer.port)
    assert (outcome.status, outcome.code, outcome.info) == (CheckStatus.L7OK, 200, "")
    assert peer.requests == [b"OPTIONS / HTTP/1.0\r\n\r\n"]


def test_http11_check_sends_host_and_connection_close():
    check = HttpCheck(method="GET", path="/hc", version="HTTP/1.1", host="app.local")
    with HttpPeer(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n") as peer:
        outcome = http_check(peer.port, check)
    assert outcome.status is CheckStatus.L7OK
    assert peer.requests == [b"GET /hc HTTP/1.1\r\nhost: app.local\r\nconnection: close\r\n\r\n"]


def test_http_404_is_l7sts_with_the_reason_phrase():
    with HttpPeer(b"HTTP/1.0 404 File not found\r\n\r\n") as peer:
        outcome = http_check(peer.port)
    assert (outcome.status, outcome.code, outcome.info) == (CheckStatus.L7STS, 404, "File not found")


def test_http_500_is_l7sts():
    with HttpPeer(b"HTTP/1.1 500 Internal Server Error\r\n\r\n") as peer:
        outcome = http_check(peer.port)
    assert (outcome.status, outcome.code) == (CheckStatus.L7STS, 500)
    assert outcome.info == "Internal Server Error"


def test_http_404_with_disable_on_404_is_l7okc():
    with HttpPeer(b"HTTP/1.0 404 Not Found\r\n\r\n") as peer:
        outcome = http_check(peer.port, HttpCheck(disable_on_404=True))
    assert (outcome.status, outcome.code) == (CheckStatus.L7OKC, 404)


def test_expect_status_is_honoured():
    check = HttpCheck(expect_status=(StatusRange(200, 200),))
    with HttpPeer(b"HTTP/1.0 301 Moved Permanently\r\n\r\n") as peer:
        assert http_check(peer.port, check).status is CheckStatus.L7STS


def test_garbage_is_l7rsp():
    with HttpPeer(b"this is not http at all\r\n") as peer:
        outcome = http_check(peer.port)
    assert outcome.status is CheckStatus.L7RSP and outcome.code is None


def test_close_without_reply_is_l7rsp():
    with HttpPeer(b"") as peer:
        outcome = http_check(peer.port)
    assert outcome.status is CheckStatus.L7RSP
    assert peer.requests == [b"OPTIONS / HTTP/1.0\r\n\r\n"]


def test_status_line_split_across_packets():
    class SlowPeer(HttpPeer):
        def _handle(self, sock, _address):
            sock.recv(4096)
            sock.sendall(b"HTTP/1.1 2")
            gevent.sleep(0.01)
            sock.sendall(b"04 No Content\r\n\r\n")

    with SlowPeer(b"") as peer:
        outcome = http_check(peer.port)
    assert (outcome.status, outcome.code) == (CheckStatus.L7OK, 204)


def test_silent_server_is_l7tout_with_check_timeout(silent_listener):
    outcome = http_check(silent_listener, connect_timeout_ms=1000, check_timeout_ms=SHORT_MS, inter_ms=5000)
    assert outcome.status is CheckStatus.L7TOUT and outcome.info == ""
    assert outcome.duration_ms >= SHORT_MS - 5  # the read really waited for the timeout


def test_silent_server_is_l7tout_within_inter_without_check_timeout(silent_listener):
    outcome = http_check(silent_listener, connect_timeout_ms=5000, check_timeout_ms=None, inter_ms=SHORT_MS)
    assert outcome.status is CheckStatus.L7TOUT


# -- the checker greenlet


def fixed(outcome: CheckOutcome):
    return lambda: outcome


L4OK = CheckOutcome(CheckStatus.L4OK, None, 0, "")


def test_run_once_calls_run_then_on_result():
    results = []
    checker = HealthChecker("b/s", fixed(L4OK), lambda: 1000, results.append, first_delay_ms=0)
    assert checker.run_once() == L4OK
    assert results == [L4OK]
    assert not checker.running


def test_run_once_skips_when_told():
    calls = []
    checker = HealthChecker(
        "b/s", lambda: calls.append(1) or L4OK, lambda: 1000, calls.append, 0, should_run=lambda: False
    )
    assert checker.run_once() is None and calls == []


def collect(n: int):
    """An on_result that sets an event after n results."""
    results: list[CheckOutcome] = []
    done = gevent.event.Event()

    def on_result(outcome: CheckOutcome) -> None:
        results.append(outcome)
        if len(results) >= n:
            done.set()

    return results, done, on_result


def test_loop_runs_checks_repeatedly_and_stops():
    results, done, on_result = collect(3)
    checker = HealthChecker("b/s", fixed(L4OK), lambda: 5, on_result, first_delay_ms=0)
    checker.start()
    try:
        assert done.wait(WAIT_S)
    finally:
        checker.stop()
    assert not checker.running
    count = len(results)
    gevent.sleep(0)  # let the hub run: a live greenlet would add results
    assert len(results) == count >= 3


def test_stop_kills_a_check_in_progress():
    started, cleaned = gevent.event.Event(), []

    def hanging_run() -> CheckOutcome:
        started.set()
        try:
            gevent.event.Event().wait()  # never set: like a peer that never answers
        finally:
            cleaned.append(True)
        return L4OK

    checker = HealthChecker("b/s", hanging_run, lambda: 5, lambda o: None, first_delay_ms=0)
    checker.start()
    assert started.wait(WAIT_S)
    checker.stop()
    assert not checker.running and cleaned == [True]


def test_a_failing_run_does_not_end_the_checks():
    errors: list[BaseException] = []
    results, done, on_result = collect(1)
    attempts = []

    def flaky() -> CheckOutcome:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("bug in a check")
        return L4OK

    checker = HealthChecker(
        "b/s", flaky, lambda: 5, on_result, first_delay_ms=0, on_error=lambda name, exc: errors.append(exc)
    )
    checker.start()
    try:
        assert done.wait(WAIT_S)
    finally:
        checker.stop()
    assert isinstance(errors[0], RuntimeError) and results[0] == L4OK


def test_wake_runs_a_check_before_the_interval_ends():
    results, done, on_result = collect(1)
    checker = HealthChecker("b/s", fixed(L4OK), lambda: 60_000, on_result, first_delay_ms=60_000)
    checker.start()
    try:
        checker.wake()
        assert done.wait(WAIT_S)
    finally:
        checker.stop()


def test_checker_drives_the_state_machine(closed_port):
    """The wiring the engine does: StartCheck, run_check, CheckDone."""
    health = ServerHealth(2, 3, check_enabled=True, disabled=False, now=0.0)
    transitions = []

    def run() -> CheckOutcome:
        health.process_event(StartCheck(), 1.0)
        assert health.check_status_field() == "* INI"
        return run_check("127.0.0.1", closed_port, None, 1000, None, 2000)

    def on_result(outcome: CheckOutcome) -> None:
        transitions.extend(health.process_event(CheckDone(outcome), 1.0))

    checker = HealthChecker("b/s", run, lambda: 1000, on_result, 0, should_run=lambda: health.checks_active)
    checker.run_once()
    assert [t.new for t in transitions] == ["DOWN"]
    assert health.check_status_field() == "L4CON" and health.last_outcome.info == "Connection refused"
