"""gproxy.tls and the TLS/PROXY keys of the configuration: bind tables and
server options are validated with full key paths; certificates and keys are
loaded (or refused with the file named); handshakes run in memory over
socket pairs: TLS 1.2 minimum, ALPN, certificates chosen by SNI, plain HTTP
refused; the PROXY header is consumed from a socket without eating what follows."""

from __future__ import annotations

import json
import shutil
import socket as stdsocket
import ssl as stdssl
import subprocess
import warnings
from pathlib import Path

import gevent
import pytest
from gevent import socket
from gevent import ssl

from gproxy.config.dump import dump
from gproxy.config.loader import load_string
from gproxy.config.model import Address, BindConfig, ServerConfig
from gproxy.errors import ConfigError
from gproxy.listeners import Listener, PreambleError, accept_preamble, matching_listener, read_proxy_header
from gproxy.proxy_protocol import build_v1, build_v2
from gproxy.tls import (
    HANDSHAKE_CLOSED,
    HANDSHAKE_FAILURE,
    HandshakeError,
    SniSelector,
    accept,
    bind_context,
    build_contexts,
    load_certificate,
    server_context,
)

HANDSHAKE_TIMEOUT_S = 5.0


def make_cert(directory: Path, name: str, cn: str, sans: tuple[str, ...] = (), split_key: bool = False) -> Path:
    """A self-signed certificate; combined PEM (HAProxy style) unless split_key."""
    cert, key = directory / f"{name}.crt.pem", directory / f"{name}.key.pem"
    extra = ["-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in sans)] if sans else []
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-subj", f"/CN={cn}", "-days", "1", "-keyout", str(key), "-out", str(cert), *extra],
                   check=True, capture_output=True)
    if split_key:
        pem = directory / f"{name}.pem"
        pem.write_bytes(cert.read_bytes())
        Path(str(pem) + ".key").write_bytes(key.read_bytes())
        return pem
    pem = directory / f"{name}.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    return pem


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("certs")
    return {
        "default": make_cert(directory, "default", "localhost"),
        "a": make_cert(directory, "a", "a.test", ("a.test", "*.wild.test")),
        "split": make_cert(directory, "split", "split.test", split_key=True),
        "other": make_cert(directory, "other", "other.test"),
    }


def frontend_config(bind: str, extra: str = "", mode: str = "http") -> str:
    return f"""
[defaults]
mode = "{mode}"
[listen.web]
bind = [{bind}]
{extra}
[[listen.web.server]]
name = "a"
address = "127.0.0.1:8080"
"""


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_string(text)
    return info.value.problems


# --- configuration ------------------------------------------------------------------------


def test_bind_tables_and_plain_addresses_mix(certs) -> None:
    config = load_string(frontend_config(
        f'"127.0.0.1:80", {{ address = "*:443", ssl = true, crt = ["{certs["default"]}", "{certs["a"]}"], '
        'alpn = ["http/1.1"], accept_proxy = true }', 'hsts = "365d"\nredirect_to_https = true'))
    fe = config.frontends["web"]
    assert fe.bind == (Address("127.0.0.1", 80), Address("*", 443))
    assert fe.listeners[0] == BindConfig(Address("127.0.0.1", 80))
    tls = fe.listeners[1]
    assert (tls.ssl, tls.crt, tls.alpn, tls.ssl_min_ver, tls.ciphers, tls.accept_proxy) == (
        True, (str(certs["default"]), str(certs["a"])), ("http/1.1",), "TLSv1.2", None, True)
    assert fe.hsts == 365 * 86_400_000 and fe.redirect_to_https
    dumped = json.loads(dump(config))["frontends"]["web"]
    assert dumped["bind"][1]["crt"] == [str(certs["default"]), str(certs["a"])]
    assert dumped["hsts"] == 31_536_000_000


def test_a_lone_bind_table_is_accepted() -> None:
    config = load_string(frontend_config('{ address = "*:8443", accept_proxy = true }').replace(
        'bind = [{ address = "*:8443", accept_proxy = true }]', 'bind = { address = "*:8443", accept_proxy = true }'))
    assert config.frontends["web"].listeners[0].accept_proxy


