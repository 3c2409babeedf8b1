"""TLS end to end: a real gproxy terminating TLS (stunnel's job in the seed)
with self-signed certificates made here by openssl, seen by Python's ssl
module as a browser would see it; a server reached over TLS (stunnel wraps
a demo backend); the stats socket counting failed handshakes."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    REPO,
    BackendProcess,
    GproxyProcess,
    UdpLogReceiver,
    free_port,
    parse_response,
    recv_all,
)
from tls_harness import IO_TIMEOUT, Stunnel, make_cert, show_stat, wait_stats_socket  # noqa: E402

CLIENT_TIMEOUT = "2s"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("tls")
    return {"localhost": make_cert(directory, "localhost", "localhost"),
            "other": make_cert(directory, "other", "other.test"),
            "backend": make_cert(directory, "backend", "backend.test")}


def client_context(**settings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for key, value in settings.items():
            if key == "alpn":
                context.set_alpn_protocols(value)
            elif key == "ciphers":
                context.set_ciphers(value)
            else:
                setattr(context, key, value)
    return context


def tls_connect(port: int, server_name: str | None = "localhost", context: ssl.SSLContext | None = None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    return (context or client_context(alpn=["http/1.1"])).wrap_socket(raw, server_hostname=server_name)


def request(sock, path: str, host: str = "localhost", close: bool = True) -> tuple[int, dict, bytes]:
    connection = "close" if close else "keep-alive"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: {connection}\r\n\r\n".encode())
    if close:
        return parse_response(recv_all(sock))
    return read_one_response(sock)


def read_one_response(sock) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    status, headers, body = parse_response(data)
    length = int(headers["content-length"][0])
    while len(body) < length:
        body += sock.recv(65536)
    return status, headers, body


def peer_cn(sock: ssl.SSLSocket) -> str:
    pem = ssl.DER_cert_to_PEM_cert(sock.getpeercert(binary_form=True))
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, capture_output=True,
                             text=True, check=True).stdout
    return subject.strip().rsplit("=", 1)[-1].strip()


@pytest.fixture(scope="module")
def site(tmp_path_factory, certs):
    """One gproxy for the whole module (each test looks at deltas): an http
    listener (redirect), a TLS listener (two certificates, ALPN, HSTS), a
    TCP-mode TLS listener, and frontends whose server speaks TLS (stunnel)."""
    workdir = tmp_path_factory.mktemp("site")
    syslog = UdpLogReceiver()
    app = BackendProcess("app").start()
    secure_app = BackendProcess("secure").start()
    tunnel = Stunnel(workdir, certs["backend"], secure_app.port)
    ports = {name: free_port() for name in ("http", "https", "tcps", "to_tls", "to_tls_bad")}
    stats_path = str(workdir / "admin.sock")
    backend_server = {"name": "s1", "address": f"127.0.0.1:{tunnel.port}", "ssl": True,
                      "ca_file": str(certs["backend"]), "sni": "backend.test"}
    config = {
        "global": {"maxconn": 500, "stats_socket": {"path": stats_path, "level": "admin"},
                   "log": [{"target": syslog.target, "facility": "local0"}]},
        "defaults": {"mode": "http", "log": "global", "httplog": True,
                     "timeout": {"connect": "2s", "client": CLIENT_TIMEOUT, "server": "5s"}},
        "frontend": {
            "www": {"bind": [f"127.0.0.1:{ports['http']}",
                             {"address": f"127.0.0.1:{ports['https']}", "ssl": True, "alpn": ["http/1.1"],
                              "crt": [str(certs["localhost"]), str(certs["other"])]}],
                    "redirect_to_https": True, "hsts": "365d", "forwardfor": True, "default_backend": "app"},
            "to_tls": {"bind": [f"127.0.0.1:{ports['to_tls']}"], "default_backend": "secure"},
            "to_tls_bad": {"bind": [f"127.0.0.1:{ports['to_tls_bad']}"], "default_backend": "secure_bad"},
        },
        "listen": {"tcps": {"mode": "tcp", "tcplog": True, "httplog": False,
                            "bind": [{"address": f"127.0.0.1:{ports['tcps']}", "ssl": True,
                                      "crt": str(certs["localhost"])}],
                            "server": [{"name": "a", "address": app.address}]}},
        "backend": {
            "app": {"server": [{"name": "a", "address": app.address}]},
            # Checked through TLS too (HAProxy does so for a server with `ssl`).
            "secure": {"httpchk": True, "server": [{**backend_server, "check": True, "inter": "200ms"}]},
            # The CA is not the server's: verification fails, the request gets 503.
            "secure_bad": {"retries": 0, "server": [{**backend_server, "ca_file": str(certs["other"])}]},
        },
    }
    proxy = GproxyProcess(config, workdir)
    try:
        proxy.start(list(ports.values()))
        wait_stats_socket(stats_path)
        yield {"ports": ports, "stats": stats_path, "app": app, "secure_app": secure_app, "proxy": proxy,
               "syslog": syslog}
    finally:
        proxy.stop()
        tunnel.stop()
        app.stop()
        secure_app.stop()
        syslog.close()


def test_tls_termination_alpn_hsts_and_keep_alive(site) -> None:
    with tls_connect(site["ports"]["https"]) as sock:
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        assert sock.selected_alpn_protocol() == "http/1.1"
        assert peer_cn(sock) == "localhost"
        for _ in range(3):  # keep-alive over one TLS connection
            status, headers, body = request(sock, "/echo", close=False)
            assert status == 200
            assert headers["strict-transport-security"] == ["max-age=31536000"]
            assert headers["x-backend"] == ["app"]
        status, headers, body = request(sock, "/", close=True)
        assert body == b"hello from app\n"


def test_sni_chooses_the_certificate(site) -> None:
    for name, expected in (("other.test", "other.test"), ("localhost", "localhost"), (None, "localhost")):
        with tls_connect(site["ports"]["https"], server_name=name) as sock:
            assert peer_cn(sock) == expected, name


def test_tls11_is_refused_and_counted(site) -> None:
    before = int(show_stat(site["stats"])[("www", "FRONTEND")]["ssl_failed_handshake"])
    old = client_context(minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1,
                         ciphers="DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError):
        tls_connect(site["ports"]["https"], context=old)
    after = int(show_stat(site["stats"])[("www", "FRONTEND")]["ssl_failed_handshake"])
    assert after == before + 1


def test_plain_http_to_the_tls_port_is_closed_counted_and_logged(site) -> None:
    requests_before = site["app"].stats()["requests"]
    stat = show_stat(site["stats"])[("www", "FRONTEND")]
    with socket.create_connection(("127.0.0.1", site["ports"]["https"]), timeout=IO_TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = recv_all(sock)
    assert not answer.startswith(b"HTTP/")  # closed (at most a TLS alert), no HTTP answer
    after = show_stat(site["stats"])[("www", "FRONTEND")]
    assert int(after["ssl_failed_handshake"]) == int(stat["ssl_failed_handshake"]) + 1
    assert int(after["req_tot"]) == int(stat["req_tot"])  # the request was never read as HTTP
    line = site["syslog"].wait_for(r"www/2: SSL handshake failure \(http request\)")
    assert "127.0.0.1:" in line
    assert site["app"].stats()["requests"] == requests_before + 1  # only this stats request


def test_stats_count_tls_sessions(site) -> None:
    before = int(show_stat(site["stats"])[("www", "FRONTEND")]["ssl_sess"])
    with tls_connect(site["ports"]["https"]) as sock:
        assert request(sock, "/")[0] == 200
    assert int(show_stat(site["stats"])[("www", "FRONTEND")]["ssl_sess"]) == before + 1


def test_redirect_to_https_on_the_plain_listener(site) -> None:
    with socket.create_connection(("127.0.0.1", site["ports"]["http"]), timeout=IO_TIMEOUT) as sock:
        status, headers, body = request(sock, "/path/page?q=1", host=f"portal.example:{site['ports']['http']}",
                                        close=False)
        assert status == 301
        assert headers["location"] == ["https://portal.example/path/page?q=1"]
        assert "strict-transport-security" not in headers
        # The connection stays usable for the next request.
        status, headers, _ = request(sock, "/other", host="portal.example")
        assert (status, headers["location"]) == (301, ["https://portal.example/other"])
    site["syslog"].wait_for(r'www www/<NOSRV> .* 301 .* LR-- .*"GET /path/page\?q=1 HTTP/1.1"')


def test_tls_log_marks_the_frontend(site) -> None:
    with tls_connect(site["ports"]["https"]) as sock:
        request(sock, "/marked")
    site["syslog"].wait_for(r'www~ app/a .* 200 .*"GET /marked HTTP/1.1"')


def test_tcp_mode_over_tls(site) -> None:
    with tls_connect(site["ports"]["tcps"], context=client_context()) as sock:
        status, headers, body = request(sock, "/")
    assert (status, body) == (200, b"hello from app\n")


def test_server_side_tls(site) -> None:
    with socket.create_connection(("127.0.0.1", site["ports"]["to_tls"]), timeout=IO_TIMEOUT) as sock:
        status, headers, body = request(sock, "/")
    assert (status, headers["x-backend"], body) == (200, ["secure"], b"hello from secure\n")
    # Kept-alive TLS server connections are reused for the next requests.
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", site["ports"]["to_tls"]), timeout=IO_TIMEOUT) as sock:
            assert request(sock, "/")[0] == 200
    row = show_stat(site["stats"])[("secure", "s1")]
    assert int(row["ssl_sess"]) >= 1 and int(row["hrsp_2xx"]) >= 4


def test_server_certificate_is_verified(site) -> None:
    before = site["secure_app"].stats()["requests"]
    with socket.create_connection(("127.0.0.1", site["ports"]["to_tls_bad"]), timeout=IO_TIMEOUT) as sock:
        status, _, _ = request(sock, "/")
    assert status == 503
    assert int(show_stat(site["stats"])[("secure_bad", "s1")]["econ"]) >= 1
    assert site["secure_app"].stats()["requests"] == before + 1  # only this stats request


def test_a_silent_client_does_not_hold_a_slot(site) -> None:
    """The handshake is bounded by timeout.client: a client that connects
    and says nothing is dropped, and counted as no failure."""
    before = int(show_stat(site["stats"])[("www", "FRONTEND")]["ssl_failed_handshake"])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", site["ports"]["https"]), timeout=IO_TIMEOUT) as sock:
        assert recv_all(sock) == b""
    assert time.monotonic() - started < IO_TIMEOUT
    assert int(show_stat(site["stats"])[("www", "FRONTEND")]["ssl_failed_handshake"]) == before


def test_check_refuses_a_missing_certificate(tmp_path, certs) -> None:
    missing = tmp_path / "nowhere.pem"
    path = tmp_path / "gproxy.toml"
    path.write_text(f"""
