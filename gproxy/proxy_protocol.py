"""The PROXY protocol (HAProxy's proxy-protocol.txt, versions 1 and 2), sans-IO.

A load balancer or TLS terminator in front of gproxy (the seed's stunnel)
opens each connection with a PROXY header naming the real client; gproxy
reads it with `accept_proxy = true` on a bind, and writes one to a server
with `send_proxy = "v1" | "v2"`.

`parse_header(data)` takes the bytes received so far and returns NEED_DATA
(a valid prefix, the header is not complete yet), or a `(ProxyHeader,
leftover)` pair, or raises `ProxyHeaderError`. It decides as early as it can:
the first byte that cannot start a header raises, so a client speaking plain
HTTP or TLS to a PROXY port is refused before its request goes anywhere.
The header's `length` tells the caller exactly how many bytes it used, so the
socket layer can consume the header and nothing after it (a TLS ClientHello
that follows must stay in the socket). `build_v1` / `build_v2` write headers.

No I/O here (DESIGN.md rule 1): the socket side is in gproxy.listeners and
gproxy.netio.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final, Literal

from gproxy.errors import ProtocolError

__all__ = [
    "NEED_DATA", "V1_MAX_LENGTH", "V2_SIGNATURE", "ProxyHeader", "ProxyHeaderError",
    "build_for_server", "build_v1", "build_v2", "build_v2_local", "check_preamble", "parse_header",
]


class _NeedData:
    """The sentinel for "a valid beginning; give me more bytes"."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()

V1_PREFIX = b"PROXY "
V1_MAX_LENGTH = 107  # proxy-protocol.txt 2.1: the longest v1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED_LENGTH = 16  # signature, version/command, family, 2-byte length
# A v2 header (TLVs included) must fit in one buffer, as in HAProxy (tune.bufsize).
V2_MAX_LENGTH = 16384
_V2_VERSION = 0x2
_V2_LOCAL, _V2_PROXY = 0x0, 0x1
# Address families and transports of the v2 family byte (proxy-protocol.txt 2.2).
_AF_UNSPEC, _AF_INET, _AF_INET6, _AF_UNIX = 0x0, 0x1, 0x2, 0x3
_TRANSPORT_UNSPEC, _TRANSPORT_STREAM, _TRANSPORT_DGRAM = 0x0, 0x1, 0x2
_V2_ADDRESS_LENGTH = {_AF_INET: 12, _AF_INET6: 36, _AF_UNIX: 216}
_MAX_PORT = 65535
_MAX_PORT_DIGITS = 5

# What HAProxy logs for each kind of failure (its conn_err_code_str()).
NOT_A_HEADER = "Received something which does not look like a PROXY protocol header"
INVALID_HEADER = "Received an invalid PROXY protocol header"

Endpoint = tuple[str, int]


class ProxyHeaderError(ProtocolError):
    """Not a PROXY header, or a broken one. `not_a_header` tells which:
    garbage from the first bytes (a client that does not speak the protocol)
    or a header that starts right and goes wrong."""

    def __init__(self, detail: str, not_a_header: bool = False):
        self.detail = detail
        self.not_a_header = not_a_header
        super().__init__(f"{NOT_A_HEADER if not_a_header else INVALID_HEADER}: {detail}", 400)

    @property
    def summary(self) -> str:
        """HAProxy's words for the log line."""
        return NOT_A_HEADER if self.not_a_header else INVALID_HEADER


@dataclass(frozen=True)
class ProxyHeader:
    """A parsed header. `source`/`destination` are None when the sender gave
    no usable address (v1 UNKNOWN, v2 LOCAL, UNSPEC or UNIX): the connection's
    own addresses apply then. `length` is how many bytes the header took."""

    version: Literal[1, 2]
    source: Endpoint | None
    destination: Endpoint | None
    length: int
    local: bool = False  # v2 LOCAL (a health check of the sender) or v1 UNKNOWN
    tlvs: tuple[tuple[int, bytes], ...] = ()  # v2 type-length-values, in order


ParseResult = tuple[ProxyHeader, bytes] | _NeedData


def parse_header(data: bytes) -> ParseResult:
    """Parse a v1 or v2 header at the start of `data` (see the module docstring)."""
    if not data:
        return NEED_DATA
    if data[0] == V1_PREFIX[0]:
        return _parse_v1(data)
    if data[0] == V2_SIGNATURE[0]:
        return _parse_v2(data)
    raise ProxyHeaderError(f"starts with {data[:8]!r}", not_a_header=True)


