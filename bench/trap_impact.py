"""What SNMP traps cost gproxy's traffic: req/s with and without a trap storm, receivers unreachable.

`.venv/bin/python bench/trap_impact.py [--quick | --duration S] [--storm-rate N]`

Two nginx origins, wrk -t1 -c50 against a fresh gproxy per scenario:

    base               no [snmp], no storm: the reference
    snmp-idle          [snmp] with two receivers (v2c and v3 authPriv), nothing to send
    storm              no [snmp]; a client flips a server of another backend between drain
                       and ready through the stats socket, N times a second: real events
                       (gproxyServerAdminChange, gproxyBackendDown/Up), nobody trapping them
    storm-unreachable  the same storm, trapped to receivers on a port nobody listens on
                       (ICMP port unreachable); default queue and rate limit
    storm-blackhole    the same, to a socket that is bound but never read (the kernel drops)
    storm-unlimited    unreachable, rate_limit raised so that every trap is sent: the raw
                       cost of sending, which the default rate limit bounds

The stats-socket storm costs gproxy CPU by itself, so the storm-* rows are compared with
`storm`, the others with `base`. gproxy's own count of trap sends and drops (its stop log)
is shown. Nothing is pinned: read the ratios, not the absolute rates.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from children import Children, StartupError, free_port, wait_listening
from loads import REPO, Unavailable, raise_fd_limit, run_wrk, start_origins

DEFAULT_DURATION_SECONDS = 5
QUICK_DURATION_SECONDS = 2
WARMUP_SECONDS = 1
CONNECTIONS = 50
DEFAULT_STORM_RATE = 500  # drain/ready flips a second; each makes 2 events (admin change, backend down/up)
FLIPS_PER_LINE = 10  # flips per runtime-API line (";"-separated commands)
UNLIMITED_RATE = 1_000_000
RESULTS = REPO / "bench" / "results" / "trap_impact.json"
STATS_RE = re.compile(r"SNMP: (\d+) events; (\d+) trap sends, (\d+) failed, (\d+) dropped")

SCENARIOS = (
    # name, [snmp] kind (None, "unreachable", "blackhole"), storm, rate limit, compared with
    ("base", None, False, None, None),
    ("snmp-idle", "unreachable", False, None, "base"),
    ("storm", None, True, None, "base"),
    ("storm-unreachable", "unreachable", True, None, "storm"),
    ("storm-blackhole", "blackhole", True, None, "storm"),
    ("storm-unlimited", "unreachable", True, UNLIMITED_RATE, "storm"),
)


def udp_port_nobody_listens_on() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gproxy_toml(origins: tuple[int, ...], port: int, sock: Path, trap_port: int | None,
                rate_limit: int | None) -> str:
    servers = "".join(f'\n[[listen.bench.server]]\nname = "n{i}"\naddress = "127.0.0.1:{p}"\n'
                      for i, p in enumerate(origins, start=1))
    text = f"""[global]
maxconn = 10000
stats_socket = {{ path = "{sock}", level = "admin" }}

[defaults]
mode = "http"
timeout = {{ connect = "5s", client = "30s", server = "30s" }}

[listen.bench]
bind = ["127.0.0.1:{port}"]
balance = "roundrobin"
{servers}
# The storm's victim: a backend nobody sends traffic to.
[[backend.flap.server]]
name = "f1"
address = "127.0.0.1:9"
"""
    if trap_port is not None:
        target = f"udp://127.0.0.1:{trap_port}"
        text += f"""
