"""Benchmark gproxy against HAProxy 2.6 on this machine, in the same run: issue 8's table.

`make bench` (or `.venv/bin/python bench/run.py [--quick] [--rounds N] [--figure KEY]`)
starts two nginx origins on loopback and one HAProxy (`nbthread 1`) and one
gproxy (one worker) with the same configuration (bench/configs.py), then
measures each figure of issue 8 in rounds, HAProxy then gproxy in each round
(A B A B ...), and prints one table: both figures (medians over the rounds),
the median of the per-round ratios gproxy/HAProxy, the target and PASS/FAIL.

    http_keepalive  wrk -t1 -c50 on the spec's listener (weights, cookie prefix,
                    forwardfor, checks, httplog), keep-alive
    http_close      the same listener in the spec's close mode (option httpclose)
    tcp             wrk -t1 -c50 through a mode tcp listener
    p99_1000        wrk -t1 -c1000 --latency on the keep-alive listener: p99,
                    timeouts and socket errors
    bulk            1 GiB (a sparse file served by nginx) through the tcp listener,
                    counted by a client in this process
    added_latency   sequential requests on one keep-alive connection, no other load:
                    median and p99 of proxied minus direct-to-origin, per round
    idle_memory     bench/idle_connections.py's measurement: RSS growth per idle
                    client connection with 10 000 of them open (fresh processes)

`--workers N` runs gproxy with `workers = N` and HAProxy with `nbthread N`
(unless --haproxy-threads says otherwise): N processes against N threads,
like for like; the table's header and footer lines say which was measured.
(idle_memory always runs one gproxy worker.)

Every wrk request must answer 2xx: failed requests (non-2xx, socket errors,
timeouts) are listed under the table and mark the figure's verdict with "!".
Nothing is pinned to a CPU: wrk, the proxies and the origins share the cores,
so only the ratios measured in one run compare. Figures go to
bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

import idle_connections
import probes
from children import (Children, StartupError, cpu_seconds, free_port, last_line, process_tree, raise_fd_limit,
                      wait_listening)
from configs import BULK_PATH, LISTENERS, Layout, gproxy_toml, haproxy_cfg, maxconn_for, nginx_conf
from machine import export_gproxy, machine_facts, working_tree_source
from scoreboard import FIGURES, FIGURES_BY_KEY, GPROXY, HAPROXY, Figure, Outcome, Sample, judge
from scoreboard import median, percentile, render_machine, render_notes, render_table
from wrk_report import WrkResult
from wrk_run import WRK_THREADS, Unavailable, check_config, run_wrk

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "latest.json"
DEFAULT_ROUNDS = 3
QUICK_ROUNDS = 2
DEFAULT_DURATION_SECONDS = 5
QUICK_DURATION_SECONDS = 2
WARMUP_SECONDS = 1  # one short wrk run per proxy before a figure's first round
WRK_CONNECTIONS = 50
HIGH_CONNECTIONS = 1000
WRK_TIMEOUT = "2s"  # wrk's default, stated: a request slower than this is a timeout
ORIGINS = 2
BULK_BYTES = 1 << 30  # 1 GiB, a sparse file: nginx sends it from the page cache
LATENCY_REQUESTS = 2000
LATENCY_WARMUP = 100
IDLE_CONNECTIONS = 10_000
HAPROXY_NBTHREAD = 1  # one event loop against gproxy's one: the comparison stays per core
GPROXY_WORKERS = 1


# --------------------------------------------------------------------------- the two proxies


@dataclass(frozen=True)
class Proxy:
    key: str  # scoreboard.HAPROXY | scoreboard.GPROXY
    label: str

    def prepare(self, workdir: Path, layout: Layout, options: argparse.Namespace) -> list[str]:
        """Write the configuration, validate it, and return the command that runs the proxy."""
        if self.key == HAPROXY:
            binary = shutil.which("haproxy")
            if binary is None:
                raise Unavailable("haproxy is not installed (apt-get install haproxy)")
            path = workdir / "haproxy.cfg"
            path.write_text(haproxy_cfg(layout, options.haproxy_threads, options.haproxy_splice))
            check_config([binary, "-c", "-q", "-f", str(path)])
            return [binary, "-f", str(path), "-db"]
        binary = Path(options.gproxy)
        if not binary.exists():
            raise Unavailable(f"{binary} does not exist (make installs it)")
        path = workdir / "gproxy.toml"
        path.write_text(gproxy_toml(layout, options.workers))
        check_config([str(binary), "check", str(path)])
        return [str(binary), "run", str(path), "--foreground"]


PROXIES = (Proxy(HAPROXY, "HAProxy"), Proxy(GPROXY, "gproxy"))


@dataclass
class Running:
    """A proxy started for the load figures, with its ports."""

    proxy: Proxy
    layout: Layout
    process: subprocess.Popen[bytes]
    log: Path
    warmed: set[str]  # figures whose warm-up load it had


def start_proxy(children: Children, proxy: Proxy, origins: tuple[int, ...], log_port: int,
                workdir: Path, options: argparse.Namespace) -> Running:
    layout = Layout(origins=origins, ports={name: free_port() for name in LISTENERS}, log_port=log_port,
                    maxconn=options.maxconn)
    argv = proxy.prepare(workdir, layout, options)
    log = workdir / f"{proxy.key}.log"
    process = children.start(argv, log=log, cwd=workdir)
    try:
        wait_listening(process, tuple(layout.ports.values()), log)
    except StartupError as error:
        children.stop(process)
        raise Unavailable(f"`{Path(argv[0]).name} {argv[1]}` {error}") from None
    # A few requests on each HTTP listener: it answers before anything is measured
    # (one per connection on the close listener, which closes after each response).
    for name, connections, count in (("spec_keepalive", 1, 4), ("spec_close", 4, 1)):
        try:
            for _ in range(connections):
                if probes.sequential_requests(layout.host, layout.ports[name], count=count, warmup=0).non_2xx:
                    raise probes.ProbeError("an answer was not 2xx")
        except (OSError, probes.ProbeError) as error:
            children.stop(process)
            raise Unavailable(f"first requests on {name} failed: {error}") from None
    return Running(proxy, layout, process, log, set())


def _alive(running: Running) -> None:
    if running.process.poll() is not None:
        raise Unavailable(f"exited with status {running.process.returncode}: {last_line(running.log)}")


# --------------------------------------------------------------------------- measuring


def wrk_sample(result: WrkResult, value: float, cpu: float, warmup: WrkResult | None = None) -> Sample:
    """A wrk load's sample; the requests of its warm-up count too: every request must answer 2xx."""
    runs = (result,) if warmup is None else (result, warmup)
    errors = {kind: sum(run.socket_errors.get(kind, 0) for run in runs)
              for kind in ("connect", "read", "write", "timeout")}
    detail = {**result.to_json(), "cpu_percent": round(100.0 * cpu / max(result.seconds, 1e-9), 1),
              "cpu_us_per_request": round(1e6 * cpu / max(result.requests, 1), 1)}
    if warmup is not None:
        detail["warmup"] = warmup.to_json()
    return Sample(
        value=value, requests=sum(run.requests for run in runs), non_2xx=sum(run.non_2xx for run in runs),
        socket_errors=errors["connect"] + errors["read"] + errors["write"], timeouts=errors["timeout"],
        detail=detail)


