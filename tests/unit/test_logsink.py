"""LogSink over real sockets: UDP on 127.0.0.1, unix datagram sockets, stderr."""

from __future__ import annotations

import calendar
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import gevent
import gevent.socket
import pytest

from gproxy.config.model import LogTarget
from gproxy.logfmt import RequestRecord, clear_date_cache, format_httplog, format_rfc3164, format_tcplog
from gproxy.logsink import RECONNECT_DELAY, LogSink, parse_target

NOV24 = calendar.timegm((2026, 11, 24, 15, 3, 14))
RECV_TIMEOUT = 5.0  # generous: only reached when a test is about to fail

RR_LINE = (
    '127.0.0.1:52898 [24/Nov/2026:15:03:14.190] fe_echo be_rr/e1 0/0/0/0/0 200 214 - - ---- '
    '1/1/0/0/0 0/0 "GET /rr HTTP/1.1"'
)


class ManualClock:
    def __init__(self, now: float = NOV24) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    clear_date_cache()
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()
    clear_date_cache()


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(RECV_TIMEOUT)
    yield sock
    sock.close()


def unix_receiver(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(RECV_TIMEOUT)
    return sock


def rr_record() -> RequestRecord:
    return RequestRecord(
        client_ip="127.0.0.1", client_port=52898, accept_time=NOV24 + 0.190, frontend="fe_echo",
        backend="be_rr", server="e1", t_request=0, t_queue=0, t_connect=0, t_response=0,
        t_active=0, status=200, bytes_out=214, actconn=1, feconn=1, request_line="GET /rr HTTP/1.1",
    )  # fmt: skip


def udp_target(sock: socket.socket, **kw: str) -> LogTarget:
    host, port = sock.getsockname()[:2]
    return LogTarget(target=f"udp://{host}:{port}", **kw)


# --- UDP --------------------------------------------------------------------
def test_udp_datagram_carries_pri_tag_and_line(udp_receiver: socket.socket) -> None:
    sink = LogSink([udp_target(udp_receiver, facility="local3")], tag="haproxy", pid=20306, clock=ManualClock())
    sink.log_record(rr_record(), format_httplog)
    sink.flush()
    assert udp_receiver.recv(65535) == f"<158>Nov 24 15:03:14 haproxy[20306]: {RR_LINE}\n".encode()
    assert sink.dropped == 0 and sink.sent == 1
    sink.close()


def test_udp_messages_use_their_severity_and_the_target_level(udp_receiver: socket.socket) -> None:
    sink = LogSink([udp_target(udp_receiver, level="notice")], pid=9, clock=ManualClock())
    sink.log_message("Server be_app/web2 is DOWN, reason: Layer4 connection problem", "alert")
    sink.log_record(rr_record(), format_tcplog)  # no severity: the target's level
    sink.log_record(rr_record(), format_tcplog, severity="err")
    sink.flush()
    assert udp_receiver.recv(65535) == (
        b"<129>Nov 24 15:03:14 gproxy[9]: Server be_app/web2 is DOWN, reason: Layer4 connection problem\n"
    )
    assert udp_receiver.recv(65535).startswith(b"<133>Nov 24 15:03:14 gproxy[9]: 127.0.0.1:52898 [")
    assert udp_receiver.recv(65535).startswith(b"<131>")
    sink.close()


def test_cached_syslog_heads_give_the_one_shot_datagrams(udp_receiver: socket.socket) -> None:
    """The sender keeps the `<PRI>date tag[pid]: ` head per second and severity:
    byte for byte format_rfc3164's, also across a second change and non-ASCII."""
    clock = ManualClock(NOV24 + 0.999)
    sink = LogSink([udp_target(udp_receiver, facility="local3", level="notice")], tag="gp", pid=77, clock=clock)
    sent = []
    for now, message, severity in [
        (NOV24 + 0.999, "one", None), (NOV24 + 0.999, "two", "err"), (NOV24 + 1.0, "three", None),
        (NOV24 + 1.5, "four \u00e9 \udcff", "err"), (NOV24 + 61.0, "five", None),
    ]:  # fmt: skip
        clock.now = now
        if severity:
            sink.log_message(message, severity)
        else:  # the target's level
            sink.log_record(message, lambda m: m)  # type: ignore[arg-type]
        sink.flush()
        sent.append(format_rfc3164(message, "local3", severity or "notice", "gp", 77, now))
    assert [udp_receiver.recv(65535) for _ in sent] == sent
    assert sink.dropped == 0
    sink.close()


def test_udp_target_without_listener_loses_lines_but_is_kept() -> None:
    """The UDP socket is connected, so the kernel reports an ICMP port unreachable
    as ECONNREFUSED on a later send: that line is lost and counted, nothing
    raises, and the target is used again as soon as a syslogd listens."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens on `port` now
    sink = LogSink([LogTarget(target=f"udp://127.0.0.1:{port}")], pid=1, clock=ManualClock())
    for i in range(4):
        sink.log_message(f"lost {i}")
        sink.flush()
    assert 1 <= sink.dropped <= 4  # loopback answers the first datagram with ICMP at once
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", port))
    rx.settimeout(RECV_TIMEOUT)
    try:
        sink.log_message("back")
        sink.flush()
        assert rx.recv(65535) == b"<134>Nov 24 15:03:14 gproxy[1]: back\n"
    finally:
        rx.close()
    sink.close()


def test_each_target_formats_with_its_own_facility_and_tag(tmp_path: Path) -> None:
    a, b = unix_receiver(tmp_path / "a"), unix_receiver(tmp_path / "b")
    sink = LogSink(
        [LogTarget(f"unix://{tmp_path / 'a'}", facility="local0"),
         LogTarget(f"unix://{tmp_path / 'b'}", facility="daemon", tag="lb")],
        tag="haproxy", pid=1, clock=ManualClock(),
    )  # fmt: skip
    sink.log_message("hello")
    sink.flush()
    assert a.recv(4096) == b"<134>Nov 24 15:03:14 haproxy[1]: hello\n"
    assert b.recv(4096) == b"<30>Nov 24 15:03:14 lb[1]: hello\n"
    sink.close()
    a.close()
    b.close()


def test_udp_over_ipv6() -> None:
    try:
        rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        rx.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    rx.settimeout(RECV_TIMEOUT)
    sink = LogSink([LogTarget(f"udp://[::1]:{rx.getsockname()[1]}")], pid=3, clock=ManualClock())
    sink.log_message("v6")
    sink.flush()
    assert rx.recv(4096) == b"<134>Nov 24 15:03:14 gproxy[3]: v6\n"
    sink.close()
    rx.close()


def test_background_greenlet_sends_without_flush(udp_receiver: socket.socket) -> None:
    sink = LogSink([udp_target(udp_receiver)], pid=5, clock=ManualClock())
    sink.log_record(rr_record(), format_httplog)
    assert sink.pending == 1  # queued only: the caller never does I/O
    rx = gevent.socket.socket(fileno=os.dup(udp_receiver.fileno()))
    rx.settimeout(RECV_TIMEOUT)
    try:
        # waiting cooperatively lets the sink's greenlet run
        assert rx.recv(65535).endswith(f"{RR_LINE}\n".encode())
        sink.log_message("second")
        assert rx.recv(65535).endswith(b" gproxy[5]: second\n")
    finally:
        rx.close()
    assert sink.pending == 0
    sink.close()


def test_long_lines_truncated_to_max_line(udp_receiver: socket.socket) -> None:
    sink = LogSink([udp_target(udp_receiver)], pid=1, clock=ManualClock())
    sink.log_message("x" * 5000)
    sink.flush()
    data = udp_receiver.recv(65535)
    assert len(data) == 1024 and data.endswith(b"x\n")
    sink.close()


# --- unix datagram ------------------------------------------------------------
def test_unix_datagram_socket(tmp_path: Path) -> None:
    path = tmp_path / "log"
    rx = unix_receiver(path)
    sink = LogSink([LogTarget(f"unix://{path}", facility="local3")], tag="haproxy", pid=20306, clock=ManualClock())
    sink.log_record(rr_record(), format_httplog)
    sink.flush()
    assert rx.recv(65535) == f"<158>Nov 24 15:03:14 haproxy[20306]: {RR_LINE}\n".encode()
    sink.close()
    rx.close()


def test_missing_unix_socket_is_counted_then_retried(tmp_path: Path) -> None:
    path = tmp_path / "later"
    clock = ManualClock()
    sink = LogSink([LogTarget(f"unix://{path}")], pid=1, clock=clock)
    sink.log_message("lost")
    sink.flush()  # must not raise
    assert sink.dropped == 1 and sink.sent == 0
    rx = unix_receiver(path)
    sink.log_message("too soon")
    sink.flush()
    assert sink.dropped == 2  # no reconnect before RECONNECT_DELAY
    clock.now += RECONNECT_DELAY
    sink.log_message("back")
    sink.flush()
    assert rx.recv(4096).endswith(b": back\n")
    assert sink.dropped == 2 and sink.sent == 1
    sink.close()
    rx.close()


def test_unix_peer_restart_reconnects(tmp_path: Path) -> None:
    path = tmp_path / "dev-log"
    clock = ManualClock()
    rx = unix_receiver(path)
    sink = LogSink([LogTarget(f"unix://{path}")], pid=1, clock=clock)
    sink.log_message("one")
    sink.flush()
    assert rx.recv(4096).endswith(b": one\n")
    rx.close()
    path.unlink()  # syslogd goes away...
    sink.log_message("lost")
    sink.flush()
    assert sink.dropped == 1
    rx = unix_receiver(path)  # ...and comes back with a new socket
    clock.now += RECONNECT_DELAY
    sink.log_message("two")
    sink.flush()
    assert rx.recv(4096).endswith(b": two\n")
    sink.close()
    rx.close()


def test_full_unix_socket_drops_instead_of_blocking(tmp_path: Path) -> None:
    path = tmp_path / "slow"
    rx = unix_receiver(path)  # never read until the end: its queue fills up
    total = 3000
    sink = LogSink([LogTarget(f"unix://{path}")], pid=1, max_pending=total, clock=ManualClock())
    for i in range(total):
        sink.log_message(f"line {i}")
    sink.flush()  # would hang here if sends could block
    assert sink.dropped > 0
    assert sink.sent + sink.dropped == total
    rx.setblocking(False)
    received = 0
    try:
        while True:
            rx.recv(4096)
            received += 1
    except BlockingIOError:
        pass
    assert received == sink.sent
    sink.close()
    rx.close()


# --- stderr -------------------------------------------------------------------
def test_stderr_gets_the_plain_line(capsys: pytest.CaptureFixture[str]) -> None:
    sink = LogSink([LogTarget("stderr")], clock=ManualClock())
    sink.log_record(rr_record(), format_httplog)
    sink.log_message("Server be/s1 is UP", "notice")
    sink.flush()
    assert capsys.readouterr().err == f"{RR_LINE}\nServer be/s1 is UP\n"
    sink.close()


# --- the queue ------------------------------------------------------------------
def test_queue_overflow_is_dropped_and_counted(capsys: pytest.CaptureFixture[str]) -> None:
    sink = LogSink([LogTarget("stderr")], max_pending=3, clock=ManualClock())
    for i in range(5):
        sink.log_message(f"m{i}")
    assert sink.pending == 3 and sink.dropped == 2
    sink.flush()
    assert capsys.readouterr().err == "m0\nm1\nm2\n"
    sink.log_message("m5")  # room again after the flush
    sink.flush()
    assert capsys.readouterr().err == "m5\n"
    assert sink.dropped == 2
    sink.close()


def test_formatter_error_loses_only_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    def broken(rec: RequestRecord) -> str:
        raise RuntimeError("bug")

    sink = LogSink([LogTarget("stderr")], clock=ManualClock())
    sink.log_record(rr_record(), broken)
    sink.log_message("after")
    sink.flush()
    err = capsys.readouterr().err
    assert "RuntimeError: bug" in err and err.endswith("after\n")
    assert sink.dropped == 1
    sink.close()


def test_close_flushes_then_drops(capsys: pytest.CaptureFixture[str]) -> None:
    sink = LogSink([LogTarget("stderr")], clock=ManualClock())
    sink.log_message("last words")
    sink.close()
    assert capsys.readouterr().err == "last words\n"
    sink.log_message("too late")
    sink.flush()
    assert capsys.readouterr().err == "" and sink.dropped == 1
    sink.close()  # idempotent


def test_no_targets_discards_silently() -> None:
    sink = LogSink([])
    sink.log_record(rr_record(), format_httplog)
    sink.flush()
    assert sink.dropped == 0 and sink.pending == 0
    sink.close()


def test_bad_names_rejected_early() -> None:
    with pytest.raises(ValueError):
        LogSink([LogTarget("stderr", facility="local8")])
    with pytest.raises(ValueError):
        LogSink([LogTarget("stderr", level="loud")])
    sink = LogSink([LogTarget("stderr")])
    with pytest.raises(ValueError):
        sink.log_message("x", "verbose")
    with pytest.raises(ValueError):
        sink.log_record(rr_record(), format_httplog, severity="verbose")
    sink.close()


# --- targets --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("udp://192.0.2.14:514", ("udp", ("192.0.2.14", 514))),
        ("udp://127.0.0.1", ("udp", ("127.0.0.1", 514))),
        ("udp://[::1]:5514", ("udp", ("::1", 5514))),
        ("udp://[::1]", ("udp", ("::1", 514))),
        ("udp://logs.example:1514", ("udp", ("logs.example", 1514))),
        ("111.112.113.114", ("udp", ("111.112.113.114", 514))),
        ("unix:///dev/log", ("unix", "/dev/log")),
        ("/dev/log", ("unix", "/dev/log")),
        ("stderr", ("stderr", None)),
    ],
)
def test_parse_target(text: str, parsed: tuple[str, object]) -> None:
    assert parse_target(text) == parsed


@pytest.mark.parametrize(
    "text", ["", "tcp://1.2.3.4:514", "udp://", "udp://1.2.3.4:0", "udp://1.2.3.4:x", "udp://[::1", "unix://"]
)
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_target(text)