def test_bind_table_problems_have_full_paths() -> None:
    assert problems(frontend_config('"*:80", { address = "*:443", ssl = true }')) == [
        ("listen.web.bind[1].crt", "missing: a bind with ssl = true needs a certificate")]
    assert problems(frontend_config('{ address = "*:443", crt = "x.pem", alpn = "http/1.1" }')) == [
        ("listen.web.bind[0].crt", "only applies with ssl = true"),
        ("listen.web.bind[0].alpn", "only applies with ssl = true")]
    assert problems(frontend_config('{ address = "*:443", ssl = true, crt = "x", ssl_min_ver = "SSLv3" }'))[0][0] \
        == "listen.web.bind[0].ssl_min_ver"
    assert problems(frontend_config('{ adress = "*:443" }')) == [
        ("listen.web.bind[0].adress", 'unknown key (did you mean "address"?)'),
        ("listen.web.bind[0].address", "missing: every bind needs one")]
    assert problems(frontend_config('{ address = "*:443", ssl = true, crt = "x", alpn = ["h2", "http/1.1"] }')) == [
        ("listen.web.bind[0].alpn", '"h2": an HTTP frontend speaks HTTP/1.x only (offer "http/1.1")')]
    # A TCP frontend relays whatever the server speaks.
    load_string(frontend_config('{ address = "*:443", ssl = true, crt = "x", alpn = ["h2"] }', mode="tcp"))
    assert problems(frontend_config('"*:80"', 'hsts = "1d"', mode="tcp")) == [
        ("listen.web.hsts", 'needs mode = "http" (this proxy is in tcp mode)')]


def test_server_tls_and_proxy_protocol_options() -> None:
    text = frontend_config('"*:80"').replace('address = "127.0.0.1:8080"', (
        'address = "127.0.0.1:8443"\nssl = true\nverify = "none"\nsni = "app.test"\nsend_proxy = "v2"'))
    server = load_string(text).backends["web"].servers[0]
    assert (server.ssl, server.verify, server.sni, server.send_proxy, server.ca_file) == (
        True, "none", "app.test", "v2", None)
    bad = frontend_config('"*:80"').replace('address = "127.0.0.1:8080"',
                                           'address = "127.0.0.1:8080"\nca_file = "/ca.pem"\nsend_proxy = "v3"')
    assert problems(bad) == [
        ("listen.web.server[0].send_proxy", '"v3" is not one of v1, v2'),
        ("listen.web.server[0].ca_file", "only applies with ssl = true")]


# --- certificates -----------------------------------------------------------------------------


def build(text: str):
    return build_contexts(load_string(text))


def test_check_refuses_missing_certificates_and_bad_keys(certs, tmp_path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError) as info:
        build(frontend_config(f'{{ address = "*:443", ssl = true, crt = "{missing}" }}'))
    assert info.value.problems == [
        ("listen.web.bind[0].crt", f"cannot read the certificate {missing}: No such file or directory")]
    # Key in FILE.key that cannot be read (a directory stands for an unreadable file: tests run as root).
    cert_only = tmp_path / "cert-only.pem"
    cert_only.write_bytes(certs["default"].read_bytes().split(b"-----BEGIN PRIVATE KEY")[0])
    Path(str(cert_only) + ".key").mkdir()
    with pytest.raises(ConfigError) as info:
        build(frontend_config(f'{{ address = "*:443", ssl = true, crt = "{cert_only}" }}'))
    assert info.value.problems[0][1] == f"cannot read the key {cert_only}.key: Is a directory"
    # A key that belongs to another certificate.
    mixed = tmp_path / "mixed.pem"
    other = certs["other"].read_bytes()
    mixed.write_bytes(cert_only.read_bytes() + other[other.index(b"-----BEGIN PRIVATE KEY"):])
    with pytest.raises(ConfigError) as info:
        build(frontend_config(f'{{ address = "*:443", ssl = true, crt = "{mixed}" }}'))
    assert info.value.problems[0][1] == f"{mixed}: the private key does not match the certificate"
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(ConfigError) as info:
        build(frontend_config(f'{{ address = "*:443", ssl = true, crt = "{not_pem}" }}'))
    assert info.value.problems[0][1] == f"{not_pem} holds no PEM certificate"
    with pytest.raises(ConfigError) as info:
        build(frontend_config('"*:80"').replace('address = "127.0.0.1:8080"',
                                               f'address = "127.0.0.1:8080"\nssl = true\nca_file = "{missing}"'))
    assert info.value.problems == [
        ("listen.web.server[0].ca_file", f"cannot read the CA file {missing}: No such file or directory")]


