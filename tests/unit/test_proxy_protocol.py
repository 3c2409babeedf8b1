"""gproxy.proxy_protocol: v1 and v2 headers parsed whole, byte by byte and in
random chunks, with trailing data kept; garbage refused as early as possible;
built headers read back."""

from __future__ import annotations

import random
import struct

import pytest

from gproxy.proxy_protocol import (
    INVALID_HEADER,
    NEED_DATA,
    NOT_A_HEADER,
    V1_MAX_LENGTH,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    build_v1,
    build_v2,
    build_v2_local,
    parse_header,
)

TRAILING = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def feed(chunks: list[bytes]) -> tuple[ProxyHeader, bytes]:
    """Feed chunks as a socket would deliver them; the header must come out
    exactly when its last byte arrives, never before."""
    buffer = b""
    for index, chunk in enumerate(chunks):
        buffer += chunk
        result = parse_header(buffer)
        if result is not NEED_DATA:
            header, leftover = result
            assert header.length <= len(buffer)
            # Nothing was missing one chunk earlier: the header ends in this chunk.
            assert header.length > len(buffer) - len(chunk)
            rest = b"".join(chunks[index + 1:])
            return header, leftover + rest
    raise AssertionError("the header never completed")


def split_random(data: bytes, rng: random.Random) -> list[bytes]:
    chunks = []
    while data:
        size = rng.randint(1, 9)
        chunks.append(data[:size])
        data = data[size:]
    return chunks


def tr(data: bytes, source, destination, version: int) -> None:
    """h11's tr(): whole, byte by byte, random chunks, each with trailing data."""
    rng = random.Random(7)
    for trailing in (b"", TRAILING):
        whole = data + trailing
        variants = [[whole], [whole[i:i + 1] for i in range(len(whole))]]
        variants += [split_random(whole, rng) for _ in range(20)]
        for chunks in variants:
            header, leftover = feed(chunks)
            assert (header.version, header.source, header.destination) == (version, source, destination)
            assert header.length == len(data)
            assert leftover == trailing


