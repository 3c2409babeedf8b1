"""The heartbeat packet codec: authenticated datagrams in, typed messages out.

Sans-IO (DESIGN.md rule 1): `encode` returns bytes, `decode` takes bytes; no
sockets, no clock. Every cluster message travels in one of these datagrams,
not only heartbeats: the controller's CIB updates, actions and results too.

Wire format (all integers big-endian)::

    offset  size  field
    0       4     magic and version: b"GHB1"
    4       1     key id (0..255; authkeys allows 0..15, as Heartbeat)
    5       4     length N of the payload
    9       N     payload: canonical JSON of the message fields
                  (sorted keys, compact separators, ASCII only)
    9+N     32    HMAC-SHA256 tag over bytes 0..9+N (everything before it)

`decode` checks, in this order, and raises `PacketRejected(reason)`:

1. the size (at least a header and a tag, at most MAX_DATAGRAM) and the magic:
   "malformed" (not one of our packets, or another version of them);
2. the key id among the accepted keys: "unknown-key";
3. the HMAC tag, compared in constant time: "bad-hmac". Truncation lands
   here too: whatever the last 32 bytes are, they are not the tag;
4. only then, the length field, the JSON and the field types: "malformed".

So nothing of an unauthenticated datagram is parsed beyond the key id, and a
byte changed anywhere past the magic and the key id is a "bad-hmac".

Replay protection is not the codec's: `ReplayGuard` tracks, per sender, the
boot generation and the sequence numbers already accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from dataclasses import dataclass
from typing import Any

from heartbeat.errors import PacketRejected

MAGIC = b"GHB1"
# The largest datagram we send or accept: below the 65507-byte UDP payload
# limit, with room for IP options. A CIB of a 16-node cluster fits easily.
MAX_DATAGRAM = 60_000
_HEADER = struct.Struct("!4sBI")  # magic, key id, payload length
HEADER_SIZE = _HEADER.size  # 9
TAG_SIZE = hashlib.sha256().digest_size  # 32
MIN_DATAGRAM = HEADER_SIZE + TAG_SIZE
MAX_KEY_ID = 255  # one byte on the wire

# The kind of the periodic heartbeat message; every other kind is opaque here.
HEARTBEAT = "hb"
# Generations and sequence numbers stay within a signed 64-bit integer, so
# any peer (or a future C implementation) can hold them.
MAX_COUNTER = 2**63 - 1

_FIELDS = frozenset({"kind", "sender", "cluster", "generation", "seq", "body"})

# Reasons `decode` and `ReplayGuard.check` raise (the transport adds
# "unknown-node" and "wrong-cluster", which need the configuration).
MALFORMED = "malformed"
UNKNOWN_KEY = "unknown-key"
BAD_HMAC = "bad-hmac"
REPLAY = "replay"


@dataclass(frozen=True, slots=True)
class Message:
    """One cluster message. `body` must be JSON-serialisable."""

    kind: str  # "hb" (heartbeat), "cib", "action", "result", "request", ...
    sender: str  # node name
    cluster: str  # cluster name: another cluster's packets are dropped
    generation: int  # the sender's boot generation (grows at every start)
    seq: int  # per-sender sequence number, strictly increasing within a generation
    body: dict[str, Any]


def _sign(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _canonical_json(msg: Message) -> bytes:
    fields = {
        "kind": msg.kind,
        "sender": msg.sender,
        "cluster": msg.cluster,
        "generation": msg.generation,
        "seq": msg.seq,
        "body": msg.body,
    }
    try:
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"message body is not JSON-serialisable: {exc}") from None
    return text.encode("ascii")


def _check_fields(msg: Message) -> None:
    """Refuse to encode what `decode` would reject as malformed."""
    for name in ("kind", "sender", "cluster"):
        value = getattr(msg, name)
        if not isinstance(value, str) or (name != "cluster" and not value):
            raise ValueError(f"message {name} must be a non-empty string, got {value!r}")
    for name in ("generation", "seq"):
        value = getattr(msg, name)
        if type(value) is not int or not 0 <= value <= MAX_COUNTER:
            raise ValueError(f"message {name} must be an integer in 0..2**63-1, got {value!r}")
    if not isinstance(msg.body, dict):
        raise ValueError(f"message body must be a dict, got {type(msg.body).__name__}")


def encode(msg: Message, key_id: int, key: bytes) -> bytes:
    """The signed datagram carrying `msg`; ValueError if it would exceed
    MAX_DATAGRAM, or if a field cannot be carried (see `Message`)."""
    if not 0 <= key_id <= MAX_KEY_ID:
        raise ValueError(f"key id {key_id} is outside 0..{MAX_KEY_ID}")
    _check_fields(msg)
    payload = _canonical_json(msg)
    size = MIN_DATAGRAM + len(payload)
    if size > MAX_DATAGRAM:
        raise ValueError(f"message of {size} bytes exceeds the {MAX_DATAGRAM}-byte datagram limit")
    signed = _HEADER.pack(MAGIC, key_id, len(payload)) + payload
    return signed + _sign(key, signed)


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; json.loads accepts them unless told not to.
    raise ValueError(f"{name} is not JSON")


def _parse_payload(payload: bytes) -> Message:
    try:
        fields = json.loads(payload.decode("ascii"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PacketRejected(MALFORMED, f"payload is not JSON: {exc}") from None
    if not isinstance(fields, dict) or set(fields) != _FIELDS:
        raise PacketRejected(MALFORMED, "payload does not hold exactly the message fields")
    msg = Message(**fields)
    try:
        _check_fields(msg)
    except ValueError as exc:
        raise PacketRejected(MALFORMED, str(exc)) from None
    return msg


def decode(datagram: bytes, keys: dict[int, bytes]) -> Message:
    """The message in `datagram`, authenticated with one of `keys` (key id ->
    secret); raise PacketRejected("malformed" | "unknown-key" | "bad-hmac")."""
    size = len(datagram)
    if size < MIN_DATAGRAM or size > MAX_DATAGRAM:
        raise PacketRejected(MALFORMED, f"{size} bytes, expected {MIN_DATAGRAM}..{MAX_DATAGRAM}")
    magic, key_id, length = _HEADER.unpack_from(datagram)
    if magic != MAGIC:
        raise PacketRejected(MALFORMED, "bad magic")
    key = keys.get(key_id)
    if key is None:
        raise PacketRejected(UNKNOWN_KEY, f"key id {key_id}")
    signed, tag = datagram[:-TAG_SIZE], datagram[-TAG_SIZE:]
    if not hmac.compare_digest(_sign(key, signed), tag):
        raise PacketRejected(BAD_HMAC, f"key id {key_id}")
    # Authenticated from here on: a bad length is a peer's bug, not an attack.
    if length != len(signed) - HEADER_SIZE:
        raise PacketRejected(MALFORMED, f"length field {length}, payload of {len(signed) - HEADER_SIZE} bytes")
    return _parse_payload(signed[HEADER_SIZE:])


# ---- replay protection ----------------------------------------------------

# How far behind the highest sequence number a late (reordered) message is
# still accepted, once: the width of the bitmap of recently seen numbers.
REPLAY_WINDOW = 64
_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1


@dataclass(slots=True)
class _SenderWindow:
    generation: int
    highest: int  # the highest sequence number accepted in this generation
    seen: int  # bit i set: highest - i was accepted


class ReplayGuard:
    """Accept each (sender, generation, seq) at most once.

    A newer generation means the peer restarted: its window starts afresh.
    An older generation is a replay. Within the current generation, a number
    above the highest seen is accepted; one up to REPLAY_WINDOW - 1 below it
    is accepted once (UDP may reorder); anything older is a replay.
    `check` records what it accepts, so call it only on authenticated
    messages from known senders (it keeps one small entry per sender).
    """

    def __init__(self) -> None:
        self._senders: dict[str, _SenderWindow] = {}

    def check(self, msg: Message) -> None:
        """Record `msg` as seen; raise PacketRejected("replay") if it was."""
        window = self._senders.get(msg.sender)
        if window is None or msg.generation > window.generation:
            self._senders[msg.sender] = _SenderWindow(msg.generation, msg.seq, 1)
            return
        if msg.generation < window.generation:
            raise PacketRejected(REPLAY, f"{msg.sender}: generation {msg.generation} < {window.generation}")
        if msg.seq > window.highest:
            shift = msg.seq - window.highest
            window.seen = ((window.seen << shift) | 1) & _WINDOW_MASK if shift < REPLAY_WINDOW else 1
            window.highest = msg.seq
            return
        behind = window.highest - msg.seq
        if behind >= REPLAY_WINDOW:
            raise PacketRejected(REPLAY, f"{msg.sender}: seq {msg.seq} is older than the window")
        bit = 1 << behind
        if window.seen & bit:
            raise PacketRejected(REPLAY, f"{msg.sender}: seq {msg.seq} already seen")
        window.seen |= bit

    def generation(self, sender: str) -> int | None:
        """The current generation of `sender` (None if never heard)."""
        window = self._senders.get(sender)
        return None if window is None else window.generation

    def forget(self, sender: str) -> None:
        """Drop `sender`'s window (a node removed from the configuration)."""
        self._senders.pop(sender, None)
