"""Test hosts as network namespaces joined by veth pairs to a bridge.

`Lab` builds a private subnet (10.213.N.0/24) that exists only inside this
test: a bridge in the root namespace (which gets .1, so the test's client
and backends live there) and one namespace per cluster node (.11, .12...).
Everything is deleted in `close()`, which fixtures call even on failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def can_use_netns() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "network namespaces need root"
    probe = f"hbprobe{os.getpid() % 100000}"
    result = _ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return False, f"ip netns add failed: {result.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return True, ""


class Lab:
    def __init__(self, nodes: int, subnet_index: int | None = None):
        tag = os.getpid() % 10000
        self.tag = f"{tag}"
        self.subnet = subnet_index if subnet_index is not None else 100 + (os.getpid() % 150)
        self.bridge = f"brhb{tag}"
        self.gateway = f"10.213.{self.subnet}.1"
        self.namespaces: list[str] = []
        self.addresses: list[str] = []
        self.veths: list[str] = []
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i in range(nodes):
                self.add_node(i)
        except Exception:
            self.close()
            raise

    def add_node(self, i: int) -> str:
        ns = f"hb{self.tag}n{i}"
        veth = f"vh{self.tag}n{i}"
        address = f"10.213.{self.subnet}.{11 + i}"
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.veths.append(veth)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        self.addresses.append(address)
        return ns

    def address_for(self, host: int) -> str:
        return f"10.213.{self.subnet}.{host}"

    def popen(self, index: int, argv: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.namespaces[index], *argv], **kwargs)

    def run(self, index: int, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.namespaces[index], *argv],
                              capture_output=True, text=True, **kwargs)

    def pids(self, index: int) -> list[int]:
        result = _ip("netns", "pids", self.namespaces[index], check=False)
        return [int(p) for p in result.stdout.split()]

    def crash(self, index: int) -> None:
        """The node's machine stops: every process in it dies, its link goes down."""
        _ip("link", "set", self.veths[index], "down", check=False)
        for pid in self.pids(index):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def reboot(self, index: int) -> None:
        """A crashed node comes back as from a reboot: a fresh namespace (same
        name, address and bridge port) without the dead kernel's TCP state
        (its orphaned sockets would answer clients' segments with challenge
        ACKs instead of resets), its queued datagrams (old heartbeats that
        would reach the peer as if the dead node were alive) or the VIP.
        Processes are started again by the test."""
        ns, veth, address = self.namespaces[index], self.veths[index], self.addresses[index]
        # A bridge takes the lowest MAC of its ports: pinned, the root
        # namespace's address keeps its MAC in the other nodes' ARP caches.
        with open(f"/sys/class/net/{self.bridge}/address") as f:
            _ip("link", "set", self.bridge, "address", f.read().strip())
        for pid in self.pids(index):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _ip("netns", "del", ns, check=False)
        _ip("link", "del", veth, check=False)
        _ip("netns", "add", ns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", veth, "master", self.bridge, "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")

    def link(self, index: int, up: bool) -> None:
        _ip("link", "set", self.veths[index], "up" if up else "down", check=False)

    def close(self) -> None:
        for index in range(len(self.namespaces)):
            for pid in self.pids(index):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.05)
        for ns in self.namespaces:
            _ip("netns", "del", ns, check=False)
        for veth in self.veths:
            _ip("link", "del", veth, check=False)
        _ip("link", "del", self.bridge, check=False)
        self.namespaces.clear()
        self.veths.clear()