@dataclass(frozen=True)
class Bench:
    """What a figure's round needs: the children, the running proxies, the origins, the options."""

    children: Children
    running: dict[str, Running]
    origins: tuple[int, ...]
    options: argparse.Namespace
    direct: dict[str, float]  # direct-to-origin figures, for context


def wrk_figure(listener: str, connections: int, value: Callable[[WrkResult], float]) -> Callable[..., Sample]:
    def measure(bench: Bench, running: Running) -> Sample:
        url = running.layout.url(listener)
        warmup = None
        if listener + str(connections) not in running.warmed:
            warmup = run_wrk(bench.children, url, WARMUP_SECONDS, connections, timeout=WRK_TIMEOUT)
            running.warmed.add(listener + str(connections))
        tree = process_tree(running.process.pid)
        before = cpu_seconds(tree)
        result = run_wrk(bench.children, url, bench.options.duration, connections, timeout=WRK_TIMEOUT)
        cpu = cpu_seconds(process_tree(running.process.pid)) - before
        _alive(running)
        return wrk_sample(result, value(result), cpu, warmup)
    return measure


def _p99(result: WrkResult) -> float:
    if "99" not in result.latency_ms:
        raise Unavailable("wrk printed no 99th percentile")
    return result.latency_ms["99"]


def bulk_sample(bench: Bench, running: Running) -> Sample:
    try:
        transfer = probes.download(running.layout.host, running.layout.ports["tcp"], BULK_PATH)
    except (OSError, probes.ProbeError) as error:
        _alive(running)
        return Sample(value=0.0, requests=1, socket_errors=1, detail={"error": str(error)})
    _alive(running)
    complete = transfer.body_bytes == BULK_BYTES
    return Sample(value=transfer.mib_per_second, requests=1,
                  non_2xx=int(not 200 <= transfer.status < 300), socket_errors=int(not complete),
                  detail={**asdict(transfer), "mib_per_second": round(transfer.mib_per_second, 1)})


