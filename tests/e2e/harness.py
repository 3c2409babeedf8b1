"""End-to-end harness: real gproxy and backend processes on loopback.

Everything listens on 127.0.0.1 with ports picked free by the kernel;
every process started here is stopped in the fixture's teardown.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tomli_w

REPO = Path(__file__).resolve().parents[2]
SPEC_DIR = REPO.parent / "shared" / "spec"
START_TIMEOUT = 15.0


# Ports for the processes a test configures, below the kernel's ephemeral
# range (32768-60999 by default): a backend binding port 0, or any outgoing
# connection, can then never take a port chosen here before gproxy binds it
# (which made gproxy fail to bind while the test's port probe reached the
# backend instead).
FIXED_PORTS = range(20000, 32000)


def free_port() -> int:
    low, _high = _ephemeral_range()
    for _ in range(200):
        port = random.randrange(FIXED_PORTS.start, min(FIXED_PORTS.stop, low))
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = START_TIMEOUT, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {host}:{port}")


class BackendProcess:
    """`python -m gproxy.demo.backend` as a child process."""

    def __init__(self, name: str, port: int | None = None, host: str = "127.0.0.1"):
        self.name = name
        self.host = host
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "BackendProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gproxy.demo.backend", "--listen", self.address, "--name", self.name],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.stop()
            raise RuntimeError(f"backend {self.name} did not start: {line!r}")
        return self

    def kill(self) -> None:
        """Hard kill (SIGKILL): the server vanishes like a crashed machine's service."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def stats(self) -> dict:
        return json.loads(http_get(self.port, "/stats.json", host=self.host)[2])

    def post(self, path: str) -> None:
        http_request(self.port, "POST", path, host=self.host)


class GproxyProcess:
    """`gproxy run FILE --foreground` as a child process."""

    def __init__(self, config: dict | str, workdir: Path):
        self.workdir = workdir
        self.path = workdir / "gproxy.toml"
        if isinstance(config, dict):
            self.path.write_bytes(tomli_w.dumps(config).encode())
        else:
            self.path.write_text(config)
        self.proc: subprocess.Popen | None = None
        self.stderr_path = workdir / "gproxy.stderr"

    def start(self, wait_ports: list[int] = ()) -> "GproxyProcess":
        self._stderr = open(self.stderr_path, "wb")
        # Its own process group: a master started by an upgrade (SIGUSR2) is not
        # this process, and stop() must end it and its workers too.
        self.proc = subprocess.Popen([sys.executable, "-m", "gproxy", "run", str(self.path), "--foreground"],
                                     stdout=subprocess.DEVNULL, stderr=self._stderr, cwd=REPO,
                                     start_new_session=True)
        for port in wait_ports:
            wait_port(port, proc=self.proc)
        return self

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            _end_group(self.proc.pid)  # what outlived the first master (an upgrade's master, its workers)
        if getattr(self, "_stderr", None):
            self._stderr.close()


def _end_group(pgid: int, grace_s: float = 5.0) -> None:
    """SIGTERM to every process left in the group, SIGKILL to those still there after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return  # nobody left
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


class UdpLogReceiver:
    """A syslog receiver on 127.0.0.1: collects the datagrams gproxy sends."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []

    @property
    def target(self) -> str:
        return f"udp://127.0.0.1:{self.port}"

    def collect(self, timeout: float = 0.2) -> list[str]:
        self.sock.settimeout(timeout)
        while True:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return self.lines
            self.lines.append(data.decode("utf-8", "replace"))

    def wait_for(self, pattern: str, timeout: float = 10.0) -> str:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            self.collect(0.05)
            for line in self.lines[seen:]:
                if regex.search(line):
                    return line
            seen = len(self.lines)
        raise AssertionError(f"no log line matched {pattern!r}; got {self.lines[-10:]}")

    def close(self) -> None:
        self.sock.close()


# ---- a tiny HTTP client on raw sockets (so nothing hides what is on the wire) ----

def read_response(sock, buf: bytes = b"") -> tuple[int, bytes, bytes, bytes]:
    """Read exactly one Content-Length framed response from a kept-alive socket:
    (status, head, body, what followed it). EOFError if the peer closes first."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise EOFError(buf)
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            raise EOFError(rest)
        rest += data
    status = int(head.split(b" ")[1])
    return status, head, rest[:length], rest[length:]


def http_request(port: int, method: str, path: str, headers: dict | list | None = None,
                 body: bytes = b"", host: str = "127.0.0.1", timeout: float = 10.0):
    """One request on its own connection; returns (status, headers dict lowercased (lists), body)."""
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in hdrs]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(raw)
        data = recv_all(sock)
    return parse_response(data)


def http_get(port: int, path: str, headers=None, host: str = "127.0.0.1", timeout: float = 10.0):
    return http_request(port, "GET", path, headers=headers, host=host, timeout=timeout)


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def parse_response(data: bytes):
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        return None, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    if "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
        body = dechunk(body)
    return status, headers, body


def dechunk(body: bytes) -> bytes:
    out = []
    while body:
        line, _, rest = body.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        body = rest[size + 2:]
    return b"".join(out)


def spec_on_loopback(name: str = "esup-proxy.toml", fixed: dict[str, int] | None = None) -> tuple[str, dict[str, int]]:
    """The spec file with every address rewritten to 127.0.0.1 and a free port.

    Returns the text and the map old-address -> new port. Only addresses and
    this machine's paths are rewritten (the contract says tests load the file
    otherwise unchanged); `daemon` needs nothing, `--foreground` overrides it.
    """
    text = (SPEC_DIR / name).read_text()
    mapping: dict[str, int] = dict(fixed or {})

    def repl(match: re.Match) -> str:
        old = match.group(0)
        mapping.setdefault(old, free_port())
        return f"127.0.0.1:{mapping[old]}"

    text = re.sub(r"192\.0\.2\.\d+:\d+", repl, text)
    # The stats socket is an address too: each test gets its own.
    socket_dir = tempfile.mkdtemp(prefix="gproxy-spec-")
    text = text.replace('"/run/gproxy/admin.sock"', f'"{socket_dir}/admin.sock"')
    # So is the chroot directory (this machine has no /usr/share/gproxy): an
    # empty one per test. Run as root, the workers chroot there and become uid 99.
    text = text.replace('chroot = "/usr/share/gproxy"', f'chroot = "{tempfile.mkdtemp(prefix="gproxy-chroot-")}"')
    return text, mapping


def stop_process(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


WAIT_TIMEOUT = 10.0  # seconds a condition may take by default (never a speed assertion)


def wait_for(predicate, what: str, timeout: float = WAIT_TIMEOUT, interval: float = 0.05, detail=None):
    """The first true value of `predicate()`, polled every `interval` until `timeout`; else an
    AssertionError naming `what`, the last value and `detail()` if given (logs, say)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})" + (f"\n{detail()}" if detail else ""))
