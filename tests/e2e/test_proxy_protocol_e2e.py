"""PROXY protocol end to end: clients that send v1 and v2 headers (built by
hand here, byte by byte from proxy-protocol.txt) get their claimed address in
X-Forwarded-For and in the log; garbage closes the connection before anything
reaches a server; servers with `send_proxy` receive the header (a recording
raw socket server); stunnel in front (`protocol = proxy`, the seed's TLS
terminator) keeps the client's address."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import struct
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    BackendProcess,
    GproxyProcess,
    UdpLogReceiver,
    free_port,
    parse_response,
    recv_all,
    wait_port,
)
from tls_harness import IO_TIMEOUT, Stunnel, make_cert, show_stat, wait_stats_socket  # noqa: E402

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
REQUEST = b"GET /echo HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n"
RECORDER_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
REQUEST_LINE = re.compile(rb"[A-Z]+ \S+ HTTP/1\.[01]\r\n")


def v1(source: str, sport: int, destination: str, dport: int) -> bytes:
    family = "TCP6" if ":" in source else "TCP4"
    return f"PROXY {family} {source} {destination} {sport} {dport}\r\n".encode()


def v2(source: str, sport: int, destination: str, dport: int, command: int = 0x1) -> bytes:
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(destination)
    family = 0x11 if src.version == 4 else 0x21  # AF_INET or AF_INET6, over STREAM
    body = src.packed + dst.packed + struct.pack("!HH", sport, dport)
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


class Recorder:
    """A raw socket server that keeps every byte each connection sent before
    its request head ended, and answers a fixed 200."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(IO_TIMEOUT)
                data = b""
                while not (REQUEST_LINE.search(data) and data.endswith(b"\r\n\r\n")):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.received.append(data)
                conn.sendall(RECORDER_ANSWER)

    def wait(self, count: int) -> list[bytes]:
        deadline = time.monotonic() + IO_TIMEOUT
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.received[:count]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pp")
    cert = make_cert(workdir, "localhost", "localhost")
    syslog = UdpLogReceiver()
    app = BackendProcess("app").start()
    other = BackendProcess("other").start()
    recorders = {name: Recorder() for name in ("v1", "v2", "tcp", "checked_v1", "checked_v2")}
    ports = {name: free_port() for name in ("pp", "pps", "send1", "send2", "tcp", "behind", "hashed")}
    stats_path = str(workdir / "admin.sock")

    def recorder_server(name: str, version: str) -> list[dict]:
        return [{"name": "r", "address": f"127.0.0.1:{recorders[name].port}", "send_proxy": version}]

    config = {
        "global": {"maxconn": 500, "stats_socket": {"path": stats_path, "level": "admin"},
                   "log": [{"target": syslog.target, "facility": "local0"}]},
        "defaults": {"mode": "http", "log": "global", "httplog": True, "forwardfor": True,
                     "timeout": {"connect": "2s", "client": "2s", "server": "5s"}},
        "listen": {
            "pp": {"bind": [{"address": f"127.0.0.1:{ports['pp']}", "accept_proxy": True}],
                   "server": [{"name": "a", "address": app.address}]},
            "pps": {"bind": [{"address": f"127.0.0.1:{ports['pps']}", "accept_proxy": True, "ssl": True,
                              "crt": str(cert)}],
                    "server": [{"name": "a", "address": app.address}]},
            "hashed": {"bind": [{"address": f"127.0.0.1:{ports['hashed']}", "accept_proxy": True}],
                       "balance": "source",
                       "server": [{"name": "a", "address": app.address}, {"name": "b", "address": other.address}]},
            "behind": {"bind": [{"address": f"127.0.0.1:{ports['behind']}", "accept_proxy": True}],
                       "server": [{"name": "a", "address": app.address}]},
            "send1": {"bind": [{"address": f"127.0.0.1:{ports['send1']}", "accept_proxy": True}],
                      "server": recorder_server("v1", "v1")},
            "send2": {"bind": [f"127.0.0.1:{ports['send2']}"], "server": recorder_server("v2", "v2")},
            "tcp": {"mode": "tcp", "tcplog": True, "httplog": False, "forwardfor": False,
                    "bind": [f"127.0.0.1:{ports['tcp']}"], "server": recorder_server("tcp", "v2")},
        },
        # Health checks of servers that expect a PROXY header send one too.
        "backend": {name: {"httpchk": True, "server": [{**recorder_server(name, version)[0], "check": True,
                                                          "inter": "200ms"}]}
                    for name, version in (("checked_v1", "v1"), ("checked_v2", "v2"))},
    }
    proxy = GproxyProcess(config, workdir)
    # stunnel in front, as in the seed: TLS from the client, a PROXY v1 header to gproxy.
    tunnel = Stunnel(workdir, cert, ports["behind"], "protocol = proxy\n")
    try:
        proxy.start(list(ports.values()))
        wait_stats_socket(stats_path)
        yield {"ports": ports, "app": app, "recorders": recorders, "syslog": syslog, "stats": stats_path,
               "stunnel": tunnel}
    finally:
        tunnel.stop()
        proxy.stop()
        app.stop()
        other.stop()
        for recorder in recorders.values():
            recorder.close()
        syslog.close()


