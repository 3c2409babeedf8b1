"""Idle connections: what 10 000 open, silent client connections cost
gproxy, next to HAProxy under the same load, and whether another client is
still served meanwhile.

`.venv/bin/python bench/idle_connections.py [--connections 10000] [--proxy gproxy|haproxy|both]`

For each proxy: one origin (a small threaded HTTP server in this process),
the proxy in front of it with long client timeouts (the connections must
stay open), a warm-up request, then CONNECTIONS TCP connections that send
nothing. Once the proxy reports them all (`show info` CurrConns on its
stats socket), its resident memory (the process and its workers, VmRSS) is
read again; the growth divided by the connections is the cost of one idle
connection. Then a fresh client sends requests and must get 200s.

The descriptor limit is raised as far as the hard limit allows (the proxy
inherits it); if it cannot hold both ends of every connection, fewer are
opened and the output says so. Figures go to stdout and
bench/results/idle_connections.json; docs/performance.md and
docs/reliability.md quote them.
"""

from __future__ import annotations

import argparse
import http.server
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from children import free_port, process_tree, raise_fd_limit

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "idle_connections.json"
DEFAULT_CONNECTIONS = 10_000
FD_MARGIN = 200  # descriptors kept for everything else (logs, sockets to the origin, the bench itself)
HAPROXY_FD_OVERHEAD = 100  # HAProxy wants ulimit-n >= 2 * maxconn + a few listeners and pipes, else refuses
LONG_TIMEOUT = "120s"  # idle connections must outlive the measurement
WAIT_SECONDS = 60.0
SERVED_REQUESTS = 20
GPROXY = (sys.executable, "-m", "gproxy")  # run from the repository: its working tree's gproxy


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class OriginServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # a proxy closing an idle keep-alive connection to the origin is not news


def rss_kib(pid: int) -> int:
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total


def show_info(path: Path) -> dict[str, str]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(b"show info\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return dict(line.split(": ", 1) for line in data.decode().splitlines() if ": " in line)


def get(port: int) -> tuple[int, float]:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), time.monotonic() - start


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def gproxy_command(workdir: Path, port: int, origin: int, stats: Path, maxconn: int,
                   gproxy: Sequence[str] = GPROXY) -> list[str]:
    config = workdir / "gproxy.toml"
    config.write_text(f"""[global]
maxconn = {maxconn}
stats_socket = {{ path = "{stats}", level = "admin" }}

[defaults]
mode = "http"
maxconn = {maxconn}
timeout = {{ connect = "5s", client = "{LONG_TIMEOUT}", server = "{LONG_TIMEOUT}", http_request = "{LONG_TIMEOUT}" }}

[listen.idle]
bind = ["127.0.0.1:{port}"]
server = [{{ name = "origin", address = "127.0.0.1:{origin}" }}]
""")
    return [*gproxy, "run", str(config), "--foreground"]


def haproxy_command(workdir: Path, port: int, origin: int, stats: Path, maxconn: int) -> list[str]:
    config = workdir / "haproxy.cfg"
    fds = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    config.write_text(f"""global
    maxconn {maxconn}
    ulimit-n {fds}
    stats socket {stats} level admin

defaults
    mode http
    maxconn {maxconn}
    timeout connect 5s
    timeout client {LONG_TIMEOUT}
    timeout server {LONG_TIMEOUT}
    timeout http-request {LONG_TIMEOUT}

listen idle
    bind 127.0.0.1:{port}
    server origin 127.0.0.1:{origin}
""")
    return ["haproxy", "-db", "-f", str(config)]


def measure(name: str, connections: int, origin: int, gproxy: Sequence[str] = GPROXY) -> dict:
    """Open `connections` idle connections to proxy `name` ("gproxy" or "haproxy"); its figures.

    `gproxy` is the command that runs gproxy (bench/run.py passes its --gproxy).
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"idle-{name}-"))
    port = free_port()
    stats = workdir / "stats.sock"
    maxconn = connections + FD_MARGIN
    if name == "haproxy":  # it reserves a server-side descriptor for every connection it accepts
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        maxconn = min(maxconn, (soft - HAPROXY_FD_OVERHEAD) // 2)
        if maxconn - 50 < connections:
            print(f"haproxy: ulimit-n {soft} allows maxconn {maxconn}: opening {maxconn - 50} connections")
            connections = maxconn - 50
    if name == "gproxy":
        argv = gproxy_command(workdir, port, origin, stats, maxconn, gproxy)
    else:
        argv = haproxy_command(workdir, port, origin, stats, maxconn)
    log = open(workdir / "proxy.log", "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=log, cwd=REPO)
    socks: list[socket.socket] = []
    try:
        try:
            wait_for(lambda: proc.poll() is None and get(port)[0] == 200, f"{name} serving")
        except RuntimeError:
            log.flush()
            raise RuntimeError(f"{name} did not serve: {(workdir / 'proxy.log').read_text()[-2000:]}") from None
        for _ in range(5):
            get(port)  # warmed up: first-request allocations are not idle connections' cost
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        started = time.monotonic()
        for _ in range(connections):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(True)
            sock.connect(("127.0.0.1", port))
            socks.append(sock)
        wait_for(lambda: int(show_info(stats).get("CurrConns", 0)) >= connections, f"{name} holding them all")
        opened = time.monotonic() - started
        time.sleep(1.0)  # let lazily allocated state settle
        during = rss_kib(proc.pid)
        codes, latencies = [], []
        for _ in range(SERVED_REQUESTS):
            code, seconds = get(port)
            codes.append(code)
            latencies.append(seconds)
        curr = int(show_info(stats).get("CurrConns", 0))
        return {
            "proxy": name, "connections": connections, "seconds_to_open": round(opened, 2),
            "rss_before_kib": before, "rss_during_kib": during,
            "bytes_per_connection": round((during - before) * 1024 / connections),
            "curr_conns": curr, "other_client_codes": sorted(set(codes)),
            "other_client_max_latency_ms": round(max(latencies) * 1000, 1),
        }
    finally:
        for sock in socks:
            sock.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=DEFAULT_CONNECTIONS)
    parser.add_argument("--proxy", choices=("gproxy", "haproxy", "both"), default="both")
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/idle_connections.json")
    options = parser.parse_args(argv)
    # Both ends of every connection live on this machine: the bench holds
    # one, the proxy (which inherits this limit) the other.
    soft = raise_fd_limit()  # as far as the hard limit allows
    connections = min(options.connections, soft - FD_MARGIN)
    if connections < options.connections:
        print(f"descriptor limit {soft}: opening {connections} connections, not {options.connections}")
    server = OriginServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    names = ("gproxy", "haproxy") if options.proxy == "both" else (options.proxy,)
    if "haproxy" in names and shutil.which("haproxy") is None:
        print("haproxy is not installed: measuring gproxy only")
        names = ("gproxy",)
    rows = []
    for name in names:
        row = measure(name, connections, server.server_address[1])
        rows.append(row)
        print(f"{name}: {row['connections']} idle connections opened in {row['seconds_to_open']}s, "
              f"RSS {row['rss_before_kib']} -> {row['rss_during_kib']} KiB "
              f"({row['bytes_per_connection']} bytes per connection), "
              f"another client: {row['other_client_codes']} in at most {row['other_client_max_latency_ms']} ms",
              flush=True)
    server.shutdown()
    if not options.no_save:
        RESULTS.write_text(json.dumps({"fd_limit": soft, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
