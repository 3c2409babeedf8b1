"""Access-log formatting against lines captured from Debian's haproxy 2.6.12."""

from __future__ import annotations

import calendar
import locale
import os
import time
from collections.abc import Iterator

import pytest

from gproxy import logfmt
from gproxy.logfmt import (
    FACILITIES,
    SEVERITIES,
    RequestRecord,
    clear_date_cache,
    escape_request_line,
    format_httplog,
    format_rfc3164,
    format_tcplog,
    syslog_pri,
    termination_state,
)

# 24/Nov/2026:15:03:14 UTC, the date of the reference captures.
NOV24 = calendar.timegm((2026, 11, 24, 15, 3, 14))


def set_tz(tz: str | None) -> None:
    if tz is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = tz
    time.tzset()
    clear_date_cache()


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    saved = os.environ.get("TZ")
    set_tz("UTC")
    yield
    set_tz(saved)


def rr_record(**changes: object) -> RequestRecord:
    """The record behind haproxy.md's `fe_echo be_rr/e1` line."""
    rec = RequestRecord(
        client_ip="127.0.0.1",
        client_port=52898,
        accept_time=NOV24 + 0.190,
        frontend="fe_echo",
        backend="be_rr",
        server="e1",
        t_request=0,
        t_queue=0,
        t_connect=0,
        t_response=0,
        t_active=0,
        status=200,
        bytes_out=214,
        actconn=1,
        feconn=1,
        beconn=0,
        srv_conn=0,
        retries=0,
        srv_queue=0,
        backend_queue=0,
        request_line="GET /rr HTTP/1.1",
    )
    for name, value in changes.items():
        setattr(rec, name, value)
    return rec


# --- httplog ----------------------------------------------------------------
def test_httplog_matches_reference_line() -> None:
    assert format_httplog(rr_record()) == (
        '127.0.0.1:52898 [24/Nov/2026:15:03:14.190] fe_echo be_rr/e1 0/0/0/0/0 200 214 - - ---- '
        '1/1/0/0/0 0/0 "GET /rr HTTP/1.1"'
    )


def test_httplog_queue_timeout_503() -> None:
    rec = rr_record(
        backend="be_e_queue",
        server=logfmt.NO_SERVER,
        t_queue=3001,
        t_connect=-1,
        t_response=-1,
        t_active=3001,
        status=503,
        bytes_out=217,
        termination=termination_state(logfmt.CAUSE_SERVER_TIMEOUT, logfmt.PHASE_QUEUE),
        actconn=2,
        feconn=2,
        beconn=1,
        srv_queue=0,
        backend_queue=3,
        request_line="GET /q?sleep=1.5 HTTP/1.1",
    )
    line = format_httplog(rec)
    assert line.endswith(
        ' fe_echo be_e_queue/<NOSRV> 0/3001/-1/-1/3001 503 217 - - sQ-- 2/2/1/0/0 0/3 "GET /q?sleep=1.5 HTTP/1.1"'
    )
    assert line.startswith("127.0.0.1:52898 [24/Nov/2026:15:03:14.190] ")


def test_httplog_queued_then_served() -> None:
    rec = rr_record(
        backend="be_e_queue", t_queue=1451, t_response=1502, t_active=2953, bytes_out=223,
        actconn=3, feconn=3, beconn=2, backend_queue=1, request_line="GET /q?sleep=1.5 HTTP/1.1",
    )  # fmt: skip
    assert format_httplog(rec).endswith(
        ' fe_echo be_e_queue/e1 0/1451/0/1502/2953 200 223 - - ---- 3/3/2/0/0 0/1 "GET /q?sleep=1.5 HTTP/1.1"'
    )


def test_httplog_bad_request_as_haproxy_logs_it() -> None:
    # captured: a request line with a control character, rejected by the frontend
    rec = RequestRecord(
        client_ip="127.0.0.1", client_port=51556, accept_time=NOV24 + 0.549, frontend="fe_h",
        backend="fe_h", t_active=0, status=400, termination="PR--", actconn=1, feconn=1,
    )  # fmt: skip
    assert format_httplog(rec) == (
        '127.0.0.1:51556 [24/Nov/2026:15:03:14.549] fe_h fe_h/<NOSRV> -1/-1/-1/-1/0 400 0 - - PR-- '
        '1/1/0/0/0 0/0 "<BADREQ>"'
    )


def test_redispatch_prefixes_retries_with_plus() -> None:
    line = format_httplog(rr_record(retries=1, redispatched=True, termination="--DI"))
    assert " --DI 1/1/0/0/+1 0/0 " in line
    assert " ---- 1/1/0/0/3 0/0 " in format_httplog(rr_record(retries=3))


def test_ipv6_client_printed_without_brackets() -> None:
    assert format_httplog(rr_record(client_ip="::1", client_port=40000)).startswith("::1:40000 [")


