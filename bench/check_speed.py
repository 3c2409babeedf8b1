"""How long one Nagios check takes: median wall time of check_gproxy and check_heartbeat runs.

Nagios starts one process per check, thousands a minute on a busy server, so
a plugin's start-up is its cost. This starts a live gproxy (or Debian's
haproxy, `--against haproxy`) with a stats socket and three demo backends,
then times whole runs of the console scripts as Nagios would start them
(fork, exec, import, query the socket, print, exit). For scale it also times
an empty Python start and a bare nagiosplugin import. check_heartbeat is timed
against a stand-in status socket serving a saved document (this measures the
plugin, not the cluster).

    .venv/bin/python bench/check_speed.py [--runs 60] [--against gproxy|haproxy]

Target (issue 5): at most 80 ms median on the project's 2-core machine.
Prints a table; no pass/fail.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from children import Children, free_port, wait_listening  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_MS = 80.0
SOCKET_WAIT_SECONDS = 10.0
WARMUP_RUNS = 3


def gproxy_config(sock: Path, port: int, backends: list[int]) -> str:
    servers = "".join(
        f'\n[[listen.app.server]]\nname = "s{i}"\naddress = "127.0.0.1:{p}"\ncheck = true\ninter = "1s"\n'
        for i, p in enumerate(backends))
    return (f'[global]\nmaxconn = 1000\nstats_socket = {{ path = "{sock}", level = "admin" }}\n\n'
            '[defaults]\nmode = "http"\ntimeout = { connect = "1s", client = "5s", server = "5s" }\n\n'
            f'[listen.app]\nbind = ["127.0.0.1:{port}"]\nhttpchk = {{ method = "GET", path = "/" }}\n{servers}')


def haproxy_config(sock: Path, port: int, backends: list[int]) -> str:
    servers = "".join(f"    server s{i} 127.0.0.1:{p} check inter 1s\n" for i, p in enumerate(backends))
    return (f"global\n    stats socket {sock} mode 600 level admin\n"
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
            f"listen app\n    bind 127.0.0.1:{port}\n    option httpchk GET /\n{servers}")


def wait_socket(path: Path) -> None:
    deadline = time.monotonic() + SOCKET_WAIT_SECONDS
    while time.monotonic() < deadline:
        if path.exists():
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(path))
                    return
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"no stats socket at {path} after {SOCKET_WAIT_SECONDS:g}s")


def serve_status(path: Path, document: bytes, stop: threading.Event) -> threading.Thread:
    """A stand-in for heartbeat's status socket: one JSON line per connection."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(64)
    listener.settimeout(0.1)

    def loop() -> None:
        with listener:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except OSError:
                    continue
                with conn:
                    conn.recv(4096)
                    conn.sendall(document)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def time_runs(argv: list[str], runs: int, expect: set[int]) -> list[float]:
    """Wall times in ms of `runs` runs (after a few warm-up runs that fill the page cache)."""
    times = []
    for index in range(WARMUP_RUNS + runs):
        started = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        elapsed = (time.perf_counter() - started) * 1000
        if done.returncode not in expect:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stdout[:300]!r}")
        if index >= WARMUP_RUNS:
            times.append(elapsed)
    return times


def row(name: str, times: list[float]) -> dict[str, object]:
    ordered = sorted(times)
    return {"name": name, "runs": len(times), "median_ms": round(statistics.median(times), 1),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1), "min_ms": round(ordered[0], 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--against", choices=("gproxy", "haproxy"), default="gproxy")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="check-speed-") as tmp, Children() as children:
        work = Path(tmp)
        ports = [free_port() for _ in range(3)]
        for index, port in enumerate(ports):
            children.start([sys.executable, "-m", "gproxy.demo.backend", "--listen", f"127.0.0.1:{port}",
                            "--name", f"s{index}"], log=work / f"backend{index}.log", cwd=REPO)
        sock = work / "admin.sock"
        listen = free_port()
        if args.against == "gproxy":
            (work / "lb.toml").write_text(gproxy_config(sock, listen, ports))
            lb = children.start([sys.executable, "-m", "gproxy", "run", str(work / "lb.toml"), "--foreground"],
                                log=work / "lb.log", cwd=REPO)
        else:
            (work / "lb.cfg").write_text(haproxy_config(sock, listen, ports))
            lb = children.start(["haproxy", "-db", "-f", str(work / "lb.cfg")], log=work / "lb.log")
        wait_listening(lb, [listen], work / "lb.log")
        wait_socket(sock)
        stop = threading.Event()
        document = json.loads((REPO / "tests" / "checks_data" / "heartbeat-ok.json").read_text())
        status_sock = work / "status.sock"
        serve_status(status_sock, json.dumps(document).encode() + b"\n", stop)
        python = sys.executable
        rows.append(row("python -c pass (interpreter start)", time_runs([python, "-c", "pass"], args.runs, {0})))
        rows.append(row("python -c 'import nagiosplugin'",
                        time_runs([python, "-c", "import nagiosplugin"], args.runs, {0})))
        rows.append(row(f"check_gproxy backends ({args.against})",
                        time_runs([str(BIN / "check_gproxy"), "-s", str(sock)], args.runs, {0, 1, 2})))
        rows.append(row(f"check_gproxy sessions ({args.against})",
                        time_runs([str(BIN / "check_gproxy"), "sessions", "-s", str(sock)], args.runs, {0, 1, 2})))
        rows.append(row("check_heartbeat resources (saved status)",
                        time_runs([str(BIN / "check_heartbeat"), "resources", "-s", str(status_sock)], args.runs,
                                  {0, 1, 2})))
        stop.set()
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'run':<45} {'median':>8} {'p90':>8} {'min':>8}   (ms, {args.runs} runs each)")
    for item in rows:
        print(f"{item['name']:<45} {item['median_ms']:>8} {item['p90_ms']:>8} {item['min_ms']:>8}")
    plugin = [r for r in rows if str(r["name"]).startswith("check_")]
    worst = max(float(r["median_ms"]) for r in plugin)  # type: ignore[arg-type]
    print(f"worst plugin median {worst:.1f} ms against the {TARGET_MS:.0f} ms target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