def _latencies(host: str, port: int, count: int) -> probes.Latencies:
    return probes.sequential_requests(host, port, count=count, warmup=LATENCY_WARMUP)


def latency_round(bench: Bench) -> tuple[Sample, Sample]:
    """Direct, HAProxy, gproxy: each proxy's added median and p99 against the direct run of the same round."""
    count = bench.options.latency_requests
    direct = _latencies("127.0.0.1", bench.origins[0], count)
    direct_median, direct_p99 = median(direct.milliseconds), percentile(direct.milliseconds, 99)
    samples = []
    for key in (HAPROXY, GPROXY):
        running = bench.running[key]
        proxied = _latencies(running.layout.host, running.layout.ports["spec_keepalive"], count)
        _alive(running)
        samples.append(Sample(
            value=median(proxied.milliseconds) - direct_median,
            aux=percentile(proxied.milliseconds, 99) - direct_p99,
            requests=count, non_2xx=proxied.non_2xx,
            detail={"median_ms": median(proxied.milliseconds), "p99_ms": percentile(proxied.milliseconds, 99),
                    "direct_median_ms": direct_median, "direct_p99_ms": direct_p99}))
    return samples[0], samples[1]


def idle_round(connections: int, origin_port: int, gproxy: list[str]) -> tuple[Sample, Sample]:
    """bench/idle_connections.py's measurement of each proxy, fresh processes."""
    samples = []
    for key in (HAPROXY, GPROXY):
        row = idle_connections.measure(key, connections, origin_port, gproxy)
        bad = sum(code != 200 for code in row["other_client_codes"])
        samples.append(Sample(value=row["bytes_per_connection"], requests=idle_connections.SERVED_REQUESTS,
                              non_2xx=bad, detail=row))
    return samples[0], samples[1]


LOAD_FIGURES: dict[str, Callable[..., Sample]] = {
    "http_keepalive": wrk_figure("spec_keepalive", WRK_CONNECTIONS, lambda result: result.rate),
    "http_close": wrk_figure("spec_close", WRK_CONNECTIONS, lambda result: result.rate),
    "tcp": wrk_figure("tcp", WRK_CONNECTIONS, lambda result: result.rate),
    "p99_1000": wrk_figure("spec_keepalive", HIGH_CONNECTIONS, _p99),
    "bulk": bulk_sample,
}


def measure_figure(bench: Bench, figure: Figure) -> tuple[list[tuple[Sample, Sample]], str]:
    """The (HAProxy, gproxy) samples of every round, and why the figure stopped early if it did."""
    rounds: list[tuple[Sample, Sample]] = []
    try:
        if figure.key == "bulk":
            # Straight from an origin first: the page cache holds the file before
            # the first proxied transfer, which would otherwise pay for it alone.
            probes.download("127.0.0.1", bench.origins[0], BULK_PATH)
            direct = probes.download("127.0.0.1", bench.origins[0], BULK_PATH)  # the ceiling, cache warm
            bench.direct["bulk_mib_per_second"] = round(direct.mib_per_second, 1)
        for _ in range(bench.options.rounds):
            if figure.key == "added_latency":
                rounds.append(latency_round(bench))
            else:
                measure = LOAD_FIGURES[figure.key]
                haproxy = measure(bench, bench.running[HAPROXY])
                gproxy = measure(bench, bench.running[GPROXY])
                rounds.append((haproxy, gproxy))
    except (Unavailable, OSError, probes.ProbeError) as error:
        return rounds, f"stopped: {error}"
    return rounds, ""