def test_stats_and_cookies_fields() -> None:
    line = format_httplog(rr_record(server=logfmt.STATS_SERVER, req_cookie="SRV=a", resp_cookie="-"))
    assert " fe_echo be_rr/<STATS> " in line
    assert " 200 214 SRV=a - ---- " in line


def test_request_line_escaped_like_haproxy() -> None:
    # captured from haproxy 2.6.12: quotes become #22
    assert escape_request_line('GET /a%20b?x="y" HTTP/1.1') == "GET /a%20b?x=#22y#22 HTTP/1.1"
    assert escape_request_line("GET /p#x HTTP/1.1") == "GET /p#23x HTTP/1.1"
    assert escape_request_line("a\tb\r\n\x7f") == "a#09b#0D#0A#7F"
    assert escape_request_line("/caf\xe9") == "/caf#E9"  # latin-1 decoded byte
    assert escape_request_line("/caf\udce9") == "/caf#E9"  # surrogateescape decoded byte
    assert escape_request_line("/\u20ac") == "/#E2#82#AC"  # beyond latin-1: its UTF-8 bytes
    assert escape_request_line("{|} ok") == "{|} ok"  # only headers escape {|}
    line = format_httplog(rr_record(request_line='GET /"x" HTTP/1.1'))
    assert line.endswith(' "GET /#22x#22 HTTP/1.1"')
    assert line.count('"') == 2


def test_milliseconds_truncate_without_float_noise() -> None:
    for frac, text in [(0.0, ".000"), (0.001, ".001"), (0.19, ".190"), (0.999, ".999"), (0.9999, ".999")]:
        assert f"15:03:14{text}]" in format_httplog(rr_record(accept_time=NOV24 + frac))
    # every millisecond of a second prints as itself
    for ms in range(1000):
        assert f":14.{ms:03d}]" in format_httplog(rr_record(accept_time=NOV24 + ms / 1000))


def test_accept_date_is_local_time() -> None:
    set_tz("CET-1CEST,M3.5.0,M10.5.0/3")  # POSIX rule: no tz database needed
    assert "[24/Nov/2026:16:03:14.190]" in format_httplog(rr_record())
    summer = calendar.timegm((2026, 7, 1, 23, 30, 0))
    assert "[02/Jul/2026:01:30:00.000]" in format_httplog(rr_record(accept_time=summer))


def test_accept_date_cache_follows_the_millisecond_and_the_time_zone() -> None:
    """The last printed date is reused only for the same millisecond, and
    clear_date_cache() forgets it (a time zone change)."""
    dates = [format_httplog(rr_record(accept_time=NOV24 + t)).split("[")[1].split("]")[0]
             for t in (0.190, 0.1901, 0.191, 0.190, 1.0, 0.999)]  # fmt: skip
    assert dates == [
        "24/Nov/2026:15:03:14.190", "24/Nov/2026:15:03:14.190", "24/Nov/2026:15:03:14.191",
        "24/Nov/2026:15:03:14.190", "24/Nov/2026:15:03:15.000", "24/Nov/2026:15:03:14.999",
    ]  # fmt: skip
    set_tz("CET-1CEST,M3.5.0,M10.5.0/3")
    assert "[24/Nov/2026:16:03:14.999]" in format_httplog(rr_record(accept_time=NOV24 + 0.999))


def test_month_names_are_english_whatever_the_locale() -> None:
    saved = locale.setlocale(locale.LC_TIME)
    for name in ("fr_FR.UTF-8", "de_DE.UTF-8", "C.UTF-8"):
        try:
            locale.setlocale(locale.LC_TIME, name)
            break
        except locale.Error:
            continue
    try:
        clear_date_cache()
        for month, abbr in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1):  # fmt: skip
            t = calendar.timegm((2026, month, 3, 0, 0, 0))
            assert f"[03/{abbr}/2026:00:00:00.000]" in format_httplog(rr_record(accept_time=t))
            assert format_rfc3164("m", "user", "info", "t", 1, t).startswith(f"<14>{abbr}  3 ".encode())
    finally:
        locale.setlocale(locale.LC_TIME, saved)


# --- tcplog -----------------------------------------------------------------
def test_tcplog_matches_capture() -> None:
    # captured: `127.0.0.1:46750 [...] fe_t be_t/s1 1/0/1 520 -- 1/1/0/0/0 0/0`
    rec = RequestRecord(
        client_ip="127.0.0.1", client_port=46750, accept_time=NOV24 + 0.554, frontend="fe_t",
        backend="be_t", server="s1", t_queue=1, t_connect=0, t_active=1, bytes_out=520,
        actconn=1, feconn=1, request_line="ignored",
    )  # fmt: skip
    assert format_tcplog(rec) == "127.0.0.1:46750 [24/Nov/2026:15:03:14.554] fe_t be_t/s1 1/0/1 520 -- 1/1/0/0/0 0/0"


def test_tcplog_uses_two_char_state_and_redispatch() -> None:
    rec = rr_record(termination="sC--", retries=2, redispatched=True, t_connect=-1, status=-1)
    assert " 0/-1/0 214 sC 1/1/0/0/+2 0/0" in format_tcplog(rec)
    assert '"' not in format_tcplog(rec)


