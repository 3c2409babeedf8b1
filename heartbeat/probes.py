"""Subprocesses and probes the daemon runs for quorum and fencing.

`reach(targets)` counts the ping targets this node reaches: "IP" with one
ICMP echo (`ping -c1 -W1`), "IP:PORT" with a TCP connect (a refusal counts:
the host answered), for hosts where ICMP is filtered or `ping` is missing.
`run_fencing(command, node, timeout_ms)` runs the fencing hook. Both wait
cooperatively: the child's exit is awaited on a pidfd with gevent (as the
LRM's runner does, and for the same reason: gevent.subprocess's SIGCHLD
watcher would reap the agents' children), so heartbeats keep flowing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time

import gevent
import gevent.socket
from gevent.socket import wait_read

PING_COMMAND = ("ping", "-c1", "-W1")
PING_TIMEOUT_S = 2.0  # -W1 waits 1 s for the reply; the margin covers start-up
CONNECT_TIMEOUT_S = 1.0
KILL_GRACE_S = 1.0
POLL_S = 0.02
NODE_PLACEHOLDER = "{node}"
OUTPUT_TAIL = 4096  # bytes of a command's output kept for its one-line reason


def _wait(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Wait for `proc` to exit, at most `timeout_s`, without blocking the hub."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        if pidfd is not None:
            try:
                wait_read(pidfd, timeout=timeout_s)
            except TimeoutError:
                return False
            proc.wait()
            return True
        deadline = time.monotonic() + timeout_s
        while proc.poll() is None:
            if time.monotonic() >= deadline:
                return False
            gevent.sleep(POLL_S)
        return True
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _kill(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        if _wait(proc, KILL_GRACE_S):
            return
    proc.wait()


def run(argv: list[str], timeout_s: float) -> tuple[int | None, str]:
    """Run argv in its own process group; (exit status or None on timeout, output tail)."""
    # Output goes to an unlinked file, not a pipe: a chatty command cannot
    # block on a full pipe, and a daemon it leaves behind cannot hold it open.
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as exc:
            return 127, f"cannot run {argv[0]}: {exc.strerror or exc}"
        done = _wait(proc, timeout_s)
        if not done:
            _kill(proc)
        out.seek(max(0, out.seek(0, os.SEEK_END) - OUTPUT_TAIL))
        lines = out.read().decode(errors="replace").strip().splitlines()
    return (proc.returncode if done else None), (lines[-1] if lines else "")


def probe(target: str) -> bool:
    """Does this node reach `target` ("IP" by ICMP, "IP:PORT" by TCP)?"""
    if target.count(":") == 1:
        host, _, port = target.partition(":")
        sock = gevent.socket.socket(gevent.socket.AF_INET, gevent.socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect((host, int(port)))
            return True
        except ConnectionRefusedError:
            return True  # a RST came back: the host is there
        except OSError:
            return False
        finally:
            sock.close()
    rc, _ = run([*PING_COMMAND, target], PING_TIMEOUT_S)
    return rc == 0


def reach(targets: tuple[str, ...]) -> int:
    """How many targets answer, probed in parallel."""
    jobs = [gevent.spawn(probe, t) for t in targets]
    gevent.joinall(jobs)
    return sum(1 for job in jobs if job.value)


def run_fencing(command: tuple[str, ...], node: str, timeout_ms: int) -> tuple[bool, str]:
    """Run the fencing hook for `node`: (fenced?, one-line reason)."""
    argv = [part.replace(NODE_PLACEHOLDER, node) for part in command]
    rc, output = run(argv, timeout_ms / 1000.0)
    if rc is None:
        return False, f"{argv[0]} timed out after {timeout_ms} ms"
    if rc != 0:
        return False, f"{argv[0]} exited {rc}" + (f": {output}" if output else "")
    return True, f"{argv[0]} exited 0" + (f": {output}" if output else "")
