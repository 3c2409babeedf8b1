"""Three plain loads (no logs, no checks), each on a fresh gproxy and HAProxy, with RSS and CPU.

The library of the other benches (tls.py, reload.py, trap_impact.py) and a
quick check of its own; issue 8's table is bench/run.py (`make bench`).
`.venv/bin/python bench/loads.py [--quick | --duration S]`
starts two nginx origins on loopback, then for each scenario starts a fresh
HAProxy, measures it with wrk, stops it, and does the same with gproxy:

    http-keepalive  HTTP listener, wrk -t1 -c50, keep-alive
    http-close      HTTP listener, wrk -t1 -c50 -H "Connection: close" (one connection per request)
    tcp-keepalive   TCP listener (mode tcp), keep-alive HTTP through it

It prints requests/s, the gproxy/HAProxy ratio, wrk's p50/p99 latencies and
each proxy's peak RSS (VmHWM of its process tree) and CPU use, and writes the figures
to bench/results/latest.json. Nothing is pinned to a CPU: wrk, the proxy and
the two nginx workers share the machine's cores, so compare ratios, not
absolute figures. A proxy that cannot start (gproxy before `gproxy run`
exists, say) is reported as unavailable; the other one is still measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from children import (
    Children,
    StartupError,
    cpu_seconds,
    free_port,
    last_line,
    peak_rss_kib,
    process_tree,
    raise_fd_limit,
    wait_listening,
)
from plain_configs import Layout, gproxy_toml, haproxy_cfg, maxconn_for, nginx_conf
from wrk_run import WRK_THREADS, Unavailable, check_config, run_wrk

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "loads.json"
DEFAULT_DURATION_SECONDS = 10
QUICK_DURATION_SECONDS = 3
WARMUP_SECONDS = 1  # a short wrk run before each measured one: accept queues, caches, allocators
WRK_CONNECTIONS = 50
ORIGINS = 2
HAPROXY_NBTHREAD = 1  # one event loop against gproxy's one: the comparison stays per core


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    listener: str  # "http" or "tcp"
    headers: tuple[str, ...] = ()


SCENARIOS = (
    Scenario("http-keepalive", "HTTP mode, keep-alive", "http"),
    Scenario("http-close", "HTTP mode, one connection per request", "http", ("Connection: close",)),
    Scenario("tcp-keepalive", "TCP mode, keep-alive HTTP through it", "tcp"),
)


# --------------------------------------------------------------------------- the two proxies


@dataclass(frozen=True)
class Proxy:
    key: str  # "haproxy" | "gproxy": the JSON key
    label: str  # "HAProxy" | "gproxy": the table heading

    def prepare(self, workdir: Path, layout: Layout, options: argparse.Namespace) -> list[str]:
        """Write the configuration, validate it, and return the command that runs the proxy."""
        if self.key == "haproxy":
            binary = shutil.which("haproxy")
            if binary is None:
                raise Unavailable("haproxy is not installed (apt-get install haproxy)")
            path = workdir / "haproxy.cfg"
            path.write_text(haproxy_cfg(layout, options.haproxy_threads))
            check_config([binary, "-c", "-q", "-f", str(path)])
            return [binary, "-f", str(path), "-db"]
        binary = Path(options.gproxy)
        if not binary.exists():
            raise Unavailable(f"{binary} does not exist (make installs it)")
        path = workdir / "gproxy.toml"
        path.write_text(gproxy_toml(layout))
        check_config([str(binary), "check", str(path)])
        return [str(binary), "run", str(path), "--foreground"]


PROXIES = (Proxy("haproxy", "HAProxy"), Proxy("gproxy", "gproxy"))


# --------------------------------------------------------------------------- measuring


def measure_proxy(children: Children, proxy: Proxy, scenario: Scenario, origins: tuple[int, ...],
                  workdir: Path, options: argparse.Namespace) -> dict[str, Any]:
    """Start a fresh `proxy`, load it with `scenario`, stop it; return its figures."""
    layout = Layout(origins=origins, http_port=free_port(), tcp_port=free_port(), maxconn=options.maxconn)
    argv = proxy.prepare(workdir, layout, options)
    log = workdir / f"{proxy.key}-{scenario.name}.log"
    process = children.start(argv, log=log, cwd=workdir)
    try:
        try:
            wait_listening(process, (layout.http_port, layout.tcp_port), log)
        except StartupError as error:
            raise Unavailable(f"`{Path(argv[0]).name} {argv[1]}` {error}") from None
        port = layout.http_port if scenario.listener == "http" else layout.tcp_port
        url = f"http://{layout.host}:{port}/"
        run_wrk(children, url, options.warmup, options.connections, scenario.headers)
        tree = process_tree(process.pid)
        cpu_before = cpu_seconds(tree)
        result = run_wrk(children, url, options.duration, options.connections, scenario.headers)
        tree = process_tree(process.pid)
        cpu_used = cpu_seconds(tree) - cpu_before
        if process.poll() is not None:
            raise Unavailable(f"exited with status {process.returncode} under load: {last_line(log)}")
        figures = result.to_json()
        figures.update(
            peak_rss_kib=peak_rss_kib(tree),
            processes=len(tree),
            cpu_seconds=round(cpu_used, 2),
            cpu_percent=round(100.0 * cpu_used / max(result.seconds, 1e-9), 1),
        )
        return figures
    finally:
        children.stop(process)


def start_origins(children: Children, workdir: Path) -> tuple[int, ...]:
    binary = shutil.which("nginx")
    if binary is None:
        raise SystemExit("bench: nginx is not installed (apt-get install nginx-light)")
    ports = []
    for index in range(1, ORIGINS + 1):
        port = free_port()
        tag = f"nginx-n{index}"
        conf = workdir / f"{tag}.conf"
        conf.write_text(nginx_conf(port, workdir, tag))
        log = workdir / f"{tag}.out"
        process = children.start(
            [binary, "-p", str(workdir), "-e", str(workdir / f"{tag}-error.log"), "-c", str(conf),
             "-g", "daemon off;"], log=log, cwd=workdir)
        try:
            wait_listening(process, (port,), log)
        except StartupError as error:
            raise SystemExit(f"bench: nginx origin n{index} {error}") from None
        ports.append(port)
    return tuple(ports)


# --------------------------------------------------------------------------- report


def _version(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def machine_facts(options: argparse.Namespace) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "pinned": False,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "haproxy": _version(["haproxy", "-v"]),
        "nginx": _version(["nginx", "-v"]),
        "wrk": _version(["wrk", "--version"]),
        "haproxy_nbthread": options.haproxy_threads,
        "origins": f"{ORIGINS} nginx, worker_processes 1, return 200 \"ok\\n\"",
    }


ERROR_SHARE_FLAGGED = 0.01  # a figure with more failed requests than this is marked "!"


def _rate(figures: dict[str, Any] | None) -> str:
    if not figures or "rate" not in figures:
        return "-"
    flag = " !" if figures["errors"] > ERROR_SHARE_FLAGGED * max(figures["requests"], 1) else ""
    return f"{figures['rate']:,.0f}{flag}"


def _latency(figures: dict[str, Any] | None) -> str:
    if not figures or "latency_ms" not in figures:
        return "-"
    latency = figures["latency_ms"]
    return f"{latency.get('50', float('nan')):.2f} / {latency.get('99', float('nan')):.2f}"


def _rss(figures: dict[str, Any] | None) -> str:
    return f"{figures['peak_rss_kib'] / 1024:.1f} MiB" if figures and "peak_rss_kib" in figures else "-"


def _cpu(figures: dict[str, Any] | None) -> str:
    return f"{figures['cpu_percent']:.0f}%" if figures and "cpu_percent" in figures else "-"


def render_table(rows: list[dict[str, Any]]) -> str:
    headings = ["scenario", "HAProxy req/s", "gproxy req/s", "gproxy/HAProxy", "HAProxy p50/p99 ms",
                "gproxy p50/p99 ms", "HAProxy RSS", "gproxy RSS", "HAProxy CPU", "gproxy CPU"]
    lines = []
    for row in rows:
        haproxy, gproxy = row["results"].get("haproxy"), row["results"].get("gproxy")
        ratio = f"{row['ratio']:.2f}" if row.get("ratio") is not None else "-"
        lines.append([row["scenario"], _rate(haproxy), _rate(gproxy) if gproxy and "rate" in gproxy else "pending",
                      ratio, _latency(haproxy), _latency(gproxy), _rss(haproxy), _rss(gproxy),
                      _cpu(haproxy), _cpu(gproxy)])
    widths = [max(len(str(cell)) for cell in column) for column in zip(headings, *lines)]
    out = ["  ".join(heading.ljust(width) for heading, width in zip(headings, widths))]
    out.append("  ".join("-" * width for width in widths))
    for line in lines:
        out.append("  ".join([line[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])]))
    return "\n".join(out)


def notes(rows: list[dict[str, Any]]) -> list[str]:
    found = []
    for row in rows:
        for key, figures in row["results"].items():
            if "unavailable" in figures:
                found.append(f"{key} {row['scenario']}: unavailable: {figures['unavailable']}")
            elif figures.get("errors"):
                details = ", ".join(f"{kind} {count}" for kind, count in figures["socket_errors"].items() if count)
                if figures.get("non_2xx"):
                    details += (", " if details else "") + f"non-2xx {figures['non_2xx']}"
                found.append(f"{key} {row['scenario']}: {figures['errors']} errors of {figures['requests']} "
                             f"requests ({details})")
    return found


# --------------------------------------------------------------------------- main


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/loads.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=DEFAULT_DURATION_SECONDS, metavar="SECONDS",
                        help=f"length of each measured load (default {DEFAULT_DURATION_SECONDS})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_DURATION_SECONDS}s loads (overrides --duration)")
    parser.add_argument("--connections", type=int, default=WRK_CONNECTIONS,
                        help=f"wrk connections (default {WRK_CONNECTIONS})")
    parser.add_argument("--scenario", action="append", choices=[s.name for s in SCENARIOS],
                        help="run only this scenario (repeatable)")
    parser.add_argument("--only", choices=[p.key for p in PROXIES], help="measure only this proxy")
    parser.add_argument("--gproxy", default=str(REPO / ".venv" / "bin" / "gproxy"),
                        help="the gproxy executable (default: the project's virtualenv)")
    parser.add_argument("--haproxy-threads", type=int, default=HAPROXY_NBTHREAD,
                        help=f"HAProxy's nbthread (default {HAPROXY_NBTHREAD})")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON figures")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    options = parser.parse_args(argv)
    if options.quick:
        options.duration = QUICK_DURATION_SECONDS
    if options.duration < 1:
        parser.error("--duration must be at least 1 second")
    options.warmup = WARMUP_SECONDS
    return options


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    # SIGINT, SIGTERM and SIGHUP end the run: through the `finally` clauses.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    options = _parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)  # even when started with SIGINT ignored (background jobs)
    scenarios = [s for s in SCENARIOS if not options.scenario or s.name in options.scenario]
    proxies = [p for p in PROXIES if not options.only or p.key == options.only]
    workdir = Path(tempfile.mkdtemp(prefix="gproxy-bench-"))
    machine = machine_facts(options)
    machine["fd_limit"] = raise_fd_limit()
    options.maxconn = machine["maxconn"] = maxconn_for(machine["fd_limit"])
    print(f"bench: {machine['cpus']} CPUs, nothing pinned (wrk, the proxy and {ORIGINS} nginx workers share them); "
          f"{options.duration}s per load, wrk -t{WRK_THREADS} -c{options.connections}; "
          f"HAProxy nbthread {options.haproxy_threads}; maxconn {options.maxconn}", flush=True)
    rows: list[dict[str, Any]] = []
    unavailable: dict[str, str] = {}
    started = time.time()
    try:
        with Children() as children:
            origins = start_origins(children, workdir)
            direct = run_wrk(children, f"http://127.0.0.1:{origins[0]}/", options.duration, options.connections)
            print(f"bench: one nginx origin, direct: {direct.rate:,.0f} req/s (the ceiling through any proxy)",
                  flush=True)
            for scenario in scenarios:
                row: dict[str, Any] = {"scenario": scenario.name, "description": scenario.description,
                                       "headers": list(scenario.headers), "results": {}, "ratio": None}
                for proxy in proxies:
                    if proxy.key in unavailable:  # do not retry a proxy that cannot start
                        row["results"][proxy.key] = {"unavailable": unavailable[proxy.key]}
                        continue
                    print(f"bench: {scenario.name} through {proxy.label}...", flush=True)
                    try:
                        figures = measure_proxy(children, proxy, scenario, origins, workdir, options)
                    except Unavailable as reason:
                        unavailable[proxy.key] = str(reason)
                        figures = {"unavailable": str(reason)}
                        print(f"bench: {proxy.label} unavailable: {reason}", flush=True)
                    row["results"][proxy.key] = figures
                haproxy, gproxy = row["results"].get("haproxy", {}), row["results"].get("gproxy", {})
                if haproxy.get("rate") and gproxy.get("rate"):
                    row["ratio"] = round(gproxy["rate"] / haproxy["rate"], 3)
                rows.append(row)
    except KeyboardInterrupt:
        print("bench: interrupted; every child was stopped", file=sys.stderr)
        return 130
    finally:
        if options.keep:
            print(f"bench: configurations and logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    table = render_table(rows)
    print()
    print(table)
    for note in notes(rows):
        print(f"  note: {note}")
    if "!" in table:
        print(f"  (!: more than {ERROR_SHARE_FLAGGED:.0%} of the requests failed: the rate is not comparable)")
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": machine,
        "settings": {"duration_seconds": options.duration, "warmup_seconds": options.warmup,
                     "wrk_threads": WRK_THREADS, "wrk_connections": options.connections},
        "direct_origin": direct.to_json(),
        "scenarios": rows,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nbench: figures written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
