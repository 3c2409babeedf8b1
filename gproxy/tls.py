"""TLS: the SSL contexts of binds and servers, and the handshakes.

This replaces the seed's stunnel. `build_contexts(config)` reads every
certificate and key the configuration names and returns the contexts the
listeners and server connections use; any problem (a missing certificate, an
unreadable key, a key that does not match) is a ConfigError naming the key
path and the file, so `gproxy check` and a reload refuse the configuration
before anything changes. A reload calls it again, which is how renewed
certificates are picked up.

Defaults follow current practice (Mozilla's "intermediate" profile): TLS 1.2
at least, ECDHE key exchange with AES-GCM or ChaCha20 for TLS 1.2 (TLS 1.3
suites are OpenSSL's), server cipher preference, no compression, no
renegotiation. A bind with several certificates picks one by the name the
client asks for (SNI): exact names first, then wildcards, else the first.

The contexts are gevent's, so the sockets they wrap yield to the loop.
"""

from __future__ import annotations

import os
import socket
import ssl as _stdssl
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gevent import ssl

from gproxy.config.model import BindConfig, Config, ServerConfig
from gproxy.errors import ConfigError, GproxyError

# TLS 1.2 suites, strongest first: forward secrecy (ECDHE) with AEAD ciphers only.
MODERN_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
))
# What TLS 1.0/1.1 clients can use (CBC with SHA-1), added only when a bind
# lowers ssl_min_ver; OpenSSL 3 also needs security level 0 for those versions.
LEGACY_CIPHERS = ":".join((
    "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
    "AES128-SHA", "AES256-SHA",
))
LEGACY_SECLEVEL = "@SECLEVEL=0"
TLS_VERSIONS = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
CERT_SUFFIXES = (".pem", ".crt")  # files of a `crt` directory, as HAProxy reads them
KEY_SUFFIX = ".key"  # HAProxy's place for a key that is not in the PEM file
_PRIVATE_KEY_MARK = b"PRIVATE KEY-----"
_CERTIFICATE_MARK = b"-----BEGIN CERTIFICATE-----"

# HAProxy's words for each way a handshake fails (its conn_err_code_str()).
HANDSHAKE_FAILURE = "SSL handshake failure"
HANDSHAKE_TIMEOUT = "Timeout during SSL handshake"
HANDSHAKE_CLOSED = "Connection closed during SSL handshake"
HANDSHAKE_ABORTED = "Connection error during SSL handshake"


class HandshakeError(GproxyError):
    """A TLS handshake did not complete. `reason` is HAProxy's wording;
    `empty` means the peer sent nothing at all (not logged with dontlognull)."""

    def __init__(self, reason: str, detail: str = "", empty: bool = False):
        self.reason = reason
        self.detail = detail
        self.empty = empty
        super().__init__(f"{reason} ({detail})" if detail else reason)


# --- certificates ------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """One loaded certificate: where it came from, the names it serves, its context."""

    path: str
    names: tuple[str, ...]
    context: ssl.SSLContext = field(compare=False, repr=False)


def certificate_files(path: str) -> list[str]:
    """`crt` may name a file or a directory of certificates (sorted by name)."""
    if os.path.isdir(path):
        return sorted(str(p) for p in Path(path).iterdir()
                      if p.suffix in CERT_SUFFIXES and p.is_file())
    return [path]


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ValueError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None


def _names(path: str) -> tuple[str, ...]:
    """The DNS names of a certificate: subjectAltName entries, then the CN."""
    try:
        decoded: dict[str, Any] = _stdssl._ssl._test_decode_cert(path)  # type: ignore[attr-defined]
    except (_stdssl.SSLError, OSError, ValueError):
        return ()
    names = [value for kind, value in decoded.get("subjectAltName", ()) if kind == "DNS"]
    for rdn in decoded.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value not in names:
                names.append(value)
    return tuple(name.lower() for name in names)