V1_CASES = [
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n", ("192.0.2.1", 56324), ("198.51.100.2", 443)),
    (b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", ("2001:db8::1", 1), ("2001:db8::2", 65535)),
    (b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
     ("255.255.255.255", 65535), ("255.255.255.255", 65535)),
]


@pytest.mark.parametrize("data,source,destination", V1_CASES)
def test_v1_headers(data: bytes, source, destination) -> None:
    tr(data, source, destination, 1)


def test_v1_unknown_uses_the_connection_addresses() -> None:
    for data in (b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"):
        header, leftover = feed([data + b"rest"])
        assert (header.source, header.destination, header.local, leftover) == (None, None, True, b"rest")


def test_v1_longest_line_fits() -> None:
    longest = (b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
               b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n")
    assert len(longest) == V1_MAX_LENGTH
    header, _ = feed([longest])
    assert header.local and header.length == V1_MAX_LENGTH
    tcp6 = longest.replace(b"UNKNOWN", b"TCP6")
    assert feed([tcp6])[0].source == ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def test_v2_headers() -> None:
    ipv4 = v2(1, 0x11, bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack("!HH", 40000, 443))
    tr(ipv4, ("192.0.2.1", 40000), ("198.51.100.2", 443), 2)
    src6 = bytes.fromhex("20010db8000000000000000000000001")
    dst6 = bytes.fromhex("20010db8000000000000000000000002")
    ipv6 = v2(1, 0x21, src6 + dst6 + struct.pack("!HH", 1, 80))
    tr(ipv6, ("2001:db8::1", 1), ("2001:db8::2", 80), 2)


def test_v2_tlvs_are_kept_and_ipv4_mapped_addresses_shown_as_ipv4() -> None:
    mapped = bytes.fromhex("00000000000000000000ffffc0000201")
    body = mapped + mapped + struct.pack("!HH", 5, 6) + b"\x02\x00\x03abc" + b"\x04\x00\x00"
    header, leftover = feed([v2(1, 0x21, body) + b"x"])
    assert header.source == ("192.0.2.1", 5)
    assert header.tlvs == ((0x02, b"abc"), (0x04, b""))
    assert leftover == b"x"


def test_v2_local_unspec_and_unix_carry_no_address() -> None:
    local = v2(0, 0x11, bytes(12))
    assert feed([local])[0] == ProxyHeader(2, None, None, len(local), local=True)
    assert feed([build_v2_local()])[0].local
    unspec = v2(1, 0x00, b"")
    assert feed([unspec])[0].source is None
    unix = v2(1, 0x31, bytes(216))
    assert feed([unix])[0].source is None
    udp = v2(1, 0x12, bytes(12))
    assert feed([udp])[0].source is None


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
    b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXX",
    b"\r\n\r\n\x00\r\nQUIX\n",
    b"\x00",
])
def test_garbage_is_refused_from_its_first_wrong_byte(garbage: bytes) -> None:
    # The refusal comes before the whole input: the first bytes are enough.
    for end in range(1, len(garbage) + 1):
        prefix = garbage[:end]
        try:
            result = parse_header(prefix)
        except ProxyHeaderError as exc:
            assert exc.not_a_header
            assert exc.summary == NOT_A_HEADER
            assert exc.status == 400
            return
        assert result is NEED_DATA
    raise AssertionError("never refused")


@pytest.mark.parametrize("line", [
    b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",  # a field missing
    b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 9\r\n",  # one too many
    b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",  # IPv6 in TCP4
    b"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",  # IPv4 in TCP6
    b"PROXY TCP4 192.0.2.300 198.51.100.2 1 2\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 -1 2\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n",
    b"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",  # two spaces
    b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n",  # LF only
    b"PROXY TCP4 192.0.2.1 198.51.100.2 1 2\x00\r\n",
    b"PROXY TCP4 192.0.2.1 198.51.100.2 1 \xff\r\n",
])
def test_invalid_v1_lines(line: bytes) -> None:
    with pytest.raises(ProxyHeaderError) as info:
        feed([line])
    assert not info.value.not_a_header
    assert str(info.value).startswith(INVALID_HEADER)


def test_v1_without_crlf_in_107_bytes_is_refused_at_byte_107() -> None:
    line = b"PROXY TCP4 " + b"1" * 200
    assert parse_header(line[:V1_MAX_LENGTH - 1]) is NEED_DATA
    with pytest.raises(ProxyHeaderError):
        parse_header(line[:V1_MAX_LENGTH])


@pytest.mark.parametrize("data", [
    V2_SIGNATURE + b"\x11\x11\x00\x0c" + bytes(12),  # version 1
    V2_SIGNATURE + b"\x22\x11\x00\x0c" + bytes(12),  # command 2
    V2_SIGNATURE + b"\x21\x41\x00\x0c" + bytes(12),  # family 4
    V2_SIGNATURE + b"\x21\x11\x00\x08" + bytes(8),  # addresses cut short
    V2_SIGNATURE + b"\x21\x11\x00\x0e" + bytes(12) + b"\x01\x00",  # truncated TLV
    V2_SIGNATURE + b"\x21\x11\x00\x10" + bytes(12) + b"\x01\x00\x09\x00",  # TLV overflows
    V2_SIGNATURE + b"\x21\x11\xff\xff",  # longer than a buffer
])
def test_invalid_v2_headers(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError) as info:
        feed([data + bytes(70000)])
    assert not info.value.not_a_header


def test_v2_wrong_version_is_refused_before_the_length_arrives() -> None:
    with pytest.raises(ProxyHeaderError):
        parse_header(V2_SIGNATURE + b"\x11")


def test_eof_mid_header_is_still_need_data() -> None:
    # The socket layer turns "EOF while NEED_DATA" into "truncated header".
    whole = build_v2(("192.0.2.1", 1), ("192.0.2.2", 2))
    for end in range(len(whole)):
        assert parse_header(whole[:end]) is NEED_DATA
    line = build_v1(("192.0.2.1", 1), ("192.0.2.2", 2))
    for end in range(len(line)):
        assert parse_header(line[:end]) is NEED_DATA


@pytest.mark.parametrize("source,destination", [
    (("192.0.2.1", 1234), ("198.51.100.7", 80)),
    (("2001:db8::5", 1234), ("2001:db8::6", 443)),
    (("192.0.2.1", 1234), ("2001:db8::6", 443)),  # mixed: both written as IPv6
])
def test_built_headers_read_back(source, destination) -> None:
    line = build_v1(source, destination)
    assert line.endswith(b"\r\n") and len(line) <= V1_MAX_LENGTH
    for data, version in ((line, 1), (build_v2(source, destination, ((0x30, b"t"),)), 2)):
        header, leftover = feed([data + b"after"])
        assert leftover == b"after"
        assert header.version == version
        assert header.source == source
        assert header.destination[1] == destination[1]
    assert build_v1(("192.0.2.1", 1), ("192.0.2.2", 2)) == b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"


def test_random_bytes_never_crash_the_parser() -> None:
    rng = random.Random(11)
    prefixes = [b"", b"PROXY ", b"PROXY TCP4 ", V2_SIGNATURE, V2_SIGNATURE + b"\x21\x11"]
    for _ in range(3000):
        data = rng.choice(prefixes) + bytes(rng.randrange(256) for _ in range(rng.randint(0, 60)))
        try:
            result = parse_header(data)
        except ProxyHeaderError:
            continue
        if result is not NEED_DATA:
            header, leftover = result
            assert data[header.length:] == leftover


def test_health_check_preambles_carry_no_client() -> None:
    from gproxy.proxy_protocol import check_preamble

    assert check_preamble(None) == b""
    v1_header, _ = feed([check_preamble("v1")])
    v2_header, _ = feed([check_preamble("v2")])
    assert v1_header.local and v1_header.source is None
    assert v2_header.local and v2_header.source is None
