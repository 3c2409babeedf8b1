"""What the suite's plugins share: guideline-conforming argument parsing,
thresholds, the contexts that turn metrics into results, the summary that
writes the status line and the long output, and `run()`.

The model is nagiosplugin's: a `Resource.probe()` (the only I/O) yields
`Metric`s; contexts evaluate them; a `Summary` writes the text. Added here:

* `Threshold`: a Nagios range (`10`, `10:`, `~:10`, `10:20`, `@10:20`), on
  the value or on its percentage of the metric's maximum, or `ALL` ("every
  one of `max`", the default for "servers up" and "nodes up").
* `ThresholdContext`: critical, then warning; the result's text comes from
  the resource ("no active server up, backup X serving" rather than
  "outside range 1:"), which may also overrule the range (`adjust`).
* `FindingContext`: a qualitative verdict the resource reached (a node is
  offline, a resource is stopped): the metric's value is the state code.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import NoReturn

import nagiosplugin
from nagiosplugin import Critical, Metric, Ok, Performance, Range, Result, Unknown, Warn

from checks import VERSION

DEFAULT_TIMEOUT = 10  # seconds; Nagios kills plugins after service_check_timeout (60 s on Debian)
ALL = "all"  # a range default meaning "at least the metric's maximum" (`{max}:`)
STATES = (Ok, Warn, Critical, Unknown)  # index = exit code
TIMEOUT_MARGIN = 0.5  # seconds kept between the probe's own deadline and the -t alarm


class PluginArgumentParser(argparse.ArgumentParser):
    """argparse exits 2 (CRITICAL to Nagios) on bad arguments and 0 on --help:
    plugins must exit 3 (UNKNOWN) in both cases, and print to stdout."""

    def __init__(self, *args: object, status_name: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.status_name = status_name

    def error(self, message: str) -> NoReturn:
        print(f"{self.status_name} UNKNOWN - {message}")
        self.print_usage(sys.stdout)
        sys.exit(3)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stdout.write(message)
        sys.exit(3)


def add_common_arguments(parser: argparse.ArgumentParser, prog: str) -> None:
    """-t, -v and -V, as the guidelines reserve them (-h comes with argparse)."""
    parser.add_argument("-t", "--timeout", type=positive_int, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"give up (UNKNOWN) after this many seconds (default {DEFAULT_TIMEOUT})")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more detail: -v logs what the plugin asked and got, -vv adds raw data")
    parser.add_argument("-V", "--version", action="version", version=f"{prog} {VERSION} (gproxy suite)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class Threshold:
    """A `-w`/`-c` value: a Nagios range, on the value itself or, when
    `percent` is set, on the value as a percentage of the metric's maximum
    (`-w 75%:` warns when fewer than 75% of the servers are up). The range
    `ALL` means "the whole maximum" (`{max}:`)."""

    spec: str
    percent: bool = False

    def range(self, maximum: float | None) -> Range:
        if self.spec == ALL:
            return Range(f"{_tidy(maximum or 0)}:")
        return Range(self.spec)

    def alerts(self, value: float, maximum: float | None) -> bool:
        compared = value
        if self.percent:
            compared = 100.0 * value / maximum if maximum else 0.0
        return not self.range(maximum).match(compared)

    def perf_range(self, maximum: float | None) -> str:
        """The range in the metric's own unit, for perfdata (percentages scaled to `maximum`)."""
        rng = self.range(maximum)
        if not self.percent or not maximum or self.spec == ALL:
            return str(rng)
        scale = maximum / 100.0
        start = rng.start if rng.start == float("-inf") else _tidy(rng.start * scale)
        end = rng.end if rng.end == float("inf") else _tidy(rng.end * scale)
        return str(Range._make((rng.invert, start, end)))