def _server_side_context(bind: BindConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    legacy = TLS_VERSIONS[bind.ssl_min_ver] < ssl.TLSVersion.TLSv1_2
    with warnings.catch_warnings():  # old versions are deprecated: the administrator asked for them
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = TLS_VERSIONS[bind.ssl_min_ver]
    ciphers = bind.ciphers or (MODERN_CIPHERS + (":" + LEGACY_CIPHERS if legacy else ""))
    if legacy and "@SECLEVEL" not in ciphers:
        ciphers += ":" + LEGACY_SECLEVEL
    try:
        context.set_ciphers(ciphers)
    except ssl.SSLError:
        raise ValueError(f"no cipher of {ciphers!r} is known to OpenSSL") from None
    context.options |= (ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
                        | getattr(ssl, "OP_NO_RENEGOTIATION", 0))
    if bind.alpn:
        context.set_alpn_protocols(list(bind.alpn))
    return context


def load_certificate(path: str, bind: BindConfig) -> Certificate:
    """A context serving the certificate (and chain) of `path` with its key,
    found in the same file or in `path.key`. ValueError names the file."""
    pem = _read(path, "certificate")
    if _CERTIFICATE_MARK not in pem:
        raise ValueError(f"{path} holds no PEM certificate")
    keyfile = None
    if _PRIVATE_KEY_MARK not in pem:
        keyfile = path + KEY_SUFFIX
        if not os.path.exists(keyfile):
            raise ValueError(f"{path} holds no private key and there is no {keyfile}")
        if _PRIVATE_KEY_MARK not in _read(keyfile, "key"):
            raise ValueError(f"{keyfile} holds no PEM private key")
    context = _server_side_context(bind)
    try:
        context.load_cert_chain(path, keyfile)
    except ssl.SSLError as exc:
        reason = "the private key does not match the certificate" if "KEY_VALUES_MISMATCH" in str(exc) \
            else f"cannot load the certificate and key ({exc.reason or exc})"
        raise ValueError(f"{keyfile or path}: {reason}") from None
    except OSError as exc:
        raise ValueError(f"cannot read the key {keyfile or path}: {exc.strerror or exc}") from None
    return Certificate(path, _names(path), context)


class SniSelector:
    """The SNI callback of a bind: switch the connection to the certificate
    whose name matches (exact, then `*.domain` for one label), else keep the default."""

    def __init__(self, certificates: list[Certificate]):
        self.default = certificates[0]
        self.exact: dict[str, ssl.SSLContext] = {}
        self.wildcard: dict[str, ssl.SSLContext] = {}
        for cert in certificates:
            for name in cert.names:
                table = self.wildcard if name.startswith("*.") else self.exact
                table.setdefault(name[2:] if name.startswith("*.") else name, cert.context)

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        if not server_name:
            return self.default.context
        name = server_name.lower().rstrip(".")
        found = self.exact.get(name)
        if found is None and "." in name:
            found = self.wildcard.get(name.split(".", 1)[1])
        return found or self.default.context

    def __call__(self, sock: Any, server_name: str | None, initial: ssl.SSLContext) -> None:
        chosen = self.context_for(server_name)
        if chosen is not initial:
            sock.context = chosen


def bind_context(bind: BindConfig) -> ssl.SSLContext:
    """The context a TLS bind wraps its connections with (ValueError if it cannot be built)."""
    certificates = [load_certificate(path, bind) for crt in bind.crt for path in certificate_files(crt)]
    if not certificates:
        raise ValueError(f"no certificate found in {', '.join(bind.crt)}")
    selector = SniSelector(certificates)
    context = selector.default.context
    if len(certificates) > 1:
        context.sni_callback = selector
    return context


def server_context(server: ServerConfig) -> ssl.SSLContext:
    """The client-side context for a server with `ssl = true`."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if server.verify == "none":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    # Without `sni` there is no name to check: the chain is verified, as HAProxy does.
    context.check_hostname = server.sni is not None
    context.verify_mode = ssl.CERT_REQUIRED
    if server.ca_file is None:
        context.load_default_certs()
        return context
    _read(server.ca_file, "CA file")
    try:
        context.load_verify_locations(cafile=server.ca_file)
    except ssl.SSLError as exc:
        raise ValueError(f"{server.ca_file}: not a PEM CA file ({exc.reason or exc})") from None
    return context


# --- the contexts of a configuration --------------------------------------------------


@dataclass(frozen=True)
class TlsContexts:
    """Every context a configuration needs, by (frontend, bind index) and (backend, server)."""

    binds: dict[tuple[str, int], ssl.SSLContext] = field(default_factory=dict)
    servers: dict[tuple[str, str], ssl.SSLContext] = field(default_factory=dict)


def build_contexts(config: Config) -> TlsContexts:
    """Load every certificate, key and CA file of `config`; raise one
    ConfigError listing every problem, with the key path of each."""
    contexts = TlsContexts()
    problems: list[tuple[str, str]] = []
    for frontend in config.frontends.values():
        kind = "listen" if frontend.is_listen else "frontend"
        for index, bind in enumerate(frontend.listeners):
            if not bind.ssl:
                continue
            try:
                contexts.binds[(frontend.name, index)] = bind_context(bind)
            except ValueError as exc:
                problems.append((f"{kind}.{frontend.name}.bind[{index}].crt", str(exc)))
    for backend in config.backends.values():
        kind = "listen" if backend.is_listen else "backend"
        for server in backend.servers:
            if not server.ssl:
                continue
            try:
                contexts.servers[(backend.name, server.name)] = server_context(server)
            except ValueError as exc:
                problems.append((f"{kind}.{backend.name}.server[{server.id - 1}].ca_file", str(exc)))
    if problems:
        raise ConfigError(problems)
    return contexts


# --- handshakes (gevent sockets) ---------------------------------------------------------


def _failure(exc: BaseException) -> HandshakeError:
    if isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in str(exc):
        return HandshakeError(HANDSHAKE_TIMEOUT)
    if isinstance(exc, ssl.SSLEOFError) or isinstance(exc, ssl.SSLZeroReturnError):
        return HandshakeError(HANDSHAKE_CLOSED)
    if isinstance(exc, ssl.SSLError):
        return HandshakeError(HANDSHAKE_FAILURE, (exc.reason or str(exc)).lower().replace("_", " "))
    return HandshakeError(HANDSHAKE_ABORTED, getattr(exc, "strerror", None) or str(exc))


def accept(sock: Any, context: ssl.SSLContext, timeout: float | None) -> Any:
    """Run the server side of a handshake on an accepted socket; the TLS
    socket, or HandshakeError (`empty` if the client sent nothing at all).
    Whatever happens, `sock` is no longer to be used. `timeout` None: the
    caller bounds the handshake (gproxy.listeners does, with one deadline)."""
    sock.settimeout(timeout)
    try:
        first = sock.recv(1, socket.MSG_PEEK)
    except (socket.timeout, TimeoutError):
        raise HandshakeError(HANDSHAKE_TIMEOUT, empty=True) from None
    except OSError as exc:
        raise HandshakeError(HANDSHAKE_ABORTED, exc.strerror or str(exc), empty=True) from None
    if not first:
        raise HandshakeError(HANDSHAKE_CLOSED, empty=True)
    try:
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    except OSError as exc:
        raise _failure(exc) from None
    try:
        tls.settimeout(timeout)
        tls.do_handshake()
    except (OSError, ValueError) as exc:
        tls.close()
        raise _failure(exc) from None
    return tls


def connect(sock: Any, context: ssl.SSLContext, server_hostname: str | None) -> Any:
    """The client side, on a connected socket whose timeout bounds the handshake."""
    return context.wrap_socket(sock, server_hostname=server_hostname)


def negotiated(sock: Any) -> dict[str, str | None]:
    """What a TLS connection agreed on (for logs and tests)."""
    cipher: Callable[[], Any] = getattr(sock, "cipher", lambda: None)
    described = cipher()
    return {
        "version": sock.version() if hasattr(sock, "version") else None,
        "cipher": described[0] if described else None,
        "alpn": sock.selected_alpn_protocol() if hasattr(sock, "selected_alpn_protocol") else None,
    }