[listen.web]
bind = [{{ address = "127.0.0.1:{free_port()}", ssl = true, crt = ["{certs['localhost']}", "{missing}"] }}]
[[listen.web.server]]
name = "a"
address = "127.0.0.1:9"
""")
    result = subprocess.run([sys.executable, "-m", "gproxy", "check", str(path)], capture_output=True, text=True,
                            cwd=REPO, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"listen.web.bind[0].crt: cannot read the certificate {missing}: No such file or directory")
    run = subprocess.run([sys.executable, "-m", "gproxy", "run", str(path), "--foreground"], capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    assert run.returncode == 1 and str(missing) in run.stderr and "Traceback" not in run.stderr


def test_health_checks_go_through_tls(site) -> None:
    deadline = time.monotonic() + IO_TIMEOUT
    row = show_stat(site["stats"])[("secure", "s1")]
    while row["check_status"] != "L7OK" and time.monotonic() < deadline:
        time.sleep(0.05)
        row = show_stat(site["stats"])[("secure", "s1")]
    assert (row["status"], row["check_status"]) == ("UP", "L7OK")


def wait_until(predicate, timeout: float = IO_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_reload_rereads_certificates_and_refuses_broken_ones(tmp_path, certs) -> None:
    """A renewed certificate is served after a reload; a reload naming a
    missing certificate or a key that does not match is refused with the
    reason, and the old certificate keeps being served."""
    import signal

    app = BackendProcess("app").start()
    live = tmp_path / "live.pem"
    live.write_bytes(certs["localhost"].read_bytes())
    port = free_port()
    config_path = tmp_path / "gproxy.toml"

    def write_config(crt: Path) -> str:
        return f"""