# --- termination state ------------------------------------------------------
def test_termination_state_builds_four_chars() -> None:
    assert termination_state(logfmt.CAUSE_NONE, logfmt.PHASE_NONE) == "----"
    assert termination_state("s", "Q") == "sQ--"
    assert termination_state(logfmt.CAUSE_CLIENT_ABORT, logfmt.PHASE_REQUEST) == "CR--"
    assert (
        termination_state(
            logfmt.CAUSE_NONE, logfmt.PHASE_NONE, logfmt.REQ_COOKIE_VALID, logfmt.RESP_COOKIE_NONE
        )
        == "--VN"
    )
    assert termination_state("-", "-", logfmt.REQ_COOKIE_DOWN, logfmt.RESP_COOKIE_INSERTED) == "--DI"
    assert termination_state("K", "D")[:2] == "KD"


@pytest.mark.parametrize("args", [("X", "-"), ("-", "Z"), ("-", "-", "R"), ("-", "-", "-", "V"), ("", "-")])
def test_termination_state_rejects_unknown_codes(args: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        termination_state(*args)


def test_cause_and_phase_constants_are_the_documented_letters() -> None:
    assert logfmt.CAUSES == set("CSPRIDKcsLU-")
    assert set("RQCHDLT-") <= logfmt.PHASES
    assert logfmt.REQ_COOKIE_FLAGS == set("NIDVEOU-")
    assert logfmt.RESP_COOKIE_FLAGS == set("NIUPRD-")


# --- RFC 3164 ---------------------------------------------------------------
def test_rfc3164_matches_captured_datagram() -> None:
    data = format_rfc3164(format_httplog(rr_record()), "local0", "info", "haproxy", 20306, NOV24 + 0.5)
    assert data == (
        b'<134>Nov 24 15:03:14 haproxy[20306]: 127.0.0.1:52898 [24/Nov/2026:15:03:14.190] fe_echo '
        b'be_rr/e1 0/0/0/0/0 200 214 - - ---- 1/1/0/0/0 0/0 "GET /rr HTTP/1.1"\n'
    )


def test_pri_is_facility_times_eight_plus_severity() -> None:
    assert syslog_pri("local3", "info") == 158
    assert syslog_pri("local0", "info") == 134
    assert syslog_pri("kern", "emerg") == 0
    assert syslog_pri("local7", "debug") == 191
    assert format_rfc3164("x", "local3", "info", "t", 1, NOV24).startswith(b"<158>")
    assert format_rfc3164("x", "daemon", "alert", "t", 1, NOV24).startswith(b"<25>")
    assert len(FACILITIES) == 24 and len(SEVERITIES) == 8


def test_rfc3164_pads_the_day_with_a_space() -> None:
    nov4 = calendar.timegm((2026, 11, 4, 9, 5, 7))
    assert format_rfc3164("hi", "user", "notice", "gproxy", 42, nov4) == b"<13>Nov  4 09:05:07 gproxy[42]: hi\n"
    nov14 = calendar.timegm((2026, 11, 14, 9, 5, 7))
    assert format_rfc3164("hi", "user", "notice", "gproxy", 42, nov14).startswith(b"<13>Nov 14 09:05:07 ")


def test_rfc3164_hostname_only_when_given() -> None:
    data = format_rfc3164("hi", "local0", "info", "gproxy", 7, NOV24, hostname="esup-proxy-1")
    assert data == b"<134>Nov 24 15:03:14 esup-proxy-1 gproxy[7]: hi\n"


def test_rfc3164_rejects_unknown_names() -> None:
    with pytest.raises(ValueError):
        format_rfc3164("x", "local9", "info", "t", 1, NOV24)
    with pytest.raises(ValueError):
        format_rfc3164("x", "local0", "verbose", "t", 1, NOV24)


def test_rfc3164_encodes_any_text() -> None:
    assert format_rfc3164("é \udcff", "user", "info", "t", 1, NOV24).endswith("é \\udcff\n".encode())


# --- the record -------------------------------------------------------------
def test_record_defaults_mean_not_reached() -> None:
    rec = RequestRecord()
    assert (rec.t_request, rec.t_queue, rec.t_connect, rec.t_response, rec.t_active) == (-1,) * 5
    assert rec.status == -1 and rec.server == "<NOSRV>" and rec.request_line == "<BADREQ>"
    assert rec.termination == "----" and rec.req_cookie == "-" and rec.resp_cookie == "-"
    assert rec.bytes_in == 0 and rec.redispatched is False


def test_record_has_slots_only() -> None:
    rec = RequestRecord()
    assert not hasattr(rec, "__dict__")
    with pytest.raises(AttributeError):
        rec.typo = 1  # type: ignore[attr-defined]
    rec.status = 204
    assert rec == rr_record(**{n: getattr(rec, n) for n in RequestRecord.__slots__})
    assert rec != RequestRecord()
    assert "status=204" in repr(rec)