def test_key_beside_the_certificate_and_directories(certs, tmp_path) -> None:
    assert load_certificate(str(certs["split"]), BindConfig(Address("*", 443))).names == ("split.test",)
    for name in ("a", "other"):
        (tmp_path / f"{name}.pem").write_bytes(certs[name].read_bytes())
    (tmp_path / "notes.txt").write_text("not a certificate: skipped")
    context = bind_context(BindConfig(Address("*", 443), ssl=True, crt=(str(tmp_path),)))
    assert isinstance(context, ssl.SSLContext)
    assert isinstance(context.sni_callback, SniSelector)  # two certificates: chosen by SNI
    assert context.sni_callback.context_for("other.test") is not context


def test_sni_selector_prefers_exact_names_then_wildcards(certs) -> None:
    bind = BindConfig(Address("*", 443), ssl=True)
    loaded = [load_certificate(str(certs[name]), bind) for name in ("default", "a", "other")]
    assert loaded[1].names == ("a.test", "*.wild.test")
    selector = SniSelector(loaded)
    assert selector.context_for("A.TEST") is loaded[1].context
    assert selector.context_for("x.wild.test") is loaded[1].context
    assert selector.context_for("y.x.wild.test") is loaded[0].context  # one label only
    assert selector.context_for("other.test") is loaded[2].context
    assert selector.context_for("unknown.test") is loaded[0].context
    assert selector.context_for(None) is loaded[0].context


def test_server_contexts() -> None:
    lax = server_context(ServerConfig("s", Address("h", 1), 1, ssl=True, verify="none"))
    assert lax.verify_mode == ssl.CERT_NONE and not lax.check_hostname
    strict = server_context(ServerConfig("s", Address("h", 1), 1, ssl=True, sni="app.test"))
    assert strict.verify_mode == ssl.CERT_REQUIRED and strict.check_hostname
    assert strict.minimum_version == ssl.TLSVersion.TLSv1_2


# --- handshakes over socket pairs ----------------------------------------------------------------


def client_context(**settings) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    for key, value in settings.items():
        if key == "alpn":
            context.set_alpn_protocols(value)
        elif key == "ciphers":
            context.set_ciphers(value)
        else:
            with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point of the test
                warnings.simplefilter("ignore", DeprecationWarning)
                setattr(context, key, value)
    return context


def handshake(server_context_, client_ctx, server_name=None):
    """Run both sides; returns (server result or HandshakeError, client socket or exception)."""
    left, right = socket.socketpair()
    server_job = gevent.spawn(lambda: accept(left, server_context_, HANDSHAKE_TIMEOUT_S))
    try:
        client = client_ctx.wrap_socket(right, server_hostname=server_name)
    except (ssl.SSLError, OSError) as exc:
        client = exc
        right.close()
    server_job.join(HANDSHAKE_TIMEOUT_S)
    result = server_job.value if server_job.successful() else server_job.exception
    return result, client


def peer_cn(client) -> str:
    der = client.getpeercert(binary_form=True)
    text = stdssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=text, capture_output=True,
                         text=True, check=True).stdout
    return out.strip().rsplit("=", 1)[-1].strip()


def test_handshake_alpn_and_tls12_minimum(certs) -> None:
    context = bind_context(BindConfig(Address("*", 443), ssl=True, crt=(str(certs["default"]),), alpn=("http/1.1",)))
    server, client = handshake(context, client_context(alpn=["h2", "http/1.1"]))
    assert client.selected_alpn_protocol() == "http/1.1" and server.selected_alpn_protocol() == "http/1.1"
    assert client.version() == "TLSv1.3"
    client.sendall(b"ping")
    assert server.recv(4) == b"ping"
    client.close()
    server.close()
    old = client_context(minimum_version=ssl.TLSVersion.TLSv1, maximum_version=ssl.TLSVersion.TLSv1_1,
                         ciphers="DEFAULT:@SECLEVEL=0")
    server, client = handshake(context, old)
    assert isinstance(client, ssl.SSLError)
    assert isinstance(server, HandshakeError) and server.reason == HANDSHAKE_FAILURE and not server.empty
    # The same client is served once the bind lowers its minimum: the refusal above was the bind's.
    legacy = bind_context(BindConfig(Address("*", 443), ssl=True, crt=(str(certs["default"]),),
                                     ssl_min_ver="TLSv1.1"))
    server, client = handshake(legacy, old)
    assert client.version() == "TLSv1.1"
    client.close()
    server.close()