def _median_detail(samples: list[Sample], name: str) -> float | None:
    values = [sample.detail[name] for sample in samples if name in sample.detail]
    return median(values) if values else None


def context(key: str, rounds: list[tuple[Sample, Sample]], direct: dict[str, float]) -> list[str]:
    """What helps read a figure: CPU use under wrk, the direct-to-origin ceilings, the idle counts."""
    haproxy = [pair[0] for pair in rounds]
    gproxy = [pair[1] for pair in rounds]
    if not rounds:
        return []
    if key in ("http_keepalive", "http_close", "tcp", "p99_1000"):
        cpu = [_median_detail(samples, "cpu_percent") for samples in (haproxy, gproxy)]
        per_request = [_median_detail(samples, "cpu_us_per_request") for samples in (haproxy, gproxy)]
        if None not in cpu and None not in per_request:
            # CPU time per request moves less with the machine's load than req/s does.
            return [f"CPU under load (median): HAProxy {cpu[0]:.0f}%, gproxy {cpu[1]:.0f}% of one core; "
                    f"per request HAProxy {per_request[0]:.0f} us, gproxy {per_request[1]:.0f} us "
                    f"({per_request[1] / max(per_request[0], 1e-9):.1f}x)"]
    if key == "bulk" and "bulk_mib_per_second" in direct:
        return [f"direct from one origin: {direct['bulk_mib_per_second']:,.0f} MiB/s"]
    if key == "added_latency":
        direct_median = _median_detail(haproxy, "direct_median_ms")
        direct_p99 = _median_detail(haproxy, "direct_p99_ms")
        if direct_median is not None and direct_p99 is not None:
            return [f"direct to the origin: median {direct_median:.3f} ms, p99 {direct_p99:.3f} ms; "
                    f"proxied medians HAProxy {_median_detail(haproxy, 'median_ms'):.3f} ms, "
                    f"gproxy {_median_detail(gproxy, 'median_ms'):.3f} ms"]
    if key == "idle_memory":
        lines = []
        for label, samples in (("HAProxy", haproxy), ("gproxy", gproxy)):
            last = samples[-1].detail
            lines.append(f"{label}: {last['connections']:,} connections, RSS {last['rss_before_kib'] / 1024:.1f}"
                         f" -> {last['rss_during_kib'] / 1024:.1f} MiB, opened in {last['seconds_to_open']} s, "
                         f"another client {last['other_client_codes']} in <= {last['other_client_max_latency_ms']}"
                         f" ms (last round)")
        return lines
    return []


def start_origins(children: Children, workdir: Path, bulk_file: Path) -> tuple[int, ...]:
    binary = shutil.which("nginx")
    if binary is None:
        raise SystemExit("bench: nginx is not installed (apt-get install nginx-light)")
    ports = []
    for index in range(1, ORIGINS + 1):
        port = free_port()
        tag = f"nginx-n{index}"
        conf = workdir / f"{tag}.conf"
        conf.write_text(nginx_conf(port, workdir, tag, bulk_file))
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