def exchange(port: int, *chunks: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        for index, chunk in enumerate(chunks):
            if index:
                time.sleep(0.02)  # separate TCP segments
            sock.sendall(chunk)
        return recv_all(sock)


def echoed_xff(answer: bytes) -> list[str]:
    status, _, body = parse_response(answer)
    assert status == 200
    return [value for name, value in json.loads(body)["headers"] if name.lower() == "x-forwarded-for"]


def test_v1_header_gives_the_client_address(site) -> None:
    port = site["ports"]["pp"]
    answer = exchange(port, v1("203.0.113.9", 40000, "127.0.0.1", port) + REQUEST)
    assert echoed_xff(answer) == ["203.0.113.9"]
    site["syslog"].wait_for(r"203\.0\.113\.9:40000 \[.*\] pp pp/a .* 200 ")


def test_v2_header_with_ipv6_in_pieces(site) -> None:
    port = site["ports"]["pp"]
    header = v2("2001:db8::9", 40001, "2001:db8::1", port)
    answer = exchange(port, header[:5], header[5:20], header[20:] + REQUEST[:10], REQUEST[10:])
    assert echoed_xff(answer) == ["2001:db8::9"]
    site["syslog"].wait_for(r"2001:db8::9:40001 \[.*\] pp pp/a .* 200 ")


def test_v2_local_keeps_the_connection_address(site) -> None:
    port = site["ports"]["pp"]
    answer = exchange(port, v2("192.0.2.1", 1, "192.0.2.2", 2, command=0x0) + REQUEST)
    assert echoed_xff(answer) == ["127.0.0.1"]


def test_garbage_header_closes_before_any_server(site) -> None:
    port = site["ports"]["pp"]
    requests_before = site["app"].stats()["requests"]
    before = show_stat(site["stats"])[("pp", "FRONTEND")]
    assert exchange(port, REQUEST) == b""
    assert exchange(port, b"PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n" + REQUEST) == b""
    after = show_stat(site["stats"])[("pp", "FRONTEND")]
    assert int(after["ereq"]) == int(before["ereq"]) + 2
    assert int(after["req_tot"]) == int(before["req_tot"])
    assert site["app"].stats()["requests"] == requests_before + 1  # only this stats request
    site["syslog"].wait_for(r"pp/1: Received something which does not look like a PROXY protocol header")
    site["syslog"].wait_for(r"pp/1: Received an invalid PROXY protocol header")


def test_header_then_tls(site) -> None:
    port = site["ports"]["pps"]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as raw:
        raw.sendall(v1("198.51.100.20", 5000, "127.0.0.1", port))
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(REQUEST)
            answer = recv_all(sock)
    assert echoed_xff(answer) == ["198.51.100.20"]
    site["syslog"].wait_for(r"198\.51\.100\.20:5000 \[.*\] pps~ pps/a .* 200 ")


def test_stunnel_in_front_keeps_the_client_address(site) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", site["stunnel"].port), timeout=IO_TIMEOUT) as raw:
        client_port = raw.getsockname()[1]
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(REQUEST)
            answer = recv_all(sock)
    assert echoed_xff(answer) == ["127.0.0.1"]
    # The client's own port, not the one stunnel connected from: the header was read.
    site["syslog"].wait_for(rf"127\.0\.0\.1:{client_port} \[.*\] behind behind/a .* 200 ")


def test_send_proxy_v1_carries_the_claimed_client(site) -> None:
    port = site["ports"]["send1"]
    recorder = site["recorders"]["v1"]
    done = len(recorder.received)
    for _ in range(2):  # each request gets its own connection and header
        answer = exchange(port, v1("198.51.100.4", 5555, "127.0.0.1", port) + REQUEST)
        assert parse_response(answer)[2] == b"ok"
    for received in recorder.wait(done + 2)[done:]:
        header, _, rest = received.partition(b"\r\n")
        assert header == f"PROXY TCP4 198.51.100.4 127.0.0.1 5555 {port}".encode()
        assert rest.startswith(b"GET /echo HTTP/1.1\r\n")
        assert b"X-Forwarded-For: 198.51.100.4\r\n" in rest


def test_send_proxy_v2_in_http_and_tcp_modes(site) -> None:
    for name in ("send2", "tcp"):
        port = site["ports"][name]
        recorder = site["recorders"]["v2" if name == "send2" else "tcp"]
        done = len(recorder.received)
        with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
            client_port = sock.getsockname()[1]
            sock.sendall(REQUEST)
            assert parse_response(recv_all(sock))[2] == b"ok"
        received = recorder.wait(done + 1)[done]
        assert received[:12] == V2_SIGNATURE
        assert received[12:16] == bytes([0x21, 0x11]) + struct.pack("!H", 12)
        assert received[16:28] == bytes([127, 0, 0, 1, 127, 0, 0, 1]) + struct.pack("!HH", client_port, port)
        assert received[28:].startswith(b"GET /echo HTTP/1.1\r\n")


def test_silent_connections_are_not_errors(site) -> None:
    before = show_stat(site["stats"])[("pp", "FRONTEND")]
    assert exchange(site["ports"]["pp"]) == b""
    wait_port(site["ports"]["pp"])
    assert show_stat(site["stats"])[("pp", "FRONTEND")]["ereq"] == before["ereq"]


def test_health_checks_send_a_proxy_header_too(site) -> None:
    v1_check = site["recorders"]["checked_v1"].wait(1)[0]
    assert v1_check == b"PROXY UNKNOWN\r\nOPTIONS / HTTP/1.0\r\n\r\n"
    v2_check = site["recorders"]["checked_v2"].wait(1)[0]
    assert v2_check == V2_SIGNATURE + b"\x20\x00\x00\x00" + b"OPTIONS / HTTP/1.0\r\n\r\n"  # LOCAL
    for name in ("checked_v1", "checked_v2"):
        deadline = time.monotonic() + IO_TIMEOUT
        while show_stat(site["stats"])[(name, "r")]["status"] != "UP" and time.monotonic() < deadline:
            time.sleep(0.05)
        # A check may be in progress when we look ("* L7OK"): the last result is what counts.
        assert show_stat(site["stats"])[(name, "r")]["check_status"].lstrip("* ") == "L7OK"


def test_source_balancing_hashes_the_claimed_address(site) -> None:
    """Every connection comes from 127.0.0.1: if the balancer hashed that,
    one server would get them all."""
    port = site["ports"]["hashed"]
    chosen: dict[str, set[str]] = {}
    for index in range(1, 9):
        claimed = f"198.51.100.{index}"
        for _ in range(2):
            answer = exchange(port, v1(claimed, 1000 + index, "127.0.0.1", port) + REQUEST)
            status, headers, _ = parse_response(answer)
            assert status == 200
            chosen.setdefault(claimed, set()).update(headers["x-backend"])
    assert all(len(servers) == 1 for servers in chosen.values())  # sticky per claimed client
    assert set().union(*chosen.values()) == {"app", "other"}
