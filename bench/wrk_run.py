"""The external tools every bench script runs: wrk (once, its report read)
and the proxies' configuration checks.

`Unavailable` is what a bench raises when a proxy or a load cannot be
measured (the message says why): the scripts print it in place of a figure.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from children import Children
from wrk_report import WrkOutputError, WrkResult, parse_wrk

WRK_THREADS = 1
WRK_GRACE_SECONDS = 30  # wrk is killed if it runs this much longer than asked
CHECK_TIMEOUT_SECONDS = 30


class Unavailable(Exception):
    """A proxy cannot be measured; the message says why."""


def run_wrk(children: Children, url: str, seconds: int, connections: int, headers: tuple[str, ...] = (),
            timeout: str | None = None) -> WrkResult:
    """One wrk load on `url` (`--latency`, with `timeout` as wrk's --timeout
    when given); its parsed report, or Unavailable with wrk's last line."""
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if timeout is not None:
        argv.append(f"--timeout={timeout}")
    for header in headers:
        argv += ["-H", header]
    process = children.start([*argv, url], capture=True)
    try:
        output, _ = process.communicate(timeout=seconds + WRK_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        children.stop(process)
        raise Unavailable(f"wrk did not finish within {seconds + WRK_GRACE_SECONDS}s") from None
    children.stop(process)
    text = output.decode(errors="replace")
    try:
        return parse_wrk(text)
    except WrkOutputError:
        reason = text.strip().splitlines()[-1] if text.strip() else f"exit status {process.returncode}"
        raise Unavailable(f"wrk failed: {reason}") from None


def check_config(argv: list[str]) -> None:
    """Run a configuration check; a failure makes the proxy unavailable, with the reason."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=CHECK_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Unavailable(f"`{' '.join(argv[:2])}` failed: {error}") from None
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise Unavailable(f"`{Path(argv[0]).name} {argv[1]}` of the bench config failed: {reason}")