# --------------------------------------------------------------------------- main


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=None,
                        help=f"rounds per figure, HAProxy then gproxy in each (default {DEFAULT_ROUNDS})")
    parser.add_argument("--duration", type=int, default=None, metavar="SECONDS",
                        help=f"length of each wrk load (default {DEFAULT_DURATION_SECONDS})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_ROUNDS} rounds of {QUICK_DURATION_SECONDS}s loads unless stated")
    parser.add_argument("--figure", action="append", choices=[figure.key for figure in FIGURES],
                        help="measure only this figure (repeatable)")
    parser.add_argument("--idle-connections", type=int, default=IDLE_CONNECTIONS,
                        help=f"idle connections of the memory figure (default {IDLE_CONNECTIONS})")
    parser.add_argument("--latency-requests", type=int, default=LATENCY_REQUESTS,
                        help=f"sequential requests of the added-latency figure (default {LATENCY_REQUESTS})")
    parser.add_argument("--gproxy", default=str(REPO / ".venv" / "bin" / "gproxy"),
                        help="the gproxy executable (default: the project's virtualenv)")
    parser.add_argument("--gproxy-ref", metavar="REF",
                        help="measure gproxy as committed at this git ref (e.g. main), not the working tree")
    parser.add_argument("--haproxy-splice", action="store_true",
                        help="HAProxy splices on the tcp listener (option splice-request/response); "
                             "its default does not")
    parser.add_argument("--workers", type=int, default=GPROXY_WORKERS, metavar="N",
                        help=f"gproxy's workers, and HAProxy's nbthread unless --haproxy-threads is given "
                             f"(default {GPROXY_WORKERS})")
    parser.add_argument("--haproxy-threads", type=int, default=None,
                        help=f"HAProxy's nbthread (default: --workers, {HAPROXY_NBTHREAD} without it)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON figures")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (configs, logs)")
    options = parser.parse_args(argv)
    if options.rounds is None:
        options.rounds = QUICK_ROUNDS if options.quick else DEFAULT_ROUNDS
    if options.duration is None:
        options.duration = QUICK_DURATION_SECONDS if options.quick else DEFAULT_DURATION_SECONDS
    if options.duration < 1 or options.rounds < 1:
        parser.error("--duration and --rounds must be at least 1")
    if options.workers < 1 or (options.haproxy_threads is not None and options.haproxy_threads < 1):
        parser.error("--workers and --haproxy-threads must be at least 1")
    if options.haproxy_threads is None:
        options.haproxy_threads = options.workers  # like for like: N processes against N threads
    return options


def _stop_on_signal(signum: int, frame: FrameType | None) -> None:
    # SIGINT, SIGTERM and SIGHUP end the run: through the `finally` clauses.
    raise KeyboardInterrupt


def run_figures(options: argparse.Namespace, workdir: Path, figures: list[Figure]) -> list[Outcome]:
    outcomes: dict[str, Outcome] = {}
    samples: dict[str, list[tuple[Sample, Sample]]] = {}
    contexts: dict[str, list[str]] = {}
    load = [figure for figure in figures if figure.key != "idle_memory"]
    workdir.chmod(0o711)  # nginx's workers (nobody, when the bench runs as root) open the bulk file
    bulk_file = workdir / "bulk.bin"
    with open(bulk_file, "wb") as handle:
        handle.truncate(BULK_BYTES)  # sparse: no disk written, nginx reads zeros from the page cache
    # The syslog target of both proxies: a bound UDP socket nobody reads, so
    # sending a log line costs what it costs and the kernel drops it when full.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, Children() as children:
        sink.bind(("127.0.0.1", 0))
        if load:
            origins = start_origins(children, workdir, bulk_file)
            running: dict[str, Running] = {}
            failure = ""
            for proxy in PROXIES:
                try:
                    running[proxy.key] = start_proxy(children, proxy, origins, sink.getsockname()[1],
                                                     workdir, options)
                except Unavailable as reason:
                    failure = f"{proxy.label} unavailable: {reason}"
                    print(f"bench: {failure}", flush=True)
            bench = Bench(children, running, origins, options, {})
            for figure in load:
                print(f"bench: {figure.key} ({options.rounds} rounds)...", flush=True)
                rounds, stopped = measure_figure(bench, figure) if not failure else ([], failure)
                samples[figure.key] = rounds
                outcomes[figure.key] = judge(figure, rounds, stopped)
                contexts[figure.key] = context(figure.key, rounds, bench.direct)
                print(f"bench:   {_brief(outcomes[figure.key])}", flush=True)
            for item in running.values():
                children.stop(item.process)
    if any(figure.key == "idle_memory" for figure in figures):
        figure = FIGURES_BY_KEY["idle_memory"]
        print(f"bench: idle_memory ({options.rounds} rounds of {options.idle_connections} connections)...",
              flush=True)
        server = idle_connections.OriginServer(("127.0.0.1", 0), idle_connections.Origin)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        rounds, stopped = [], ""
        try:
            for _ in range(options.rounds):
                rounds.append(idle_round(options.idle_connections, server.server_address[1], [options.gproxy]))
        except (RuntimeError, OSError) as error:
            stopped = f"stopped: {error}"
        finally:
            server.shutdown()
            server.server_close()
        samples[figure.key] = rounds
        outcomes[figure.key] = judge(figure, rounds, stopped)
        contexts[figure.key] = context(figure.key, rounds, {})
        print(f"bench:   {_brief(outcomes[figure.key])}", flush=True)
    options.samples = samples
    options.contexts = contexts
    return [outcomes[figure.key] for figure in figures if figure.key in outcomes]


