"""Load-balancing algorithms: choose one server among the usable candidates.

Pure and on the hot path: no I/O, no clock, no allocation per pick in the
common case. A balancer only sees *candidates*: the servers of the group in
use (actives, or backups) that the caller found usable, in config order, each
exposing `id`, `weight` (effective weight, 0 = excluded), `cur_conns`
(connections + queued requests) and `maxconn` (0 = unlimited). Per-server
state is keyed by `id`, so servers may come and go between two picks.

Algorithms (haproxy.md 2.12):
- roundrobin: smooth weighted round robin (nginx's): add each weight to the
  server's current score, take the highest (ties: lowest id), subtract the
  total. Exact ratios over each cycle of `sum(weights)` picks, interleaved.
- static-rr: HAProxy's precomputed map (lb_map.c's interleaving, which gives
  HAProxy's observed `e1 e1 e3 e1 e2 e3` for 3/1/2), rebuilt when the
  candidates or their weights change.
- leastconn: lowest HAProxy key (0 when idle, else (conns + 1) / weight),
  round robin among equals.
- first: lowest id with a free slot (cur_conns < maxconn, or maxconn 0).
- source / uri: hash of the key. map-based: hash modulo the total weight,
  walking the candidates' weights (stable while the set is stable);
  consistent: a hash ring, so a server leaving only moves its own keys.

`avoid` (redispatch after a failure) is skipped whenever another server is
possible. Round robin, static-rr and leastconn also skip full servers
(cur_conns >= maxconn > 0) while a free one exists; when all are full they
pick as usual so the caller queues. Hashes and `first` never skip full
servers: the caller queues on the chosen one, as HAProxy does.
"""

from __future__ import annotations

import bisect
import zlib
from math import gcd
from typing import Protocol, Sequence


