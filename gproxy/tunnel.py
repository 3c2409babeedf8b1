"""Raw two-way relay: TCP mode, and HTTP after 101 Switching Protocols."""

from __future__ import annotations

import gevent
from gevent import socket

from gproxy.netio import RECV_SIZE, send_all, shutdown_write


class TunnelResult:
    __slots__ = ("up", "down", "client_closed_first", "timed_out", "error_side")

    def __init__(self) -> None:
        self.up = 0  # client -> server bytes
        self.down = 0  # server -> client bytes
        self.client_closed_first = False
        self.timed_out = False
        self.error_side = ""  # "client" | "server" | ""


def _pump(src, dst, timeout: float, result: TunnelResult, upward: bool) -> None:
    src.settimeout(timeout)
    dst.settimeout(timeout)
    total = 0
    try:
        while True:
            try:
                data = src.recv(RECV_SIZE)
            except socket.timeout:
                result.timed_out = True
                break
            except OSError:
                result.error_side = result.error_side or ("client" if upward else "server")
                break
            if not data:
                if upward and not result.down:
                    result.client_closed_first = True
                break
            try:
                send_all(dst, data)  # one send() per read, without gevent's getsockopt
            except (OSError, socket.timeout):
                result.error_side = result.error_side or ("server" if upward else "client")
                break
            total += len(data)
    finally:
        if upward:
            result.up += total
        else:
            result.down += total
        # Half-close: the peer sees EOF once this direction is finished.
        shutdown_write(dst)


def relay(client, server, timeout: float, leftover_client: bytes = b"",
          leftover_server: bytes = b"") -> TunnelResult:
    """Relay until both directions finished (EOF, error or `timeout` of inactivity)."""
    result = TunnelResult()
    if leftover_client:
        server.sendall(leftover_client)
        result.up += len(leftover_client)
    if leftover_server:
        client.sendall(leftover_server)
        result.down += len(leftover_server)
    upward = gevent.spawn(_pump, client, server, timeout, result, True)
    try:
        _pump(server, client, timeout, result, False)
        if result.timed_out or result.error_side:
            upward.kill(block=True)
        else:
            upward.join(timeout)
            if not upward.dead:
                result.timed_out = True
                upward.kill(block=True)
    finally:
        if not upward.dead:
            upward.kill(block=True)
    return result


def pump_both_ways(client, server, timeout: float, leftover_client: bytes = b"",
                   leftover_server: bytes = b"") -> tuple[int, int]:
    result = relay(client, server, timeout, leftover_client, leftover_server)
    return result.up, result.down
