"""Child processes of a benchmark run, and what /proc says about them.

Every child (nginx, the proxies, wrk) is started through `Children`, in its
own session so a terminal Ctrl-C reaches only bench/run.py, with a parent-death
signal so not even a SIGKILL of the bench leaves one behind; `Children.close()`
(also on exceptions, through `with`) terminates, then kills, then reaps them all.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

STOP_TIMEOUT_SECONDS = 5.0  # SIGTERM, then SIGKILL after this long
READY_TIMEOUT_SECONDS = 15.0  # a server must accept connections within this long
READY_POLL_SECONDS = 0.05
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Up to the hard limit: HAProxy needs about 2 * maxconn descriptors, the bench
# holds one end of each idle connection. The children inherit the limit.
FD_LIMIT_WANTED = 65_536


class StartupError(RuntimeError):
    """A child did not come up; the message says why (its last log line when there is one)."""


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when the bench process dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the `finally` cleanup still applies


class Children:
    """The set of running children; use as a context manager."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], log: Path | None = None, capture: bool = False,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start `argv` with stdout+stderr into `log` (or a pipe when `capture`)."""
        if capture:
            output: int | object = subprocess.PIPE
        else:
            output = open(log, "wb") if log else subprocess.DEVNULL
        try:
            process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=output,  # type: ignore[arg-type]
                stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            if hasattr(output, "close"):
                output.close()  # type: ignore[union-attr]
        self._running.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """Terminate `process` (then kill it) and reap it; return its exit status."""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        try:
            # The child led its own process group: whatever it forked and left
            # behind (nginx workers) goes too. The group id cannot have been
            # reused while a member is alive, so this touches only our processes.
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if process in self._running:
            self._running.remove(process)
        return process.returncode

    def close(self) -> None:
        for process in reversed(list(self._running)):
            self.stop(process)

    def __enter__(self) -> Children:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def last_line(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def wait_listening(process: subprocess.Popen[bytes], ports: Sequence[int], log: Path | None,
                   host: str = "127.0.0.1", timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Return once every port accepts connections; raise StartupError if the child exits or times out."""
    deadline = time.monotonic() + timeout
    pending = list(ports)
    while pending:
        if process.poll() is not None:
            reason = last_line(log) or "no output"
            raise StartupError(f"exited with status {process.returncode}: {reason}")
        try:
            with socket.create_connection((host, pending[0]), timeout=1.0):
                pass
            pending.pop(0)
            continue
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise StartupError(f"not listening on {host}:{pending[0]} after {timeout:g}s")
        time.sleep(READY_POLL_SECONDS)


# --------------------------------------------------------------------------- /proc


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (a master and its workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = [pid]
    for member in tree:  # grows while iterating: a breadth-first walk
        tree.extend(child for child, parent in parents.items() if parent == member)
    return tree


def peak_rss_kib(pids: Sequence[int]) -> int:
    """The sum of the peak resident set sizes (VmHWM) of `pids`, in KiB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time used so far by `pids`."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def raise_fd_limit(wanted: int = FD_LIMIT_WANTED) -> int:
    """Raise this process's (hence the children's) descriptor limit towards `wanted`; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for new_hard in (max(hard, wanted), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, new_hard), new_hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
