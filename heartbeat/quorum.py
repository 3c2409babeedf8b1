"""Quorum: may this partition run resources? Pure functions, no I/O, no clock.

Clusters of 3 or more nodes use Corosync's votequorum rule: a partition has
quorum when its nodes hold more than half of all configured votes (8 nodes
of one vote: 5). Two nodes cannot have a majority after a split, so a
two-node cluster uses a tie-breaker instead (Heartbeat's ipfail idea): when
the peer is lost, the node that reaches more of the `ping` targets keeps or
takes the resources; on equal counts the preferred node does (best location
scores, else the first in the file). A two-node cluster without `ping`
targets keeps Heartbeat's old rule: each side assumes the other is dead.
"""

from __future__ import annotations

from dataclasses import dataclass

from heartbeat.model import ClusterConfig, LocationConstraint

TWO_NODES = 2


@dataclass(frozen=True)
class Quorum:
    have: bool
    votes: int  # votes of the nodes in this partition
    expected: int  # votes of every configured node
    reason: str = ""

    def as_dict(self) -> dict:
        return {"have": self.have, "votes": self.votes, "expected": self.expected, "reason": self.reason}


def expected_votes(config: ClusterConfig) -> int:
    return sum(n.votes for n in config.nodes)


def preferred_node(config: ClusterConfig) -> str:
    """The node the tie-breaker favours: the highest sum of location scores
    over every constraint, ties (and no constraints) to the first in the file."""
    totals = {n.name: 0 for n in config.nodes}
    for constraint in config.constraints:
        if isinstance(constraint, LocationConstraint) and constraint.node in totals:
            totals[constraint.node] += constraint.score
    order = [n.name for n in config.nodes]
    return max(order, key=lambda n: (totals[n], -order.index(n)))


def compute(config: ClusterConfig, partition: frozenset[str], local: str, *, reach: int | None = None,
            peer_reach: dict[str, int] | None = None) -> Quorum:
    """Quorum of the partition `partition` (the nodes `local` sees, itself
    included). `reach` is how many ping targets `local` reaches now;
    `peer_reach` what each peer last said it reached (absent: never heard)."""
    expected = expected_votes(config)
    members = partition & {n.name for n in config.nodes}
    votes = sum(n.votes for n in config.nodes if n.name in members)
    if len(config.nodes) != TWO_NODES:
        have = votes * 2 > expected
        return Quorum(have, votes, expected, "majority of votes" if have else
                      f"{votes} of {expected} votes: no majority")
    if len(members) == TWO_NODES:
        return Quorum(True, votes, expected, "both nodes present")
    if not config.ping:
        return Quorum(True, votes, expected, "two nodes without ping targets: the peer is assumed dead")
    peer = next(n.name for n in config.nodes if n.name != local)
    mine = reach or 0
    theirs = (peer_reach or {}).get(peer)
    if theirs is not None and mine > theirs:
        return Quorum(True, votes, expected, f"tie-breaker won: {mine} ping targets, peer {theirs}")
    if theirs is not None and mine < theirs:
        return Quorum(False, votes, expected, f"tie-breaker lost: {mine} ping targets, peer {theirs}")
    # Equal, or a peer never heard (Corosync's wait_for_all spirit: a node that
    # has not seen its peer does not assume it is the better side): the preferred node.
    won = preferred_node(config) == local
    counts = f"{mine} ping targets each" if theirs is not None else "peer never heard"
    return Quorum(won, votes, expected, f"tie-breaker {'won' if won else 'lost'}: {counts}, "
                  f"preferred node {preferred_node(config)}")
