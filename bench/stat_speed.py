"""How long `show stat` takes on 100 backends x 10 servers (the issue's
target: under 20 ms of gproxy's own time).

    .venv/bin/python bench/stat_speed.py [--runs N] [--no-haproxy]

Three figures, each the median (and best) of N runs:
  in-process   gproxy.runtime_api.stat_csv.show_stat() on live state built
               from the generated configuration: gproxy's own time
  gproxy sock  the whole exchange on a running `gproxy run`'s stats socket
               (connect, send, read ~1100 lines until close), client clock
  haproxy sock the same exchange with Debian's haproxy on the same topology,
               and the gproxy/HAProxy ratio
Servers point at a closed port on 127.0.0.1 and are not checked, so nothing
but the stats socket is exercised. Writes bench/results/stat_speed.json.
A benchmark only: no test asserts on these times.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gproxy.config.loader import load_string  # noqa: E402
from gproxy.events import EventBus  # noqa: E402
from gproxy.runtime import BackendRuntime, FrontendRuntime, ProcessState  # noqa: E402
from gproxy.runtime_api.stat_csv import show_stat  # noqa: E402

BACKENDS = 100
SERVERS = 10
CLOSED_PORT = 9  # discard: nothing listens there on a test machine
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gproxy_toml(sock_path: str, port: int) -> str:
    lines = ["[global]", f'stats_socket = {{ path = "{sock_path}", level = "admin" }}', "",
             "[defaults]", 'mode = "http"', "",
             "[frontend.fe]", f'bind = ["127.0.0.1:{port}"]', 'default_backend = "be000"', ""]
    for b in range(BACKENDS):
        lines.append(f"[backend.be{b:03d}]")
        servers = ", ".join(f'{{ name = "s{s}", address = "127.0.0.1:{CLOSED_PORT}", weight = {s + 1} }}'
                            for s in range(SERVERS))
        lines += [f"server = [{servers}]", ""]
    return "\n".join(lines)


def haproxy_cfg(sock_path: str, port: int) -> str:
    lines = ["global", "    nbthread 1", f"    stats socket {sock_path} mode 600 level admin", "",
             "defaults", "    mode http", "    timeout connect 1s", "    timeout client 5s", "    timeout server 5s", "",
             "frontend fe", f"    bind 127.0.0.1:{port}", "    default_backend be000", ""]
    for b in range(BACKENDS):
        lines.append(f"backend be{b:03d}")
        lines += [f"    server s{s} 127.0.0.1:{CLOSED_PORT} weight {s + 1}" for s in range(SERVERS)]
        lines.append("")
    return "\n".join(lines)


class State:
    def __init__(self, text: str):
        now = time.time()
        self.config = load_string(text)
        bus = EventBus()
        self.backends = {n: BackendRuntime(c, bus, now, time.time) for n, c in self.config.backends.items()}
        self.frontends = {n: FrontendRuntime(c, self.backends.get(c.default_backend))
                          for n, c in self.config.frontends.items()}
        self.process = ProcessState(now, self.config.global_.maxconn)


def measure(function, runs: int) -> dict:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000.0)
    return {"median_ms": round(statistics.median(times), 2), "best_ms": round(min(times), 2), "runs": runs}


def socket_exchange(path: str) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b"show stat\n")
        chunks = []
        while True:
            data = sock.recv(262144)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def wait_socket(path: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}")
        try:
            socket_exchange(path)
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{path} never answered")


def over_socket(command: list[str], path: str, runs: int) -> dict:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        wait_socket(path, proc)
        lines = socket_exchange(path).count(b"\n")
        result = measure(lambda: socket_exchange(path), runs)
        result["lines"] = lines
        return result
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--no-haproxy", action="store_true")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="gproxy-stat-bench-"))
    results: dict = {"backends": BACKENDS, "servers_per_backend": SERVERS}
    try:
        g_sock, g_port = str(workdir / "gproxy.sock"), free_port()
        text = gproxy_toml(g_sock, g_port)
        state = State(text)
        results["in_process"] = measure(lambda: show_stat(state, time.time()), args.runs)
        (workdir / "gproxy.toml").write_text(text)
        results["gproxy_socket"] = over_socket(
            [sys.executable, "-m", "gproxy", "run", str(workdir / "gproxy.toml"), "--foreground"], g_sock, args.runs)
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not args.no_haproxy and Path(haproxy).exists():
            h_sock = str(workdir / "haproxy.sock")
            (workdir / "haproxy.cfg").write_text(haproxy_cfg(h_sock, free_port()))
            results["haproxy_socket"] = over_socket([haproxy, "-db", "-f", str(workdir / "haproxy.cfg")],
                                                    h_sock, args.runs)
            results["ratio_gproxy_over_haproxy"] = round(
                results["gproxy_socket"]["median_ms"] / max(results["haproxy_socket"]["median_ms"], 0.001), 2)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"show stat, {BACKENDS} backends x {SERVERS} servers ({args.runs} runs, median / best):")
    for key in ("in_process", "gproxy_socket", "haproxy_socket"):
        if key in results:
            r = results[key]
            print(f"  {key:15s} {r['median_ms']:8.2f} ms / {r['best_ms']:.2f} ms")
    if "ratio_gproxy_over_haproxy" in results:
        print(f"  gproxy/HAProxy over the socket: {results['ratio_gproxy_over_haproxy']}x")
    out = REPO / "bench" / "results" / "stat_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