def test_sni_picks_the_certificate(certs) -> None:
    context = bind_context(BindConfig(Address("*", 443), ssl=True,
                                      crt=(str(certs["default"]), str(certs["a"]), str(certs["other"]))))
    for name, expected in (("a.test", "a.test"), ("x.wild.test", "a.test"), ("other.test", "other.test"),
                           ("nothing.test", "localhost"), (None, "localhost")):
        server, client = handshake(context, client_context(), server_name=name)
        assert peer_cn(client) == expected, name
        client.close()
        server.close()


def test_plain_http_and_silent_clients(certs) -> None:
    context = bind_context(BindConfig(Address("*", 443), ssl=True, crt=(str(certs["default"]),)))
    left, right = socket.socketpair()
    right.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(HandshakeError) as info:
        accept(left, context, HANDSHAKE_TIMEOUT_S)
    assert info.value.reason == HANDSHAKE_FAILURE and "http request" in info.value.detail
    right.close()
    left, right = socket.socketpair()
    right.close()
    with pytest.raises(HandshakeError) as info:
        accept(left, context, HANDSHAKE_TIMEOUT_S)
    assert info.value.reason == HANDSHAKE_CLOSED and info.value.empty


# --- the socket side of the PROXY protocol --------------------------------------------------------


def test_proxy_header_is_consumed_alone() -> None:
    for header in (build_v1(("192.0.2.1", 1000), ("192.0.2.2", 80)), build_v2(("192.0.2.1", 1000), ("192.0.2.2", 80))):
        left, right = socket.socketpair()
        left.settimeout(HANDSHAKE_TIMEOUT_S)

        def send() -> None:
            right.sendall(header[:7])
            gevent.sleep(0.01)  # the rest comes in a second segment
            right.sendall(header[7:] + b"GET / HTTP/1.1\r\n")

        sender = gevent.spawn(send)
        parsed = read_proxy_header(left)
        sender.join()
        assert parsed.source == ("192.0.2.1", 1000)
        assert left.recv(100) == b"GET / HTTP/1.1\r\n"  # what follows stays in the socket
        left.close()
        right.close()


