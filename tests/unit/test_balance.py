"""The load-balancing algorithms (gproxy/balance.py), haproxy.md 2.12."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from gproxy.balance import (
    ConsistentHash,
    LeastConn,
    MapHash,
    RoundRobin,
    StaticRoundRobin,
    build_static_map,
    hash_key,
    make_balancer,
)


@dataclass
class Srv:
    id: int
    weight: int = 1
    cur_conns: int = 0
    maxconn: int = 0


def servers(*weights: int) -> list[Srv]:
    return [Srv(i + 1, w) for i, w in enumerate(weights)]


def picks(balancer, candidates, n, **kw) -> list[int]:
    return [balancer.pick(candidates, **kw).id for _ in range(n)]


def key_of(i: int) -> bytes:
    return bytes([10, 0, i // 256, i % 256])  # an IPv4 address, as `source` gets it


# -- factory


@pytest.mark.parametrize(
    "algorithm, hash_type, cls, dynamic",
    [
        ("roundrobin", "map-based", RoundRobin, True),
        ("static-rr", "map-based", StaticRoundRobin, False),
        ("leastconn", "map-based", LeastConn, True),
        ("source", "map-based", MapHash, False),
        ("uri", "map-based", MapHash, False),
        ("source", "consistent", ConsistentHash, True),
        ("uri", "consistent", ConsistentHash, True),
    ],
)
def test_make_balancer(algorithm, hash_type, cls, dynamic):
    b = make_balancer(algorithm, hash_type)
    assert isinstance(b, cls) and b.dynamic is dynamic


def test_make_balancer_refuses_unknown_names():
    with pytest.raises(ValueError):
        make_balancer("random")
    with pytest.raises(ValueError):
        make_balancer("source", "ring")


@pytest.mark.parametrize("algorithm", ["roundrobin", "static-rr", "leastconn", "first", "source", "uri"])
def test_no_candidate_gives_none(algorithm):
    b = make_balancer(algorithm)
    assert b.pick([], key=b"k") is None
    assert b.pick([Srv(1, 0), Srv(2, 0)], key=b"k") is None  # weight 0 is excluded


@pytest.mark.parametrize("algorithm", ["roundrobin", "static-rr", "leastconn", "first", "source", "uri"])
def test_weight_zero_is_never_picked(algorithm):
    b = make_balancer(algorithm)
    cands = [Srv(1, 0), Srv(2, 1), Srv(3, 0)]
    assert {b.pick(cands, key=key_of(i)).id for i in range(50)} == {2}


@pytest.mark.parametrize("algorithm", ["roundrobin", "static-rr", "leastconn", "first", "source", "uri"])
def test_avoid_is_honoured_when_another_server_exists(algorithm):
    b = make_balancer(algorithm)
    cands = servers(1, 1, 1)
    for i in range(30):
        assert b.pick(cands, key=key_of(i), avoid=cands[0]).id != 1
    # the only server left is picked even if avoided
    assert b.pick(cands[:1], key=b"k", avoid=cands[0]).id == 1


# -- roundrobin


def test_roundrobin_seed_weights_exact_ratio():
    b = RoundRobin()
    counts = Counter(picks(b, servers(256, 128, 1), 3850))
    assert counts == {1: 2560, 2: 1280, 3: 10}


def test_roundrobin_smooth_interleaving():
    b = RoundRobin()
    seq = picks(b, servers(3, 1, 2), 12)
    assert seq[:6] == [1, 3, 1, 2, 3, 1]  # nginx's order, haproxy.md 2.12
    assert seq[6:] == seq[:6]
    assert Counter(seq[:6]) == {1: 3, 2: 1, 3: 2}
    runs = "".join(map(str, seq))
    assert "111" not in runs


def test_roundrobin_equal_weights_rotate():
    assert picks(RoundRobin(), servers(1, 1, 1), 6) == [1, 2, 3, 1, 2, 3]


def test_roundrobin_weight_change_takes_effect():
    b = RoundRobin()
    cands = servers(1, 1)
    assert Counter(picks(b, cands, 10)) == {1: 5, 2: 5}
    cands[1].weight = 3
    assert Counter(picks(b, cands, 40)) == {1: 10, 2: 30}


def test_roundrobin_servers_leaving_and_joining():
    b = RoundRobin()
    cands = servers(1, 1, 1)
    picks(b, cands, 4)
    assert set(picks(b, cands[:2], 4)) == {1, 2}
    again = picks(b, cands, 30)
    assert Counter(again) == {1: 10, 2: 10, 3: 10}


def test_roundrobin_skips_full_servers_while_one_is_free():
    b = RoundRobin()
    cands = servers(1, 1, 1)
    cands[0].maxconn, cands[0].cur_conns = 2, 2
    assert set(picks(b, cands, 10)) == {2, 3}
    for c in cands:
        c.maxconn, c.cur_conns = 1, 1
    assert b.pick(cands) is not None  # all full: still a pick, the caller queues


# -- static-rr


def test_static_map_is_haproxys_observed_order():
    assert build_static_map([3, 1, 2]) == [0, 0, 2, 0, 1, 2]  # e1 e1 e3 e1 e2 e3
    assert build_static_map([0, 1]) == [1]
    assert build_static_map([0, 0]) == []


def test_static_rr_sequence_and_ratios():
    b = StaticRoundRobin()
    assert picks(b, servers(3, 1, 2), 12) == [1, 1, 3, 1, 2, 3] * 2
    assert Counter(picks(StaticRoundRobin(), servers(256, 128, 1), 3850)) == {1: 2560, 2: 1280, 3: 10}


def test_static_rr_rebuilds_when_the_set_changes():
    b = StaticRoundRobin()
    cands = servers(1, 1, 1)
    picks(b, cands, 2)
    assert set(picks(b, [cands[0], cands[2]], 6)) == {1, 3}
    cands[1].weight = 0
    assert 2 not in picks(b, cands, 6)


# -- leastconn


def test_leastconn_picks_the_least_loaded():
    cands = servers(1, 1, 1)
    cands[0].cur_conns, cands[1].cur_conns, cands[2].cur_conns = 5, 1, 3
    assert LeastConn().pick(cands).id == 2


def test_leastconn_accounts_for_weight():
    cands = servers(1, 4)
    cands[0].cur_conns, cands[1].cur_conns = 2, 4  # 3/1 vs 5/4
    assert LeastConn().pick(cands).id == 2


def test_leastconn_rotates_among_equals():
    b = LeastConn()
    cands = servers(1, 1, 1)
    assert picks(b, cands, 6) == [1, 2, 3, 1, 2, 3]
    cands[1].cur_conns = 7
    assert picks(b, cands, 4) == [1, 3, 1, 3]


def test_leastconn_follows_connections_as_they_open():
    b = LeastConn()
    cands = servers(1, 1)
    for _ in range(6):
        b.pick(cands).cur_conns += 1
    assert [c.cur_conns for c in cands] == [3, 3]


# -- first


def test_first_fills_servers_in_id_order():
    b = make_balancer("first")
    cands = [Srv(1, maxconn=2), Srv(2, maxconn=2), Srv(3, maxconn=0)]
    chosen = []
    for _ in range(6):
        c = b.pick(cands)
        c.cur_conns += 1
        chosen.append(c.id)
    assert chosen == [1, 1, 2, 2, 3, 3]


def test_first_all_full_returns_the_lowest_id():
    b = make_balancer("first")
    cands = [Srv(2, maxconn=1, cur_conns=1), Srv(1, maxconn=1, cur_conns=1)]
    assert b.pick(cands).id == 1


# -- hashes (source, uri)


def test_hash_is_stable_and_not_pythons_salted_hash():
    assert hash_key(b"10.0.0.1") == hash_key(b"10.0.0.1")
    assert hash_key(b"10.0.0.1") != hash_key(b"10.0.0.2")
    assert hash_key(b"") == 0  # crc32 of nothing, mixed: a fixed value


@pytest.mark.parametrize("hash_type", ["map-based", "consistent"])
def test_source_same_key_same_server(hash_type):
    b = make_balancer("source", hash_type)
    cands = servers(1, 1, 1, 1)
    for i in range(40):
        first = b.pick(cands, key=key_of(i)).id
        assert all(b.pick(cands, key=key_of(i)).id == first for _ in range(3))


@pytest.mark.parametrize("hash_type", ["map-based", "consistent"])
def test_hash_distribution_follows_weights(hash_type):
    b = make_balancer("source", hash_type)
    cands = servers(1, 1, 2)
    counts = Counter(b.pick(cands, key=key_of(i)).id for i in range(4000))
    # expected 1000 / 1000 / 2000; allow a generous margin, this is a hash
    assert 700 < counts[1] < 1300 and 700 < counts[2] < 1300 and 1600 < counts[3] < 2400


@pytest.mark.parametrize("hash_type", ["map-based", "consistent"])
def test_uri_same_path_same_server(hash_type):
    b = make_balancer("uri", hash_type)
    cands = servers(1, 1, 1)
    paths = [b"/app/%d/index.html" % i for i in range(60)]
    assert [b.pick(cands, key=p).id for p in paths] == [b.pick(cands, key=p).id for p in paths]
    assert len({b.pick(cands, key=p).id for p in paths}) == 3


def test_consistent_hash_moves_only_the_leaving_servers_keys():
    b = ConsistentHash()
    cands = servers(1, 1, 1, 1)
    before = {i: b.pick(cands, key=key_of(i)).id for i in range(1000)}
    remaining = [c for c in cands if c.id != 3]
    after = {i: b.pick(remaining, key=key_of(i)).id for i in range(1000)}
    moved = [i for i in before if before[i] != after[i]]
    assert moved and all(before[i] == 3 for i in moved)


def test_map_based_hash_is_stable_while_the_set_is_stable():
    b = MapHash()
    cands = servers(2, 1)
    first = [b.pick(cands, key=key_of(i)).id for i in range(100)]
    picks(RoundRobin(), cands, 5)  # unrelated activity changes nothing
    assert [b.pick(cands, key=key_of(i)).id for i in range(100)] == first


def test_hashes_do_not_skip_full_servers():
    b = MapHash()
    cands = servers(1, 1)
    target = b.pick(cands, key=b"client").id
    cands[target - 1].maxconn = cands[target - 1].cur_conns = 1
    assert b.pick(cands, key=b"client").id == target  # the caller queues on it