[snmp]
traps = [{{ target = "{target}", version = "v2c", community = "public" }},
         {{ target = "{target}", version = "v3", user = "nms", auth_protocol = "SHA", auth_key = "bench-auth-key", \
priv_protocol = "AES", priv_key = "bench-priv-key" }}]
"""
        if rate_limit is not None:
            text += f"rate_limit = {rate_limit}\n"
    return text


class Storm:
    """Flips flap/f1 between drain and ready through the stats socket, `rate` flips a second."""

    def __init__(self, path: Path, rate: int):
        self.path = path
        self.rate = rate
        self.flips = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        line = "; ".join(["set server flap/f1 state drain", "set server flap/f1 state ready"] * (FLIPS_PER_LINE // 2))
        interval = FLIPS_PER_LINE / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.settimeout(10)
                client.connect(str(self.path))
                client.sendall(line.encode() + b"\n")
                while client.recv(65536):
                    pass
            self.flips += FLIPS_PER_LINE
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)


def measure(children: Children, name: str, trap_kind: str | None, storm: bool, rate_limit: int | None,
            origins: tuple[int, ...], workdir: Path, options: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    sock = workdir / f"{name}.sock"
    blackhole = None
    trap_port = None
    if trap_kind == "unreachable":
        trap_port = udp_port_nobody_listens_on()
    elif trap_kind == "blackhole":
        blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        blackhole.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        blackhole.bind(("127.0.0.1", 0))
        trap_port = blackhole.getsockname()[1]
    config = workdir / f"{name}.toml"
    config.write_text(gproxy_toml(origins, port, sock, trap_port, rate_limit))
    log = workdir / f"{name}.log"
    process = children.start([options.gproxy, "run", str(config), "--foreground"], log=log, cwd=workdir)
    flipper = None
    try:
        try:
            wait_listening(process, (port,), log)
        except StartupError as error:
            raise Unavailable(f"gproxy {error}") from None
        url = f"http://127.0.0.1:{port}/"
        if storm:
            flipper = Storm(sock, options.storm_rate)
            flipper.start()
        run_wrk(children, url, options.warmup, options.connections)
        flips_before = flipper.flips if flipper else 0
        result = run_wrk(children, url, options.duration, options.connections)
        flips = (flipper.flips - flips_before) if flipper else 0
        figures = result.to_json()
        figures["flips_per_second"] = round(flips / max(result.seconds, 1e-9))
    finally:
        if flipper is not None:
            flipper.stop()
        children.stop(process)
        if blackhole is not None:
            blackhole.close()
    match = None
    for match in STATS_RE.finditer(log.read_text(errors="replace")):
        pass
    if match is not None:
        events, sent, failed, dropped = (int(g) for g in match.groups())
        figures.update(events=events, trap_sends=sent, trap_send_failures=failed, traps_dropped=dropped)
    return figures


def render(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'scenario':18} {'req/s':>9} {'ratio':>7} {'p99 ms':>8} {'flips/s':>8} {'events':>8} "
             f"{'sent':>7} {'dropped':>8}"]
    for row in rows:
        f = row["figures"]
        if "unavailable" in f:
            lines.append(f"{row['scenario']:18} unavailable: {f['unavailable']}")
            continue
        ratio = f"{row['ratio']:.3f}" if row.get("ratio") else "-"
        p99 = f.get("latency_ms", {}).get("99")
        lines.append(f"{row['scenario']:18} {f['rate']:>9,.0f} {ratio:>7} "
                     f"{(f'{p99:.2f}' if p99 is not None else '-'):>8} {f['flips_per_second']:>8} "
                     f"{f.get('events', '-'):>8} {f.get('trap_sends', '-'):>7} {f.get('traps_dropped', '-'):>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/trap_impact.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=DEFAULT_DURATION_SECONDS, metavar="SECONDS")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DURATION_SECONDS}s loads")
    parser.add_argument("--storm-rate", type=int, default=DEFAULT_STORM_RATE, metavar="N",
                        help=f"drain/ready flips a second (default {DEFAULT_STORM_RATE})")
    parser.add_argument("--connections", type=int, default=CONNECTIONS)
    parser.add_argument("--gproxy", default=str(REPO / ".venv" / "bin" / "gproxy"))
    parser.add_argument("--output", type=Path, default=RESULTS)
    options = parser.parse_args(argv)
    if options.quick:
        options.duration = QUICK_DURATION_SECONDS
    options.warmup = WARMUP_SECONDS
    if shutil.which("wrk") is None:
        print("trap_impact: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    raise_fd_limit()
    workdir = Path(tempfile.mkdtemp(prefix="gproxy-trap-bench-"))
    rows: list[dict[str, Any]] = []
    try:
        with Children() as children:
            origins = start_origins(children, workdir)
            for name, trap_kind, storm, rate_limit, reference in SCENARIOS:
                print(f"trap_impact: {name}...", flush=True)
                try:
                    figures = measure(children, name, trap_kind, storm, rate_limit, origins, workdir, options)
                except Unavailable as reason:
                    figures = {"unavailable": str(reason)}
                row: dict[str, Any] = {"scenario": name, "compared_with": reference, "figures": figures,
                                       "ratio": None}
                base = next((r["figures"] for r in rows if r["scenario"] == reference), None)
                if base and base.get("rate") and figures.get("rate"):
                    row["ratio"] = round(figures["rate"] / base["rate"], 3)
                rows.append(row)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(render(rows))
    print("\nratio: against `base` for snmp-idle and storm, against `storm` for the storm-* rows; "
          "sent = trap x receiver sends (2 receivers), dropped = events refused by the full queue")
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps({"duration_seconds": options.duration, "storm_rate": options.storm_rate,
                                          "connections": options.connections, "scenarios": rows}, indent=2) + "\n")
    print(f"trap_impact: figures written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