# --- version 1: one text line ------------------------------------------------------


def _parse_v1(data: bytes) -> ParseResult:
    head = data[:len(V1_PREFIX)]
    if not V1_PREFIX.startswith(head):
        raise ProxyHeaderError(f"starts with {data[:8]!r}", not_a_header=True)
    end = data.find(b"\r\n", 0, V1_MAX_LENGTH)
    if end < 0:
        if len(data) >= V1_MAX_LENGTH:
            raise ProxyHeaderError(f"no CRLF within {V1_MAX_LENGTH} bytes")
        if b"\n" in data or b"\x00" in data:
            raise ProxyHeaderError("a line must end with CRLF and hold no NUL")
        return NEED_DATA
    line = data[:end]
    length = end + 2
    if b"\n" in line or b"\r" in line or b"\x00" in line:
        raise ProxyHeaderError("a line must end with CRLF and hold no NUL")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyHeaderError("non-ASCII bytes in the line") from None
    words = text.split(" ")
    if len(words) < 2 or words[0] != "PROXY":
        raise ProxyHeaderError(f"bad line {text[:40]!r}")
    family = words[1]
    if family == "UNKNOWN":
        # The sender does not know the addresses (or is checking us): anything may follow.
        return ProxyHeader(1, None, None, length, local=True), data[length:]
    if family not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"unknown protocol {family[:10]!r} (TCP4, TCP6 or UNKNOWN)")
    if len(words) != 6:
        raise ProxyHeaderError(f"expected 6 fields, got {len(words)}")
    version = 4 if family == "TCP4" else 6
    source = (_v1_address(words[2], version), _v1_port(words[4]))
    destination = (_v1_address(words[3], version), _v1_port(words[5]))
    return ProxyHeader(1, source, destination, length), data[length:]


def _v1_address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyHeaderError(f"{text[:40]!r} is not an IP address") from None
    if address.version != version:
        raise ProxyHeaderError(f"{text!r} is not an IPv{version} address")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # as v2 and the logs show it
    return str(address)


def _v1_port(text: str) -> int:
    if not text.isdigit() or not text.isascii() or len(text) > _MAX_PORT_DIGITS or int(text) > _MAX_PORT:
        raise ProxyHeaderError(f"{text[:10]!r} is not a port")
    if len(text) > 1 and text[0] == "0":
        raise ProxyHeaderError(f"{text!r}: a port has no leading zero")
    return int(text)


# --- version 2: binary ----------------------------------------------------------------


def _parse_v2(data: bytes) -> ParseResult:
    prefix = data[:len(V2_SIGNATURE)]
    if not V2_SIGNATURE.startswith(prefix):
        raise ProxyHeaderError(f"starts with {data[:8]!r}", not_a_header=True)
    if len(data) < V2_FIXED_LENGTH:
        if len(data) > len(V2_SIGNATURE):
            _v2_version_command(data[len(V2_SIGNATURE)])  # fail early on a wrong version
        return NEED_DATA
    command = _v2_version_command(data[12])
    family, transport = data[13] >> 4, data[13] & 0x0F
    (body_length,) = struct.unpack_from("!H", data, 14)
    length = V2_FIXED_LENGTH + body_length
    if length > V2_MAX_LENGTH:
        raise ProxyHeaderError(f"header of {length} bytes (at most {V2_MAX_LENGTH})")
    if len(data) < length:
        return NEED_DATA
    body = data[V2_FIXED_LENGTH:length]
    if family not in (_AF_UNSPEC, _AF_INET, _AF_INET6, _AF_UNIX) or transport not in (
            _TRANSPORT_UNSPEC, _TRANSPORT_STREAM, _TRANSPORT_DGRAM):
        raise ProxyHeaderError(f"unknown family/transport byte 0x{data[13]:02x}")
    address_length = _V2_ADDRESS_LENGTH.get(family, 0)
    if len(body) < address_length:
        raise ProxyHeaderError(f"{len(body)} bytes of addresses, family 0x{family:x} needs {address_length}")
    tlvs = _v2_tlvs(body[address_length:])
    leftover = data[length:]
    if command == _V2_LOCAL or family in (_AF_UNSPEC, _AF_UNIX) or transport != _TRANSPORT_STREAM:
        return ProxyHeader(2, None, None, length, local=command == _V2_LOCAL, tlvs=tlvs), leftover
    if family == _AF_INET:
        src, dst, sport, dport = struct.unpack_from("!4s4sHH", body)
        source = (str(ipaddress.IPv4Address(src)), sport)
        destination = (str(ipaddress.IPv4Address(dst)), dport)
    else:
        src, dst, sport, dport = struct.unpack_from("!16s16sHH", body)
        source = (_v6_text(src), sport)
        destination = (_v6_text(dst), dport)
    return ProxyHeader(2, source, destination, length, tlvs=tlvs), leftover


