"""Heartbeat nodes for the end-to-end tests: the part every cluster scenario shares.

A test writes its own cluster file (that is its scenario); this module starts
`heartbeat run` for each node of it, on loopback or in a namespace of a
`netns.Lab`, with the node's output in `<tmp>/<node>.log`, asks the node's
status socket (`<tmp>/<node>.sock`: the file's `status_socket` must say
`{tmp}/{node}.sock`), waits for a condition with the nodes' logs in the
failure, and stops every process it started, even a frozen one.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import REPO, wait_for

DUMMY = Path("/usr/lib/ocf/resource.d/heartbeat/Dummy")  # resource-agents' ocf:heartbeat:Dummy
STATUS_TIMEOUT = 10.0  # seconds a status socket may take to answer
WAIT_TIMEOUT = 20.0  # seconds a scenario's condition may take (never a speed assertion)
WAIT_INTERVAL = 0.1
STOP_TIMEOUT = 20.0  # seconds a node has to stop on SIGTERM before it is killed
KILLED_TIMEOUT = 5.0
LOG_TAIL = 2500  # characters of each node's log shown in a failure


def require_dummy() -> None:
    if not DUMMY.exists():
        pytest.fail("ocf:heartbeat:Dummy is missing: run scripts/install-debian-deps.sh (make test does)")


def udp_port() -> int:
    """A UDP port on 127.0.0.1 free right now (heartbeat's own traffic is UDP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_authkey(path: Path, secret: str, key_id: int = 1) -> Path:
    """A keys file heartbeat accepts: one sha256 key, readable by its owner only."""
    path.write_text(f"auth {key_id}\n{key_id} sha256 {secret}\n")
    path.chmod(0o600)
    return path


def cluster_doc(tmp: Path, name: str, nodes: dict[str, str], **options) -> dict:
    """A cluster file's [cluster] and [[node]] tables (for tomli_w): the keys in `tmp`/authkey,
    each node's status socket and state under `tmp`; `options` (timers...) added or overriding.
    `nodes`: node name -> its address."""
    cluster = {"name": name, "auth_key_file": str(tmp / "authkey"), "status_socket": f"{tmp}/{{node}}.sock",
               "state_dir": f"{tmp}/state-{{node}}"}
    return {"cluster": {**cluster, **options},
            "node": [{"name": node, "addresses": [address]} for node, address in nodes.items()]}


def dummies(tmp: Path, ids: list[str], prefer: str, interval: str, timeout: str = "10s",
            group: str | None = None) -> dict:
    """ocf:heartbeat:Dummy resources (state file `tmp`/<node>-<id>.state), monitored every `interval`,
    in `group` if given, preferring the node `prefer` (score 100): tables to add to a cluster_doc."""
    tables: dict = {"resource": [{"id": rid, "agent": "ocf:heartbeat:Dummy",
                                  "params": {"state": f"{tmp}/{{node}}-{rid}.state"},
                                  "monitor": {"interval": interval, "timeout": timeout}} for rid in ids]}
    if group is not None:
        tables["group"] = [{"id": group, "resources": list(ids)}]
    tables["constraint"] = [{"kind": "location", "resource": group or ids[0], "node": prefer, "score": 100}]
    return tables


def ask_socket(path: str | Path, request: dict, timeout: float = STATUS_TIMEOUT) -> dict:
    """One JSON request line to a status socket, its one JSON answer line."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    with sock:
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def placement(doc: dict) -> dict[str, str | None]:
    """Resource id -> the node it is started on (None: not started), from a status document."""
    return {r["id"]: (r["node"] if r["state"] == "started" else None) for r in doc["resources"]}


class HeartbeatNodes:
    """The `heartbeat run` processes of one cluster file. A node is given by its name or by its
    index in `names`; with a `lab`, node i runs in the lab's namespace i."""

    log_tail = LOG_TAIL

    def __init__(self, tmp: Path, names: list[str], path: Path, lab=None):
        self.tmp = tmp
        self.names = list(names)
        self.path = path
        self.lab = lab
        self.procs: dict[str, subprocess.Popen] = {}

    def name(self, node: int | str) -> str:
        return self.names[node] if isinstance(node, int) else node

    def socket(self, node: int | str) -> str:
        return str(self.tmp / f"{self.name(node)}.sock")

    # ---- processes ----------------------------------------------------------------
    def start(self, node: int | str) -> subprocess.Popen:
        name = self.name(node)
        argv = [sys.executable, "-m", "heartbeat", "run", str(self.path), "--node", name]
        with open(self.tmp / f"{name}.log", "ab") as log:
            if self.lab is None:
                proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=REPO)
            else:
                proc = self.lab.popen(self.names.index(name), argv, stdout=log, stderr=log, cwd=REPO)
        self.procs[name] = proc
        return proc

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)

    def kill(self, node: int | str) -> None:
        proc = self.procs[self.name(node)]
        proc.kill()
        proc.wait(10)

    def freeze(self, node: int | str, frozen: bool) -> None:
        """SIGSTOP (a paused VM) or SIGCONT."""
        self.procs[self.name(node)].send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a frozen node must hear its SIGTERM
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(KILLED_TIMEOUT)

    # ---- status -------------------------------------------------------------------
    def ask(self, node: int | str, request: dict, timeout: float = 15) -> dict:
        return ask_socket(self.socket(node), request, timeout)

    def status(self, node: int | str, timeout: float = STATUS_TIMEOUT) -> dict:
        return self.ask(node, {"cmd": "status"}, timeout)

    def try_status(self, node: int | str, timeout: float = STATUS_TIMEOUT) -> dict | None:
        """The status, or None while the node does not answer (not started yet, stopped, frozen)."""
        try:
            return self.status(node, timeout)
        except (OSError, ValueError):
            return None

    def placement(self, node: int | str) -> dict[str, str | None] | None:
        doc = self.try_status(node)
        return None if doc is None else placement(doc)

    def wait(self, what: str, predicate: Callable[[], Any], timeout: float = WAIT_TIMEOUT,
             interval: float = WAIT_INTERVAL) -> Any:
        return wait_for(predicate, what, timeout, interval, detail=self.logs)

    def wait_placed(self, node: int | str, holder: str, timeout: float = 30) -> dict[str, str | None]:
        """Every resource started on `holder`, as `node` sees it."""
        return self.wait(f"resources all started on {holder}",
                         lambda: (p := self.placement(node)) is not None and set(p.values()) == {holder} and p,
                         timeout=timeout)

    # ---- logs ---------------------------------------------------------------------
    def log(self, node: int | str) -> str:
        path = self.tmp / f"{self.name(node)}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self, tail: int | None = None) -> str:
        """Each node's log under a `--- name` line: its last `tail` characters (default
        `log_tail`; 0 for the whole log)."""
        tail = self.log_tail if tail is None else tail
        return "\n".join(f"--- {name}\n{self.log(name)[-tail if tail else 0:]}" for name in self.names)