def _parallelism(options: argparse.Namespace) -> str:
    """What the table compares: gproxy's workers against HAProxy's threads."""
    workers = f"{options.workers} worker{'s' if options.workers > 1 else ''}"
    return f"gproxy {workers} against HAProxy nbthread {options.haproxy_threads}"


def _brief(outcome: Outcome) -> str:
    ratio = f"{outcome.ratio:.2f}" if outcome.ratio is not None else "-"
    return f"gproxy {outcome.gproxy_cell}, HAProxy {outcome.haproxy_cell}, ratio {ratio}: {outcome.verdict}"


def main(argv: list[str] | None = None) -> int:
    options = _parse_args(argv)
    command = "bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    for tool in ("wrk", "nginx", "haproxy"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is not installed (make deps)", file=sys.stderr)
            return 1
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGHUP, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)  # even when started with SIGINT ignored (background jobs)
    figures = [figure for figure in FIGURES if not options.figure or figure.key in options.figure]
    workdir = Path(tempfile.mkdtemp(prefix="gproxy-bench-"))
    started = time.monotonic()
    try:
        if options.gproxy_ref:
            try:
                options.gproxy, source = export_gproxy(options.gproxy_ref, workdir / "gproxy-src")
            except (OSError, subprocess.CalledProcessError) as error:
                print(f"bench: cannot export gproxy at {options.gproxy_ref}: {error}", file=sys.stderr)
                return 1
        else:
            source = working_tree_source()
        machine = machine_facts(options.gproxy, options.haproxy_threads)
        machine["gproxy_source"] = source
        machine["gproxy_workers"] = options.workers
        machine["fd_limit"] = raise_fd_limit()
        options.maxconn = machine["maxconn"] = maxconn_for(machine["fd_limit"], options.haproxy_splice)
        machine["haproxy_splice"] = options.haproxy_splice
        print(f"bench: {render_machine(machine)}", flush=True)
        print(f"bench: gproxy from {source}; {_parallelism(options)}; {options.rounds} rounds (HAProxy then gproxy), "
              f"{options.duration}s per wrk load, wrk -t{WRK_THREADS}; descriptor limit {machine['fd_limit']}, "
              f"maxconn {options.maxconn}", flush=True)
        outcomes = run_figures(options, workdir, figures)
    except KeyboardInterrupt:
        print("bench: interrupted; every child was stopped", file=sys.stderr)
        return 130
    finally:
        if options.keep:
            print(f"bench: configurations and logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    print()
    print(render_table(outcomes))
    print()
    for line in render_notes(outcomes):
        print(f"  {line}")
    for outcome in outcomes:
        for line in options.contexts.get(outcome.figure.key, []):
            print(f"  {outcome.figure.key}: {line}")
    print(f"\nbench: {render_machine(machine)}")
    print(f"bench: gproxy from {source}; {_parallelism(options)}")
    print(f"bench: `{command.strip()}`, {elapsed:.0f} s, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    report = {
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(elapsed, 1),
        "command": command.strip(),
        "machine": machine,
        "settings": {"rounds": options.rounds, "duration_seconds": options.duration, "wrk_threads": WRK_THREADS,
                     "wrk_timeout": WRK_TIMEOUT, "idle_connections": options.idle_connections,
                     "latency_requests": options.latency_requests},
        "figures": [{
            "key": outcome.figure.key, "label": outcome.figure.label, "target": outcome.figure.target,
            "gproxy": outcome.gproxy, "haproxy": outcome.haproxy, "ratio": outcome.ratio,
            "ratios": list(outcome.ratios), "verdict": outcome.verdict, "notes": list(outcome.notes),
            "context": options.contexts.get(outcome.figure.key, []),
            "rounds": [{HAPROXY: asdict(pair[0]), GPROXY: asdict(pair[1])}
                       for pair in options.samples.get(outcome.figure.key, [])],
        } for outcome in outcomes],
    }
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"bench: figures written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