def _v2_version_command(byte: int) -> int:
    version, command = byte >> 4, byte & 0x0F
    if version != _V2_VERSION:
        raise ProxyHeaderError(f"version {version} (expected 2)")
    if command not in (_V2_LOCAL, _V2_PROXY):
        raise ProxyHeaderError(f"unknown command {command}")
    return command


def _v2_tlvs(data: bytes) -> tuple[tuple[int, bytes], ...]:
    tlvs: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 3:
            raise ProxyHeaderError("truncated TLV")
        kind = data[offset]
        (size,) = struct.unpack_from("!H", data, offset + 1)
        start = offset + 3
        if start + size > len(data):
            raise ProxyHeaderError(f"TLV 0x{kind:02x} of {size} bytes overflows the header")
        tlvs.append((kind, bytes(data[start:start + size])))
        offset = start + size
    return tuple(tlvs)


def _v6_text(packed: bytes) -> str:
    address = ipaddress.IPv6Address(packed)
    # An IPv4 client seen through an IPv6 socket: show it as IPv4, as logs do.
    return str(address.ipv4_mapped) if address.ipv4_mapped is not None else str(address)


# --- building headers -------------------------------------------------------------------


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _same_family(source: Endpoint, destination: Endpoint) -> tuple[int, IPAddress, IPAddress]:
    """Both addresses in one family: IPv4 if both are, else IPv6 (v4-mapped)."""
    src = ipaddress.ip_address(source[0])
    dst = ipaddress.ip_address(destination[0])
    if src.version == dst.version:
        return src.version, src, dst
    as_v6 = [a if a.version == 6 else ipaddress.IPv6Address(f"::ffff:{a}") for a in (src, dst)]
    return 6, as_v6[0], as_v6[1]


def build_v1(source: Endpoint, destination: Endpoint) -> bytes:
    """`PROXY TCP4|TCP6 <src> <dst> <sport> <dport>\\r\\n`."""
    version, src, dst = _same_family(source, destination)
    return f"PROXY TCP{version} {src} {dst} {source[1]} {destination[1]}\r\n".encode("ascii")


def build_v2(source: Endpoint, destination: Endpoint, tlvs: tuple[tuple[int, bytes], ...] = ()) -> bytes:
    """A v2 PROXY command over TCP, with optional TLVs."""
    version, src, dst = _same_family(source, destination)
    family = _AF_INET if version == 4 else _AF_INET6
    addresses = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    extra = b"".join(struct.pack("!BH", kind, len(value)) + value for kind, value in tlvs)
    body = addresses + extra
    return (V2_SIGNATURE + bytes([(_V2_VERSION << 4) | _V2_PROXY, (family << 4) | _TRANSPORT_STREAM])
            + struct.pack("!H", len(body)) + body)


def build_v2_local() -> bytes:
    """A v2 LOCAL header: the sender's own connection (a health check)."""
    return V2_SIGNATURE + bytes([(_V2_VERSION << 4) | _V2_LOCAL, 0]) + struct.pack("!H", 0)


def build_for_server(version: str, source: Endpoint, destination: Endpoint) -> bytes:
    """The header a server with `send_proxy = version` ("v1" or "v2") gets."""
    if version == "v1":
        return build_v1(source, destination)
    if version == "v2":
        return build_v2(source, destination)
    raise ValueError(f"unknown PROXY protocol version {version!r}")


def check_preamble(version: str | None) -> bytes:
    """What a health check of a server with `send_proxy` sends first: no
    client is relayed, so v1 says UNKNOWN and v2 LOCAL (the receiver then
    uses the connection's own addresses)."""
    if version is None:
        return b""
    if version == "v1":
        return b"PROXY UNKNOWN\r\n"
    return build_v2_local()