[defaults]
timeout = {{ connect = "2s", client = "{CLIENT_TIMEOUT}", server = "5s" }}
[listen.web]
bind = [{{ address = "127.0.0.1:{port}", ssl = true, crt = "{crt}" }}]
[[listen.web.server]]
name = "a"
address = "{app.address}"
"""

    proxy = GproxyProcess(write_config(live), tmp_path)
    try:
        proxy.start([port])

        def served_cn() -> str:
            with tls_connect(port) as sock:
                cn = peer_cn(sock)
                assert request(sock, "/")[0] == 200
                return cn

        assert wait_until(lambda: served_cn() == "localhost")
        live.write_bytes(certs["other"].read_bytes())  # renewed in place
        proxy.signal(signal.SIGHUP)
        assert wait_until(lambda: served_cn() == "other.test")

        missing = tmp_path / "missing.pem"
        config_path = proxy.path
        config_path.write_text(write_config(missing))
        proxy.signal(signal.SIGHUP)
        assert wait_until(lambda: "reload refused" in proxy.stderr())
        assert f"cannot read the certificate {missing}" in proxy.stderr()
        assert served_cn() == "other.test"

        mismatched = tmp_path / "mismatched.pem"
        other = certs["other"].read_bytes()
        key = certs["localhost"].read_bytes()
        mismatched.write_bytes(other[:other.index(b"-----BEGIN PRIVATE KEY")]
                               + key[key.index(b"-----BEGIN PRIVATE KEY"):])
        config_path.write_text(write_config(mismatched))
        proxy.signal(signal.SIGHUP)
        assert wait_until(lambda: "the private key does not match the certificate" in proxy.stderr())
        assert served_cn() == "other.test"
    finally:
        proxy.stop()
        app.stop()


def test_resumed_sessions_are_counted(site) -> None:
    context = client_context()
    with tls_connect(site["ports"]["https"], context=context) as sock:
        assert request(sock, "/", close=False)[0] == 200  # the session ticket arrives with the data
        session = sock.session
    before = int(show_stat(site["stats"])[("www", "FRONTEND")]["ssl_reused_sess"])
    raw = socket.create_connection(("127.0.0.1", site["ports"]["https"]), timeout=IO_TIMEOUT)
    with context.wrap_socket(raw, server_hostname="localhost", session=session) as sock:
        assert sock.session_reused
        assert request(sock, "/")[0] == 200
    assert int(show_stat(site["stats"])[("www", "FRONTEND")]["ssl_reused_sess"]) == before + 1
