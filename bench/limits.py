"""Optional limits under abuse: what a refusal costs and whether others are
still served meanwhile.

`.venv/bin/python bench/limits.py [--flood 2000] [--posts 500]`

One gproxy (`max_body_size = "1k"`, `maxconn_per_client = 50`) in front of
the demo backend, all on loopback:

1. connection flood: FLOOD connections from 127.0.0.1 opened as fast as
   possible and held; 50 are admitted, the others must be closed at once.
   Meanwhile a client on 127.0.0.2 sends requests: their statuses and worst
   latency are reported.
2. body flood: POSTS requests announcing a 1 MiB body (head and body sent
   at once), each on its own connection: all must get 413; the backend's
   request count must not move. The refusals per second are reported.

Figures go to stdout; docs/reliability.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PER_CLIENT = 50
BODY = 1024 * 1024
OTHER = "127.0.0.2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(port)


def get(port: int, source: str, path: str = "/") -> tuple[int, float]:
    """(status or 0, seconds) of one GET from `source`."""
    start = time.monotonic()
    try:
        with socket.socket() as sock:
            sock.settimeout(10)
            sock.bind((source, 0))
            sock.connect(("127.0.0.1", port))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        status = int(data.split(b" ", 2)[1]) if data else 0
    except OSError:
        status = 0
    return status, time.monotonic() - start


def backend_requests(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /stats.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.partition(b"\r\n\r\n")[2])["requests"]


def connection_flood(port: int, flood: int) -> dict:
    other: list[tuple[int, float]] = []
    stop = threading.Event()

    def other_client() -> None:
        while not stop.is_set():
            other.append(get(port, OTHER))

    thread = threading.Thread(target=other_client)
    thread.start()
    held, refused, admitted = [], 0, 0
    start = time.monotonic()
    for _ in range(flood):
        sock = socket.socket()
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        held.append(sock)
    opened = time.monotonic() - start
    for sock in held:
        try:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            data = sock.recv(65536)
        except OSError:
            data = b""
        if data:
            admitted += 1
        else:
            refused += 1
    stop.set()
    thread.join()
    for sock in held:
        sock.close()
    return {"connections": flood, "admitted": admitted, "refused": refused, "open_seconds": round(opened, 3),
            "other_requests": len(other), "other_statuses": sorted({s for s, _ in other}),
            "other_worst_ms": round(max(t for _, t in other) * 1000, 1) if other else None}


def body_flood(port: int, backend_port: int, posts: int) -> dict:
    before = backend_requests(backend_port)
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % BODY
    body = b"x" * BODY
    statuses: dict[int, int] = {}
    start = time.monotonic()
    for _ in range(posts):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            try:
                sock.sendall(head + body)
            except OSError:
                pass  # refused before the whole body left: the answer is still readable
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
        status = int(data.split(b" ", 2)[1]) if data else 0
        statuses[status] = statuses.get(status, 0) + 1
    elapsed = time.monotonic() - start
    after = backend_requests(backend_port)
    return {"posts": posts, "statuses": statuses, "per_second": round(posts / elapsed),
            "backend_requests_moved": after - before - 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flood", type=int, default=2000)
    parser.add_argument("--posts", type=int, default=500)
    args = parser.parse_args()
    port, backend_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "gproxy.toml"
        config.write_text(f"""
[global]
maxconn = {args.flood + 100}
[defaults]
mode = "http"
timeout = {{ connect = "1s", client = "10s", server = "10s" }}
[listen.app]
bind = ["127.0.0.1:{port}"]
maxconn = {args.flood + 100}
max_body_size = "1k"
maxconn_per_client = {PER_CLIENT}
[[listen.app.server]]
name = "b1"
address = "127.0.0.1:{backend_port}"
""")
        backend = subprocess.Popen([sys.executable, "-m", "gproxy.demo.backend", "--listen",
                                    f"127.0.0.1:{backend_port}", "--name", "b1"], cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proxy = subprocess.Popen([sys.executable, "-m", "gproxy", "run", str(config), "--foreground"], cwd=REPO,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(backend_port)
            wait_port(port)
            time.sleep(0.2)  # the probe connection of wait_port has ended
            results = {"connection_flood": connection_flood(port, args.flood),
                       "body_flood": body_flood(port, backend_port, args.posts)}
        finally:
            for proc in (proxy, backend):
                proc.terminate()
                proc.wait(10)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
