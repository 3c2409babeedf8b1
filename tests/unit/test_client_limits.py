"""maxconn_per_client bookkeeping (gproxy.client_limits): the (N+1)th live
connection of an address is refused, others are not affected, ends free slots."""

from __future__ import annotations

import pytest

from gproxy.client_limits import ClientConnections, client_key


def test_the_connection_past_the_limit_is_refused_and_not_counted() -> None:
    limits = ClientConnections(2)
    assert limits.admit("192.0.2.1").admitted
    assert limits.admit("192.0.2.1").current == 2
    refused = limits.admit("192.0.2.1")
    assert not refused.admitted and refused.current == 2
    assert limits.current("192.0.2.1") == 2
    assert limits.refused == 1


def test_another_address_is_not_affected() -> None:
    limits = ClientConnections(1)
    assert limits.admit("192.0.2.1").admitted
    assert not limits.admit("192.0.2.1").admitted
    assert limits.admit("192.0.2.2").admitted
    assert limits.admit("2001:db8::1").admitted
    assert len(limits) == 3


def test_a_connection_that_ends_frees_its_slot_and_the_table_forgets_idle_addresses() -> None:
    limits = ClientConnections(1)
    limits.admit("192.0.2.1")
    limits.release("192.0.2.1")
    assert limits.current("192.0.2.1") == 0 and len(limits) == 0
    assert limits.admit("192.0.2.1").admitted


def test_release_of_an_unknown_address_does_not_go_negative() -> None:
    limits = ClientConnections(1)
    limits.release("192.0.2.9")
    assert limits.current("192.0.2.9") == 0 and len(limits) == 0
    assert limits.admit("192.0.2.9").admitted


def test_an_ipv4_client_on_a_dual_stack_socket_counts_as_its_ipv4_address() -> None:
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("::FFFF:192.0.2.1") == "192.0.2.1"
    assert client_key("::ffff:c000:201") == "::ffff:c000:201"  # not dotted: left alone
    limits = ClientConnections(1)
    assert limits.admit("192.0.2.1").admitted
    assert not limits.admit("::ffff:192.0.2.1").admitted
    limits.release("::ffff:192.0.2.1")
    assert limits.current("192.0.2.1") == 0


def test_many_admissions_and_releases_leave_nothing_behind() -> None:
    limits = ClientConnections(3)
    admitted = []
    for index in range(100):
        address = f"10.0.0.{index % 7}"
        if limits.admit(address).admitted:
            admitted.append(address)
    assert len(admitted) == 7 * 3
    assert limits.refused == 100 - 21
    for address in admitted:
        limits.release(address)
    assert len(limits) == 0


def test_a_limit_below_one_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        ClientConnections(0)