def test_proxy_preamble_errors() -> None:
    listener = Listener(BindConfig(Address("*", 80), accept_proxy=True))
    left, right = socket.socketpair()
    right.sendall(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(PreambleError) as info:
        accept_preamble(left, ("127.0.0.1", 5), listener, HANDSHAKE_TIMEOUT_S)
    assert str(info.value).startswith("Received something which does not look like a PROXY protocol header")
    assert info.value.kind == "proxy" and not info.value.empty
    left, right = socket.socketpair()
    right.sendall(b"PROXY TCP4 192.0.2.1")
    right.close()
    with pytest.raises(PreambleError) as info:
        accept_preamble(left, ("127.0.0.1", 5), listener, HANDSHAKE_TIMEOUT_S)
    assert str(info.value) == "Truncated PROXY protocol header received"
    left, right = socket.socketpair()
    right.sendall(b"PROXY TCP")
    with pytest.raises(PreambleError) as info:
        accept_preamble(left, ("127.0.0.1", 5), listener, 0.05)
    assert str(info.value) == "Timeout while waiting for PROXY protocol header"
    left, right = socket.socketpair()
    right.sendall(b"PROXY UNKNOWN\r\nrest")
    accepted = accept_preamble(left, ("127.0.0.1", 5), listener, HANDSHAKE_TIMEOUT_S)
    assert accepted.client == ("127.0.0.1", 5) and accepted.local is None


def test_proxy_header_then_tls(certs) -> None:
    context = bind_context(BindConfig(Address("*", 443), ssl=True, crt=(str(certs["default"]),)))
    listener = Listener(BindConfig(Address("*", 443), ssl=True, crt=("x",), accept_proxy=True), context)
    left, right = socket.socketpair()

    def client() -> bytes:
        right.sendall(build_v2(("2001:db8::7", 4444), ("2001:db8::1", 443)))
        tls = client_context().wrap_socket(right)
        tls.sendall(b"hello")
        return tls.recv(5)

    job = gevent.spawn(client)
    accepted = accept_preamble(left, ("127.0.0.1", 5), listener, HANDSHAKE_TIMEOUT_S)
    assert accepted.tls and accepted.client == ("2001:db8::7", 4444) and accepted.local == ("2001:db8::1", 443)
    assert accepted.sock.recv(5) == b"hello"
    accepted.sock.sendall(b"world")
    assert job.get(timeout=HANDSHAKE_TIMEOUT_S) == b"world"


def test_matching_listener_by_port_then_host() -> None:
    one = Listener(BindConfig(Address("127.0.0.1", 80)), name="1")
    two = Listener(BindConfig(Address("*", 443)), name="2")
    three = Listener(BindConfig(Address("127.0.0.2", 80)), name="3")
    listeners = (one, two, three)
    assert matching_listener(listeners, ("0.0.0.0", 443)) is two
    assert matching_listener(listeners, ("127.0.0.2", 80)) is three
    assert matching_listener(listeners, ("127.0.0.1", 80)) is one
    assert matching_listener(listeners, ("127.0.0.1", 81)) is None
    assert stdsocket.AF_INET  # the stdlib module is only used for constants here


# --- health checks of TLS servers ----------------------------------------------------------------


def test_health_checks_over_tls(certs) -> None:
    from gevent.server import StreamServer

    from gproxy.checker import run_check
    from gproxy.config.model import HttpCheck
    from gproxy.health import CheckStatus

    context = bind_context(BindConfig(Address("*", 443), ssl=True, crt=(str(certs["default"]),)))

    def tls_origin(sock, address) -> None:
        try:
            tls = accept(sock, context, HANDSHAKE_TIMEOUT_S)
        except HandshakeError:
            return
        tls.recv(1024)
        tls.sendall(b"HTTP/1.0 200 OK\r\n\r\n")
        tls.close()

    def plain_origin(sock, address) -> None:
        sock.recv(1024)
        sock.sendall(b"HTTP/1.0 200 OK\r\n\r\n")

    servers = [StreamServer(("127.0.0.1", 0), handler) for handler in (tls_origin, plain_origin)]
    for server in servers:
        server.start()
    tls_port, plain_port = (server.server_port for server in servers)
    lax = client_context()
    try:
        check = run_check("127.0.0.1", tls_port, HttpCheck(), 1000, None, 2000, tls=lax)
        assert check.status == CheckStatus.L7OK
        assert run_check("127.0.0.1", tls_port, None, 1000, None, 2000, tls=lax).status == CheckStatus.L6OK
        refused = run_check("127.0.0.1", plain_port, HttpCheck(), 1000, None, 2000, tls=lax)
        assert refused.status == CheckStatus.L6RSP and refused.info.startswith("SSL handshake failure")
        verified = server_context(ServerConfig("s", Address("127.0.0.1", tls_port), 1, ssl=True,
                                               ca_file=str(certs["other"])))
        untrusted = run_check("127.0.0.1", tls_port, HttpCheck(), 1000, None, 2000, tls=verified)
        assert untrusted.status == CheckStatus.L6RSP and "certificate" in untrusted.info.lower()
    finally:
        for server in servers:
            server.stop()


# --- the same configuration for HAProxy ------------------------------------------------------------


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_haproxy_accepts_tls_and_proxy_settings_written_back(certs, tmp_path) -> None:
    from gproxy.config.convert import convert_haproxy, toml_to_haproxy

    tls_bind = (f'{{ address = "127.0.0.1:8443", ssl = true, crt = ["{certs["default"]}", "{certs["a"]}"], '
                'alpn = ["http/1.1"], ssl_min_ver = "TLSv1.2", accept_proxy = true }')
    text = f"""
[frontend.www]
bind = ["127.0.0.1:8080", {tls_bind}]
redirect_to_https = true
hsts = "365d"
default_backend = "app"
[backend.app]
[[backend.app.server]]
name = "a"
address = "127.0.0.1:9443"
ssl = true
ca_file = "{certs['other']}"
sni = "app.test"
send_proxy = "v2"
[[backend.app.server]]
name = "b"
address = "127.0.0.1:9444"
ssl = true
send_proxy = "v1"
"""
    config = load_string(text)
    cfg = toml_to_haproxy(config)
    assert "ssl-min-ver TLSv1.2" in cfg and "accept-proxy" in cfg and "send-proxy-v2" in cfg
    path = tmp_path / "haproxy.cfg"
    path.write_text(cfg)
    result = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    # And back: HAProxy's spelling converts to the same configuration.
    back = convert_haproxy(cfg)
    assert back.problems == ()
    again = load_string(back.text)
    assert again.frontends["www"].listeners == config.frontends["www"].listeners
    assert (again.frontends["www"].hsts, again.frontends["www"].redirect_to_https) == (365 * 86_400_000, True)
    assert again.backends["app"].servers == config.backends["app"].servers
