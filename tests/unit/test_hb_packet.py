"""The heartbeat packet codec and replay guard (heartbeat/protocol/packet.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct

import pytest

from heartbeat.errors import PacketRejected
from heartbeat.protocol import HEARTBEAT, MAX_DATAGRAM, REPLAY_WINDOW, Message, ReplayGuard, decode, encode
from heartbeat.protocol.packet import HEADER_SIZE, MAGIC, MIN_DATAGRAM, TAG_SIZE

KEY1 = b"first secret"
KEY2 = b"second secret"
KEYS = {1: KEY1, 2: KEY2}


def msg(seq: int = 1, generation: int = 3, sender: str = "n1", kind: str = HEARTBEAT, body: dict | None = None) -> Message:
    return Message(kind, sender, "esup-proxy", generation, seq, {"st": "active"} if body is None else body)


def reason_of(datagram: bytes, keys: dict[int, bytes] = KEYS) -> str:
    with pytest.raises(PacketRejected) as info:
        decode(datagram, keys)
    return info.value.reason


def forge(payload: bytes, key: bytes = KEY1, key_id: int = 1, length: int | None = None) -> bytes:
    """A correctly signed datagram around an arbitrary payload."""
    signed = MAGIC + struct.pack("!BI", key_id, len(payload) if length is None else length) + payload
    return signed + hmac.new(key, signed, hashlib.sha256).digest()


# -- round trip and layout


def test_round_trip_of_every_field():
    original = msg(seq=42, generation=7, kind="cib",
                   body={"version": [0, 7, 3], "nodes": {"n1": "online"}, "text": "été", "none": None})
    assert decode(encode(original, 2, KEY2), KEYS) == original


def test_wire_layout_magic_key_id_length_canonical_json_and_tag():
    datagram = encode(msg(body={"b": 1, "a": [1, 2]}), 1, KEY1)
    assert datagram[:4] == b"GHB1" and datagram[4] == 1
    (length,) = struct.unpack("!I", datagram[5:9])
    payload = datagram[HEADER_SIZE:HEADER_SIZE + length]
    assert len(datagram) == HEADER_SIZE + length + TAG_SIZE
    assert payload == (b'{"body":{"a":[1,2],"b":1},"cluster":"esup-proxy","generation":3,'
                       b'"kind":"hb","sender":"n1","seq":1}')
    assert datagram[-TAG_SIZE:] == hmac.new(KEY1, datagram[:-TAG_SIZE], hashlib.sha256).digest()


def test_encoding_is_deterministic_whatever_the_body_key_order():
    a = encode(msg(body={"x": 1, "y": {"b": 2, "a": 1}}), 1, KEY1)
    b = encode(msg(body={"y": {"a": 1, "b": 2}, "x": 1}), 1, KEY1)
    assert a == b


def test_a_heartbeat_is_small():
    assert len(encode(msg(), 1, KEY1)) < 200


def test_encode_refuses_oversized_messages_but_accepts_the_limit():
    overhead = len(encode(msg(body={"pad": ""}), 1, KEY1))
    fits = msg(body={"pad": "x" * (MAX_DATAGRAM - overhead)})
    assert len(encode(fits, 1, KEY1)) == MAX_DATAGRAM
    with pytest.raises(ValueError, match="exceeds"):
        encode(msg(body={"pad": "x" * (MAX_DATAGRAM - overhead + 1)}), 1, KEY1)


@pytest.mark.parametrize("bad", [
    msg(body={"x": object()}),
    msg(body={"x": float("nan")}),
    msg(seq=-1),
    msg(generation=2**63),
    Message("hb", "", "c", 1, 1, {}),
    Message("hb", "n1", "c", True, 1, {}),  # a bool is not a generation
    Message("hb", "n1", "c", 1, 1, ["not", "a", "dict"]),  # type: ignore[arg-type]
])
def test_encode_refuses_what_decode_would_reject(bad):
    with pytest.raises(ValueError):
        encode(bad, 1, KEY1)


def test_encode_refuses_a_key_id_that_does_not_fit_a_byte():
    with pytest.raises(ValueError):
        encode(msg(), 256, KEY1)


# -- authentication


def test_tampering_any_byte_is_detected():
    datagram = encode(msg(body={"st": "active", "load": [0.1, 0.2]}), 1, KEY1)
    for i in range(len(datagram)):
        tampered = bytearray(datagram)
        tampered[i] ^= 0x01
        reason = reason_of(bytes(tampered))
        if i < len(MAGIC):
            assert reason == "malformed", i  # not one of our packets any more
        elif i == len(MAGIC):
            assert reason in ("unknown-key", "bad-hmac"), i  # id 0: unknown; id 1 -> 0
        else:
            assert reason == "bad-hmac", i


def test_tampered_key_id_naming_another_accepted_key_is_bad_hmac():
    datagram = bytearray(encode(msg(), 1, KEY1))
    datagram[4] = 2
    assert reason_of(bytes(datagram)) == "bad-hmac"


def test_unknown_key_id():
    assert reason_of(encode(msg(), 9, KEY1)) == "unknown-key"


def test_wrong_key_under_a_known_id():
    assert reason_of(encode(msg(), 1, b"not the shared secret")) == "bad-hmac"


def test_truncated_datagrams_are_rejected():
    datagram = encode(msg(), 1, KEY1)
    for cut in range(len(datagram)):
        reason = reason_of(datagram[:cut])
        assert reason == ("malformed" if cut < MIN_DATAGRAM else "bad-hmac"), cut


def test_trailing_bytes_are_rejected():
    assert reason_of(encode(msg(), 1, KEY1) + b"\x00") == "bad-hmac"


def test_oversized_and_foreign_datagrams_are_malformed():
    assert reason_of(b"x" * (MAX_DATAGRAM + 1)) == "malformed"
    assert reason_of(b">>>\nt=status\nsrc=n1\n<<<\n" + b" " * 40) == "malformed"  # classic Heartbeat
    assert reason_of(b"") == "malformed"


def test_the_payload_is_not_parsed_before_the_tag_is_checked(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("json.loads called on an unauthenticated packet")

    monkeypatch.setattr(json, "loads", boom)
    garbage = MAGIC + struct.pack("!BI", 1, 3) + b"{{{" + b"\x00" * TAG_SIZE
    assert reason_of(garbage) == "bad-hmac"


@pytest.mark.parametrize("payload", [
    b"not json",
    b"[1, 2]",
    b'{"kind": "hb"}',
    json.dumps({"kind": "hb", "sender": "n1", "cluster": "c", "generation": 1, "seq": 1, "body": {},
                "extra": 1}).encode(),
    json.dumps({"kind": "hb", "sender": "n1", "cluster": "c", "generation": "1", "seq": 1, "body": {}}).encode(),
    json.dumps({"kind": "hb", "sender": "n1", "cluster": "c", "generation": 1, "seq": -5, "body": {}}).encode(),
    json.dumps({"kind": "hb", "sender": "n1", "cluster": "c", "generation": 1, "seq": 1, "body": []}).encode(),
    json.dumps({"kind": 7, "sender": "n1", "cluster": "c", "generation": 1, "seq": 1, "body": {}}).encode(),
    b'{"kind":"hb","sender":"n1","cluster":"c","generation":1,"seq":1,"body":{"x":NaN}}',
    b"\xff\xfe",
    b"[" * 50_000,
])
def test_authenticated_but_malformed_payloads(payload):
    assert reason_of(forge(payload)) == "malformed"


def test_authenticated_payload_with_a_lying_length_field_is_malformed():
    payload = encode(msg(), 1, KEY1)[HEADER_SIZE:-TAG_SIZE]
    assert reason_of(forge(payload, length=len(payload) + 1)) == "malformed"
    assert decode(forge(payload), KEYS) == msg()


# -- replay guard


def test_replay_of_an_identical_message_is_rejected():
    guard = ReplayGuard()
    datagram = encode(msg(seq=1), 1, KEY1)
    guard.check(decode(datagram, KEYS))
    with pytest.raises(PacketRejected) as info:
        guard.check(decode(datagram, KEYS))
    assert info.value.reason == "replay"


def test_sequence_numbers_may_skip_forward():
    guard = ReplayGuard()
    for seq in (1, 2, 5, 1000, 10**12):
        guard.check(msg(seq=seq))


def test_reordering_within_the_window_is_accepted_once():
    guard = ReplayGuard()
    guard.check(msg(seq=10))
    guard.check(msg(seq=12))
    guard.check(msg(seq=11))  # late, inside the window
    with pytest.raises(PacketRejected):
        guard.check(msg(seq=11))
    with pytest.raises(PacketRejected):
        guard.check(msg(seq=10))
    guard.check(msg(seq=12 - (REPLAY_WINDOW - 1)))  # the oldest number still in the window
    with pytest.raises(PacketRejected):
        guard.check(msg(seq=12 - REPLAY_WINDOW))  # just outside: rejected even though never seen


def test_the_window_slides_with_big_jumps():
    guard = ReplayGuard()
    guard.check(msg(seq=5))
    guard.check(msg(seq=5 + REPLAY_WINDOW + 10))  # 5 drops out of the window
    with pytest.raises(PacketRejected):
        guard.check(msg(seq=5))
    guard.check(msg(seq=5 + REPLAY_WINDOW + 9))


def test_a_newer_generation_is_a_restart_and_an_older_one_a_replay():
    guard = ReplayGuard()
    guard.check(msg(generation=3, seq=500))
    guard.check(msg(generation=4, seq=1))  # the peer restarted: its numbers start again
    assert guard.generation("n1") == 4
    guard.check(msg(generation=4, seq=2))
    for old in (msg(generation=3, seq=501), msg(generation=3, seq=10**9)):
        with pytest.raises(PacketRejected) as info:
            guard.check(old)
        assert info.value.reason == "replay"


def test_senders_are_tracked_separately_and_can_be_forgotten():
    guard = ReplayGuard()
    guard.check(msg(sender="n1", seq=7))
    guard.check(msg(sender="n2", seq=7))
    assert guard.generation("n3") is None
    guard.forget("n1")
    guard.check(msg(sender="n1", seq=7))
    with pytest.raises(PacketRejected):
        guard.check(msg(sender="n2", seq=7))