def threshold_arg(text: str) -> Threshold:
    """`-w`/`-c`: a Nagios range (`10`, `10:`, `~:10`, `10:20`, `@10:20`); a `%` makes it a percentage."""
    percent = "%" in text
    spec = text.replace("%", "").strip()
    try:
        Range(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad range {text!r} ({exc})") from None
    if not spec:
        raise argparse.ArgumentTypeError("empty range")
    return Threshold(spec, percent)


def percent_threshold_arg(text: str) -> Threshold:
    """A range that is always a percentage (`-w 80` = more than 80% of the limit)."""
    return Threshold(threshold_arg(text).spec, True)


def _tidy(number: float) -> float | int:
    """Integers print without '.0' in ranges."""
    rounded = round(number, 2)
    return int(rounded) if rounded == int(rounded) else rounded


class Resource(nagiosplugin.Resource):
    """A probe that also words its results (`explain`), may overrule a range
    verdict with what it knows (`adjust`), and writes the OK line and long output."""

    def __init__(self) -> None:
        self.notes: dict[str, str] = {}

    def finding(self, name: str, state: nagiosplugin.state.ServiceState, text: str) -> Metric:
        """A qualitative verdict as a metric for `FindingContext`."""
        self.notes[name] = text
        return Metric(name, int(state), context="finding")

    def explain(self, metric: Metric, state: nagiosplugin.state.ServiceState) -> str:
        return self.notes.get(metric.name, "")

    def adjust(self, metric: Metric, state: nagiosplugin.state.ServiceState) -> nagiosplugin.state.ServiceState:
        return state

    def ok_summary(self) -> str:
        return "ok"

    def long_output(self) -> list[str]:
        return []


class ThresholdContext(nagiosplugin.Context):
    """Range checks (critical first, then warning) worded by the resource.

    A threshold of None never alerts and shows no range in the perfdata.
    """

    def __init__(self, name: str, warning: Threshold | None, critical: Threshold | None) -> None:
        super().__init__(name)
        self.warning = warning
        self.critical = critical

    def evaluate(self, metric: Metric, resource: Resource) -> Result:
        state = Ok
        if self.critical is not None and self.critical.alerts(metric.value, metric.max):
            state = Critical
        elif self.warning is not None and self.warning.alerts(metric.value, metric.max):
            state = Warn
        state = resource.adjust(metric, state)
        return Result(state, resource.explain(metric, state), metric)

    def performance(self, metric: Metric, resource: Resource) -> Performance:
        warn = self.warning.perf_range(metric.max) if self.warning is not None else ""
        crit = self.critical.perf_range(metric.max) if self.critical is not None else ""
        return Performance(metric.name, metric.value, metric.uom or "", warn, crit, metric.min, metric.max)


class FindingContext(nagiosplugin.Context):
    """A verdict the resource reached itself: value = exit code, text from the resource.

    It writes no perfdata: findings are states, not measurements.
    """

    def __init__(self, name: str = "finding") -> None:
        super().__init__(name)

    def evaluate(self, metric: Metric, resource: Resource) -> Result:
        state = STATES[int(metric.value)]
        return Result(state, resource.explain(metric, state), metric)

    def performance(self, metric: Metric, resource: Resource) -> None:
        return None


class PlainContext(nagiosplugin.Context):
    """Perfdata only (always OK): sessions, queue, counters shown for graphs."""

    def evaluate(self, metric: Metric, resource: object) -> Result:
        return Result(Ok, None, metric)

    def performance(self, metric: Metric, resource: object) -> Performance:
        return Performance(metric.name, metric.value, metric.uom or "", "", "", metric.min, metric.max)


class ReportSummary(nagiosplugin.Summary):
    """Status line: the resource's OK text, or every problem, worst first;
    long output: the resource's lines (one per backend, server, node...)."""

    def __init__(self, resource: Resource) -> None:
        self.resource = resource

    def ok(self, results: nagiosplugin.Results) -> str:
        return self.resource.ok_summary()

    def problem(self, results: nagiosplugin.Results) -> str:
        texts: list[str] = []
        for result in results:
            if result.state == Ok:
                continue
            text = result.hint or str(result)
            if text and text not in texts:
                texts.append(text)
        return "; ".join(texts)

    def verbose(self, results: nagiosplugin.Results) -> list[str]:
        return self.resource.long_output()


def inner_timeout(timeout: int) -> float:
    """The time the probe may spend on its socket or command: a little less
    than -t, so that a slow daemon is reported by the probe, in words, before
    the SIGALRM backstop fires."""
    return timeout - min(TIMEOUT_MARGIN, timeout / 2)


def run(check: nagiosplugin.Check, verbose: int, timeout: int) -> NoReturn:
    """Run the check and exit.

    The long output is always printed (verbosity 1 in nagiosplugin's terms);
    each -v adds a level of logging. If the SIGALRM backstop fires, the
    plugin says so on one line: no traceback, exit 3.
    """
    try:
        check.main(verbose=1 + verbose, timeout=timeout)
    except nagiosplugin.Timeout:
        print(f"{check.name.upper()} UNKNOWN - timeout: no result within {timeout}s (-t)")
        sys.exit(3)
    raise AssertionError("unreachable: Check.main() exits")