class Candidate(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def weight(self) -> int: ...
    @property
    def cur_conns(self) -> int: ...
    @property
    def maxconn(self) -> int: ...


# Consistent hashing: points on the ring per unit of (gcd-reduced) weight.
# ~100 keeps the spread within a few percent; weights are divided by their
# gcd first, so 20:10 costs no more ring than 2:1.
CHASH_POINTS_PER_WEIGHT = 100
# Above this many ring points, weights are scaled down (ratios kept roughly)
# so that rebuilding the ring on a server state change stays cheap.
CHASH_MAX_POINTS = 200_000

_MASK32 = 0xFFFFFFFF

# Candidate selection tiers, from strictest to loosest.
_TIER_FREE = 0  # weight > 0, not avoided, not full
_TIER_NOT_AVOIDED = 1  # weight > 0, not avoided
_TIER_ANY = 2  # weight > 0
_NO_TIER = -1


def _is_full(c: Candidate) -> bool:
    return c.maxconn > 0 and c.cur_conns >= c.maxconn


def _select_tier(candidates: Sequence[Candidate], avoid: Candidate | None, skip_full: bool) -> int:
    """The strictest tier that leaves at least one candidate."""
    best = _NO_TIER
    for c in candidates:
        if c.weight <= 0:
            continue
        if c is avoid:
            if best == _NO_TIER:
                best = _TIER_ANY
            continue
        if not skip_full:
            return _TIER_NOT_AVOIDED
        if not _is_full(c):
            return _TIER_FREE
        best = _TIER_NOT_AVOIDED
    return best


def _in_tier(c: Candidate, tier: int, avoid: Candidate | None) -> bool:
    if c.weight <= 0:
        return False
    if tier == _TIER_ANY:
        return True
    if c is avoid:
        return False
    return tier == _TIER_NOT_AVOIDED or not _is_full(c)


def hash_key(key: bytes) -> int:
    """A stable 32-bit hash (crc32, then murmur3's finalizer so that keys
    differing in one byte spread over all residues; never Python's salted hash())."""
    h = zlib.crc32(key)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK32
    h ^= h >> 16
    return h


class Balancer:
    """Base of the algorithms. `dynamic`: weights may change at runtime."""

    dynamic: bool = False

    def pick(
        self,
        candidates: Sequence[Candidate],
        key: bytes | None = None,
        avoid: Candidate | None = None,
    ) -> Candidate | None:
        raise NotImplementedError


class _Signature:
    """Remembers the (id, weight) list of the last candidates, to tell without
    allocating whether a precomputed structure must be rebuilt."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.weights: list[int] = []

    def matches(self, candidates: Sequence[Candidate]) -> bool:
        ids, weights = self.ids, self.weights
        if len(candidates) != len(ids):
            return False
        for i, c in enumerate(candidates):
            if c.id != ids[i] or c.weight != weights[i]:
                return False
        return True

    def remember(self, candidates: Sequence[Candidate]) -> None:
        self.ids = [c.id for c in candidates]
        self.weights = [c.weight for c in candidates]


class RoundRobin(Balancer):
    """Smooth weighted round robin; see the module docstring."""

    dynamic = True

    def __init__(self) -> None:
        self._score: dict[int, int] = {}
        self._seen: dict[int, int] = {}  # id -> number of the last pick it took part in
        self._picks = 0

    def pick(
        self,
        candidates: Sequence[Candidate],
        key: bytes | None = None,
        avoid: Candidate | None = None,
    ) -> Candidate | None:
        tier = _select_tier(candidates, avoid, skip_full=True)
        if tier == _NO_TIER:
            return None
        score, seen = self._score, self._seen
        previous, self._picks = self._picks, self._picks + 1
        now = self._picks
        total = 0
        best: Candidate | None = None
        best_score = 0
        present = 0
        for c in candidates:
            sid = c.id
            if seen.get(sid) != previous:
                score[sid] = 0  # joined (or came back) since the last pick: start afresh
            seen[sid] = now
            present += 1
            # _in_tier() inlined: this loop runs for every candidate of every request.
            weight = c.weight
            if weight <= 0:
                continue
            if tier != _TIER_ANY:
                if c is avoid:
                    continue
                if tier == _TIER_FREE and c.maxconn > 0 and c.cur_conns >= c.maxconn:
                    continue
            current = score[sid] + weight
            score[sid] = current
            total += weight
            if best is None or current > best_score or (current == best_score and sid < best.id):
                best, best_score = c, current
        assert best is not None
        score[best.id] = best_score - total
        if len(seen) > present:
            self._forget_absent(now)
        return best

    def _forget_absent(self, now: int) -> None:
        for sid in [sid for sid, at in self._seen.items() if at != now]:
            del self._seen[sid]
            self._score.pop(sid, None)


class StaticRoundRobin(Balancer):
    """HAProxy's static-rr map: one slot per unit of weight, interleaved."""

    dynamic = False

    def __init__(self) -> None:
        self._signature = _Signature()
        self._map: list[int] = []  # indexes into the candidates
        self._position = 0

    def pick(
        self,
        candidates: Sequence[Candidate],
        key: bytes | None = None,
        avoid: Candidate | None = None,
    ) -> Candidate | None:
        tier = _select_tier(candidates, avoid, skip_full=True)
        if tier == _NO_TIER:
            return None
        if not self._signature.matches(candidates):
            self._signature.remember(candidates)
            self._map = build_static_map([c.weight for c in candidates])
        slots = self._map
        size = len(slots)
        # Walk the map from the current position to the first slot allowed by
        # the tier; at most one full turn.
        for step in range(size):
            c = candidates[slots[(self._position + step) % size]]
            if _in_tier(c, tier, avoid):
                self._position = (self._position + step + 1) % size
                return c
        return None  # unreachable: the tier guarantees a candidate


def _c_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, like C (the map algorithm's)."""
    q = abs(a) // b
    return q if a >= 0 else -q


def build_static_map(weights: Sequence[int]) -> list[int]:
    """HAProxy's static map (lb_map.c): `sum(weights)` slots holding indexes
    of `weights`; each turn every server adds its weight to a score and the
    first with the highest `(score + total) / total` takes the slot."""
    total = sum(w for w in weights if w > 0)
    if total == 0:
        return []
    scores = [0] * len(weights)
    slots: list[int] = []
    for _ in range(total):
        best = -1
        best_v = 0
        for i, w in enumerate(weights):
            if w <= 0:
                continue
            if total == 1:
                best = i
                break
            scores[i] += w
            v = _c_div(scores[i] + total, total)
            if best < 0 or v > best_v:
                best, best_v = i, v
        slots.append(best)
        scores[best] -= total
    return slots


class LeastConn(Balancer):
    """Fewest connections per unit of weight; round robin among equals."""

    dynamic = True

    def __init__(self) -> None:
        self._last_id: int | None = None

    @staticmethod
    def _less(a: Candidate, b: Candidate) -> bool | None:
        """a's load < b's (True), > (False) or equal (None). HAProxy's key is 0
        for an idle server and (inflight + 1) / weight otherwise (lb_fwlc.c)."""
        ca, cb = a.cur_conns, b.cur_conns
        if ca == 0 or cb == 0:
            if ca == cb:
                return None
            return ca == 0
        left, right = (ca + 1) * b.weight, (cb + 1) * a.weight
        if left == right:
            return None
        return left < right

    def pick(
        self,
        candidates: Sequence[Candidate],
        key: bytes | None = None,
        avoid: Candidate | None = None,
    ) -> Candidate | None:
        tier = _select_tier(candidates, avoid, skip_full=True)
        if tier == _NO_TIER:
            return None
        last = self._last_id
        best: Candidate | None = None  # least loaded, lowest id
        after: Candidate | None = None  # least loaded with id > last, lowest id
        for c in candidates:
            if not _in_tier(c, tier, avoid):
                continue
            if best is None:
                best = c
            else:
                order = self._less(c, best)
                if order or (order is None and c.id < best.id):
                    best = c
            if last is not None and c.id > last:
                if after is None:
                    after = c
                else:
                    order = self._less(c, after)
                    if order or (order is None and c.id < after.id):
                        after = c
        assert best is not None
        # Rotate among equals: the next one after the last pick, if as good.
        chosen = after if after is not None and self._less(after, best) is None else best
        self._last_id = chosen.id
        return chosen


class First(Balancer):
    """The lowest id with a free slot; all full: the lowest id (the caller queues)."""

    dynamic = True

    def pick(
        self,
        candidates: Sequence[Candidate],
        key: bytes | None = None,
        avoid: Candidate | None = None,
    ) -> Candidate | None:
        tier = _select_tier(candidates, avoid, skip_full=True)
        if tier == _NO_TIER:
            return None
        best: Candidate | None = None
        for c in candidates:
            if _in_tier(c, tier, avoid) and (best is None or c.id < best.id):
                best = c
        return best


class MapHash(Balancer):
    """`hash-type map-based`: hash(key) mod total weight, walking the weights."""

    dynamic = False

    def pick(
        self,
        candidates: Sequence[Candidate],
        key: bytes | None = None,
        avoid: Candidate | None = None,
    ) -> Candidate | None:
        tier = _select_tier(candidates, avoid, skip_full=False)
        if tier == _NO_TIER:
            return None
        total = 0
        for c in candidates:
            if _in_tier(c, tier, avoid):
                total += c.weight
        point = hash_key(key or b"") % total
        for c in candidates:
            if _in_tier(c, tier, avoid):
                point -= c.weight
                if point < 0:
                    return c
        return None  # unreachable


class ConsistentHash(Balancer):
    """`hash-type consistent`: a ring of points per server; the key goes to
    the first point at or after its hash. Only the leaving server's keys move."""

    dynamic = True

    def __init__(self) -> None:
        self._signature = _Signature()
        self._points: list[int] = []
        self._owners: list[int] = []  # index into the candidates, per point

    def _rebuild(self, candidates: Sequence[Candidate]) -> None:
        self._signature.remember(candidates)
        weights = [max(c.weight, 0) for c in candidates]
        units = _reduce_weights(weights)
        ring: list[tuple[int, int]] = []
        for index, c in enumerate(candidates):
            for replica in range(units[index] * CHASH_POINTS_PER_WEIGHT):
                # the id, not the position, names the point: stable when others leave
                ring.append((hash_key(b"%d-%d" % (c.id, replica)), index))
        ring.sort()
        self._points = [p for p, _ in ring]
        self._owners = [i for _, i in ring]

    def pick(
        self,
        candidates: Sequence[Candidate],
        key: bytes | None = None,
        avoid: Candidate | None = None,
    ) -> Candidate | None:
        tier = _select_tier(candidates, avoid, skip_full=False)
        if tier == _NO_TIER:
            return None
        if not self._signature.matches(candidates):
            self._rebuild(candidates)
        points, owners = self._points, self._owners
        size = len(points)
        start = bisect.bisect_left(points, hash_key(key or b""))
        for step in range(size):
            c = candidates[owners[(start + step) % size]]
            if _in_tier(c, tier, avoid):
                return c
        return None  # unreachable


def _reduce_weights(weights: list[int]) -> list[int]:
    """Weights divided by their gcd, scaled down if the ring would be too big."""
    divisor = 0
    for w in weights:
        divisor = gcd(divisor, w)
    if divisor == 0:
        return [0] * len(weights)
    units = [w // divisor for w in weights]
    total = sum(units) * CHASH_POINTS_PER_WEIGHT
    if total > CHASH_MAX_POINTS:
        scale = CHASH_MAX_POINTS / total
        units = [max(1, round(u * scale)) if u else 0 for u in units]
    return units


ALGORITHMS = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri")
HASH_TYPES = ("map-based", "consistent")


def make_balancer(algorithm: str, hash_type: str = "map-based") -> Balancer:
    """A fresh balancer for one backend (or one server group of it)."""
    if hash_type not in HASH_TYPES:
        raise ValueError(f"unknown hash type {hash_type!r} (expected one of {', '.join(HASH_TYPES)})")
    if algorithm == "roundrobin":
        return RoundRobin()
    if algorithm == "static-rr":
        return StaticRoundRobin()
    if algorithm == "leastconn":
        return LeastConn()
    if algorithm == "first":
        return First()
    if algorithm in ("source", "uri"):
        return ConsistentHash() if hash_type == "consistent" else MapHash()
    raise ValueError(f"unknown balance algorithm {algorithm!r} (expected one of {', '.join(ALGORITHMS)})")
