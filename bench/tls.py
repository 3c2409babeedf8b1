"""TLS termination: gproxy against HAProxy (`bind ... ssl crt`) on the same certificate.

`.venv/bin/python bench/tls.py [--quick | --duration S]` makes one RSA 2048
self-signed certificate (the e2e tests' recipe), starts two nginx origins, and
for each scenario runs a fresh HAProxy and a fresh gproxy with that
certificate on an https listener in front of them, loaded by wrk over https:

    https-keepalive  wrk -t1 -c50 over TLS, keep-alive: the cost of encrypting requests
    https-handshake  wrk -t1 -c50 with "Connection: close": every request is a new
                     connection and a full TLS handshake (wrk does not resume
                     sessions), so the rate is the handshake rate

Both proxies use their defaults otherwise (TLS 1.3 is negotiated by both),
one event loop each (HAProxy nbthread 1, one gproxy worker), no logs. The
figures and the gproxy/HAProxy ratios are printed and written to
bench/results/tls.json. Compare ratios, not absolute figures: nothing is pinned.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from children import Children, StartupError, cpu_seconds, free_port, peak_rss_kib, process_tree, wait_listening
from plain_configs import MAXCONN, TIMEOUT_CLIENT, TIMEOUT_CONNECT, TIMEOUT_SERVER
from loads import (
    DEFAULT_DURATION_SECONDS,
    QUICK_DURATION_SECONDS,
    REPO,
    WARMUP_SECONDS,
    WRK_CONNECTIONS,
    WRK_THREADS,
    Unavailable,
    _stop_on_signal,
    check_config,
    machine_facts,
    notes,
    raise_fd_limit,
    render_table,
    run_wrk,
    start_origins,
)

RESULTS = REPO / "bench" / "results" / "tls.json"
HAPROXY_NBTHREAD = 1
CERT_BITS = 2048  # RSA, as tests/e2e/test_tls_e2e.py makes it
ALPN = "http/1.1"


@dataclass(frozen=True)
class TlsScenario:
    name: str
    description: str
    headers: tuple[str, ...] = ()


SCENARIOS = (
    TlsScenario("https-keepalive", "HTTPS, keep-alive: requests over established TLS connections"),
    TlsScenario("https-handshake", "HTTPS, one connection per request: one full TLS handshake each",
                ("Connection: close",)),
)


def make_certificate(workdir: Path) -> Path:
    key, cert, pem = workdir / "bench.key", workdir / "bench.crt", workdir / "bench.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", f"rsa:{CERT_BITS}", "-nodes", "-subj", "/CN=localhost",
                    "-days", "1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    return pem


def haproxy_cfg(port: int, origins: tuple[int, ...], cert: Path, maxconn: int) -> str:
    servers = "".join(f"    server n{index} 127.0.0.1:{origin}\n" for index, origin in enumerate(origins, 1))
    return f"""# HAProxy TLS reference for bench/tls.py
global
    maxconn {maxconn}
    nbthread {HAPROXY_NBTHREAD}

defaults
    mode http
    timeout connect {TIMEOUT_CONNECT}
    timeout client {TIMEOUT_CLIENT}
    timeout server {TIMEOUT_SERVER}

listen bench_tls
    bind 127.0.0.1:{port} ssl crt {cert} alpn {ALPN}
    balance roundrobin
{servers}"""


def gproxy_toml(port: int, origins: tuple[int, ...], cert: Path, maxconn: int) -> str:
    servers = "".join(f'\n[[listen.bench_tls.server]]\nname = "n{index}"\naddress = "127.0.0.1:{origin}"\n'
                      for index, origin in enumerate(origins, 1))
    return f"""# gproxy configuration for bench/tls.py (the same as the HAProxy reference)
[global]
maxconn = {maxconn}

[defaults]
mode = "http"
timeout = {{ connect = "{TIMEOUT_CONNECT}", client = "{TIMEOUT_CLIENT}", server = "{TIMEOUT_SERVER}" }}

