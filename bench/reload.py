"""Reloads and upgrades under load: what a client sees while gproxy's master
replaces its workers, next to HAProxy's master-worker reload.

`.venv/bin/python bench/reload.py [--reloads 20] [--gproxy PATH] [--quick]`
starts two nginx origins, then for each proxy and each case runs two wrk
loads for the whole case on the same listener:

    keep-alive   wrk -t1 -c40            (connections reused; closed by the proxy on reload)
    close        wrk -t1 -c10 -H "Connection: close"   (a new connection per request: the
                 accept queue is what a reload could lose)

and meanwhile

    reloads      --reloads SIGHUPs to gproxy's master (SIGUSR2 to HAProxy's, its reload),
                 each waited for (gproxy: "reload complete" in its log; HAProxy: a new worker)
    upgrade      one SIGUSR2 to gproxy's master (the program runs again on the same sockets),
                 waited for until the old master is gone

then stops wrk with SIGINT (it prints its report) and counts requests,
socket errors (connect errors are refused connections) and non-2xx answers.
Figures go to stdout and bench/results/reload.json; docs/operations.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from children import FD_LIMIT_WANTED, Children, StartupError, free_port, process_tree, raise_fd_limit, wait_listening
from plain_configs import Layout, gproxy_toml, haproxy_cfg
from loads import Unavailable, start_origins
from wrk_report import WrkOutputError, parse_wrk

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "reload.json"
DEFAULT_RELOADS = 20
SETTLE_SECONDS = 2.0  # load before the first signal and after the last one
PAUSE_SECONDS = 0.3  # between a finished reload and the next signal
RELOAD_TIMEOUT_SECONDS = 30.0
WRK_LONG_RUN = "600s"  # wrk is stopped with SIGINT; this is only its upper bound
LOADS = (
    ("keep-alive", 40, ()),
    ("close", 10, ("Connection: close",)),
)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = RELOAD_TIMEOUT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise Unavailable(f"timed out waiting for {what}")


def children_of(pid: int) -> set[int]:
    return set(process_tree(pid)) - {pid}


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class Run:
    """One proxy under the two wrk loads."""

    def __init__(self, children: Children, argv: list[str], layout: Layout, log: Path):
        self.children = children
        self.layout = layout
        self.log = log
        self.process = children.start(argv, log=log)
        try:
            wait_listening(self.process, (layout.http_port,), log)
        except StartupError as error:
            raise Unavailable(f"{Path(argv[0]).name} {error}") from None
        url = f"http://{layout.host}:{layout.http_port}/"
        self.wrk = []
        for name, connections, headers in LOADS:
            command = ["wrk", "-t1", f"-c{connections}", f"-d{WRK_LONG_RUN}", "--latency"]
            for header in headers:
                command += ["-H", header]
            self.wrk.append((name, children.start([*command, url], capture=True)))

    def finish(self) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        for name, process in self.wrk:
            process.send_signal(signal.SIGINT)
            output, _ = process.communicate(timeout=30)
            self.children.stop(process)
            try:
                result = parse_wrk(output.decode(errors="replace"))
            except WrkOutputError:
                raise Unavailable(f"wrk ({name}) failed: {output.decode(errors='replace')[-200:]}") from None
            figures[name] = {"requests": result.requests, "seconds": result.seconds, "rate": result.rate,
                             "socket_errors": result.socket_errors, "non_2xx": result.non_2xx,
                             "refused": result.socket_errors.get("connect", 0), "errors": result.errors}
        self.children.stop(self.process)
        return figures


def gproxy_case(children: Children, binary: str, layout: Layout, workdir: Path, reloads: int,
                upgrade: bool) -> dict[str, Any]:
    pidfile = workdir / "gproxy.pid"
    config = workdir / "gproxy.toml"
    config.write_text(gproxy_toml(layout).replace("[global]\n", f'[global]\npidfile = "{pidfile}"\n', 1))
    log = workdir / f"gproxy-{'upgrade' if upgrade else 'reloads'}.log"
    run = Run(children, [binary, "run", str(config), "--foreground"], layout, log)
    wait_for(pidfile.exists, "gproxy's pid file")
    master = int(pidfile.read_text())
    time.sleep(SETTLE_SECONDS)
    started = time.monotonic()
    if upgrade:
        run.process.send_signal(signal.SIGUSR2)
        new = wait_for(lambda: (pid := int(pidfile.read_text() or 0)) != master and pid, "the new master")
        wait_for(lambda: not alive(master), "the old master's exit")
        done = {"old_master": master, "new_master": new}
    else:
        for number in range(2, reloads + 2):
            run.process.send_signal(signal.SIGHUP)
            wait_for(lambda: f"reload complete: generation {number} serving" in log.read_text(errors="replace"),
                     f"reload {number - 1}")
            time.sleep(PAUSE_SECONDS)
        done = {"reloads": reloads}
    elapsed = time.monotonic() - started
    time.sleep(SETTLE_SECONDS)
    # finish() stops wrk, then the master's process group: after an upgrade
    # the new master and its workers are in it too.
    figures = run.finish()
    return {**done, "signal_seconds": round(elapsed, 2), "loads": figures}


def haproxy_case(children: Children, layout: Layout, workdir: Path, reloads: int) -> dict[str, Any]:
    binary = shutil.which("haproxy")
    if binary is None:
        raise Unavailable("haproxy is not installed")
    config = workdir / "haproxy.cfg"
    config.write_text(haproxy_cfg(layout, 1))
    run = Run(children, [binary, "-W", "-db", "-f", str(config)], layout, workdir / "haproxy.log")
    master = run.process.pid
    wait_for(lambda: children_of(master), "HAProxy's worker")
    time.sleep(SETTLE_SECONDS)
    started = time.monotonic()
    seen = children_of(master)
    for number in range(reloads):
        run.process.send_signal(signal.SIGUSR2)
        new = wait_for(lambda: children_of(master) - seen, f"HAProxy reload {number + 1}")
        seen |= new
        time.sleep(PAUSE_SECONDS)
    elapsed = time.monotonic() - started
    time.sleep(SETTLE_SECONDS)
    return {"reloads": reloads, "signal_seconds": round(elapsed, 2), "loads": run.finish()}


def render(results: dict[str, Any]) -> str:
    lines = [f"{'case':<26} {'load':<11} {'requests':>9} {'req/s':>8} {'errors':>7} {'refused':>8} {'non-2xx':>8}"]
    for case, figures in results.items():
        if "unavailable" in figures:
            lines.append(f"{case:<26} unavailable: {figures['unavailable']}")
            continue
        for load, f in figures["loads"].items():
            lines.append(f"{case:<26} {load:<11} {f['requests']:>9} {f['rate']:>8.0f} {f['errors']:>7} "
                         f"{f['refused']:>8} {f['non_2xx']:>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reloads", type=int, default=DEFAULT_RELOADS)
    parser.add_argument("--gproxy", default=str(REPO / ".venv" / "bin" / "gproxy"))
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-haproxy", action="store_true")
    options = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1
    raise_fd_limit(FD_LIMIT_WANTED)
    workdir = Path(tempfile.mkdtemp(prefix="gproxy-reload-bench-"))
    results: dict[str, Any] = {}
    try:
        with Children() as children:
            origins = start_origins(children, workdir)
            cases: list[tuple[str, Callable[[Layout], dict[str, Any]]]] = [
                (f"gproxy {options.reloads} reloads (HUP)",
                 lambda layout: gproxy_case(children, options.gproxy, layout, workdir, options.reloads, False)),
                ("gproxy upgrade (USR2)",
                 lambda layout: gproxy_case(children, options.gproxy, layout, workdir, 0, True)),
            ]
            if not options.no_haproxy:
                cases.append((f"HAProxy -W {options.reloads} reloads",
                              lambda layout: haproxy_case(children, layout, workdir, options.reloads)))
            for name, case in cases:
                print(f"bench: {name}...", flush=True)
                layout = Layout(origins=origins, http_port=free_port(), tcp_port=free_port(), maxconn=5000)
                try:
                    results[name] = case(layout)
                except Unavailable as reason:
                    results[name] = {"unavailable": str(reason)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(render(results))
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                          "results": results}, indent=2) + "\n")
    print(f"\nbench: figures written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