[listen.bench_tls]
bind = [{{ address = "127.0.0.1:{port}", ssl = true, crt = "{cert}", alpn = ["{ALPN}"] }}]
balance = "roundrobin"
{servers}"""


def proxy_command(key: str, workdir: Path, port: int, origins: tuple[int, ...], cert: Path,
                  options: argparse.Namespace) -> list[str]:
    if key == "haproxy":
        binary = shutil.which("haproxy")
        if binary is None:
            raise Unavailable("haproxy is not installed")
        path = workdir / "haproxy-tls.cfg"
        path.write_text(haproxy_cfg(port, origins, cert, options.maxconn))
        check_config([binary, "-c", "-q", "-f", str(path)])
        return [binary, "-f", str(path), "-db"]
    path = workdir / "gproxy-tls.toml"
    path.write_text(gproxy_toml(port, origins, cert, options.maxconn))
    check_config([options.gproxy, "check", str(path)])
    return [options.gproxy, "run", str(path), "--foreground"]


def measure(children: Children, key: str, scenario: TlsScenario, origins: tuple[int, ...], cert: Path,
            workdir: Path, options: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    argv = proxy_command(key, workdir, port, origins, cert, options)
    log = workdir / f"{key}-{scenario.name}.log"
    process = children.start(argv, log=log, cwd=workdir)
    try:
        try:
            wait_listening(process, (port,), log)
        except StartupError as error:
            raise Unavailable(f"`{Path(argv[0]).name}` {error}") from None
        url = f"https://localhost:{port}/"
        run_wrk(children, url, options.warmup, options.connections, scenario.headers)
        tree = process_tree(process.pid)
        cpu_before = cpu_seconds(tree)
        result = run_wrk(children, url, options.duration, options.connections, scenario.headers)
        cpu_used = cpu_seconds(process_tree(process.pid)) - cpu_before
        figures = result.to_json()
        figures.update(peak_rss_kib=peak_rss_kib(tree), processes=len(tree), cpu_seconds=round(cpu_used, 2),
                       cpu_percent=round(100.0 * cpu_used / max(result.seconds, 1e-9), 1))
        return figures
    finally:
        children.stop(process)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/tls.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=DEFAULT_DURATION_SECONDS, metavar="SECONDS")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_DURATION_SECONDS}s loads")
    parser.add_argument("--connections", type=int, default=WRK_CONNECTIONS)
    parser.add_argument("--gproxy", default=str(REPO / ".venv" / "bin" / "gproxy"))
    parser.add_argument("--output", type=Path, default=RESULTS)
    options = parser.parse_args(argv)
    if options.quick:
        options.duration = QUICK_DURATION_SECONDS
    options.warmup = WARMUP_SECONDS
    options.haproxy_threads = HAPROXY_NBTHREAD
    return options


def main(argv: list[str] | None = None) -> int:
    options = _parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _stop_on_signal)
    workdir = Path(tempfile.mkdtemp(prefix="gproxy-bench-tls-"))
    machine = machine_facts(options)
    machine["fd_limit"] = raise_fd_limit()
    options.maxconn = min(MAXCONN, (machine["fd_limit"] - 200) // 2)
    rows: list[dict[str, Any]] = []
    started = time.time()
    try:
        cert = make_certificate(workdir)
        with Children() as children:
            origins = start_origins(children, workdir)
            for scenario in SCENARIOS:
                row: dict[str, Any] = {"scenario": scenario.name, "description": scenario.description,
                                       "headers": list(scenario.headers), "results": {}, "ratio": None}
                for key in ("haproxy", "gproxy"):
                    print(f"bench: {scenario.name} through {key}...", flush=True)
                    try:
                        row["results"][key] = measure(children, key, scenario, origins, cert, workdir, options)
                    except Unavailable as reason:
                        row["results"][key] = {"unavailable": str(reason)}
                haproxy, gproxy = row["results"].get("haproxy", {}), row["results"].get("gproxy", {})
                if haproxy.get("rate") and gproxy.get("rate"):
                    row["ratio"] = round(gproxy["rate"] / haproxy["rate"], 3)
                rows.append(row)
    except KeyboardInterrupt:
        print("bench: interrupted; every child was stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(render_table(rows))
    for note in notes(rows):
        print(f"  note: {note}")
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "machine": machine,
        "settings": {"duration_seconds": options.duration, "warmup_seconds": options.warmup,
                     "wrk_threads": WRK_THREADS, "wrk_connections": options.connections,
                     "certificate": f"RSA {CERT_BITS}, self-signed", "alpn": ALPN},
        "scenarios": rows,
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nbench: figures written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
