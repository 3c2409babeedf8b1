"""The figures of issue 8, their targets, and the table that judges them (pure: no I/O, no clock).

Each figure is measured in rounds, HAProxy then gproxy in each round (A B A B...),
and judged on the median of the per-round ratios gproxy/HAProxy: the two runs
of a round are seconds apart, so the machine's load weighs on both alike,
where absolute figures move by a third from one minute to the next.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HAPROXY = "haproxy"
GPROXY = "gproxy"


@dataclass(frozen=True)
class Figure:
    """One line of issue 8's table: what is measured and the ratio it must reach."""

    key: str
    label: str
    unit: str  # how a value is shown: a key of _FORMATS
    higher_is_better: bool  # a rate (ratio >= bound) or a cost (ratio <= bound)
    bound: float  # the target ratio gproxy/HAProxy
    no_timeouts: bool = False  # a single gproxy timeout fails the figure
    show_socket_errors: bool = False  # the cell shows timeouts and socket errors

    @property
    def target(self) -> str:
        sign = ">=" if self.higher_is_better else "<="
        return f"{sign} {self.bound:g}" + (", no timeouts" if self.no_timeouts else "")

    def met(self, ratio: float) -> bool:
        return ratio >= self.bound if self.higher_is_better else ratio <= self.bound


FIGURES = (
    Figure("http_keepalive", "HTTP keep-alive req/s, 50 connections, spec features on", "req/s", True, 0.8),
    Figure("http_close", "HTTP connection per request (the spec's close mode), 50 connections",
           "req/s", True, 0.5),
    Figure("tcp", "TCP mode req/s through the tunnel, 50 connections", "req/s", True, 0.8),
    Figure("p99_1000", "p99 latency at 1000 concurrent connections (HTTP keep-alive)", "ms", False, 1.5,
           no_timeouts=True, show_socket_errors=True),
    Figure("bulk", "bulk TCP transfer, 1 GiB through the proxy", "MiB/s", True, 0.8),
    Figure("idle_memory", "memory per idle client connection, 10 000 connections (RSS growth)",
           "bytes", False, 3.0),
    Figure("added_latency", "added latency of one keep-alive request, no load: median (p99)",
           "ms_fine", False, 2.0),
)
FIGURES_BY_KEY = {figure.key: figure for figure in FIGURES}


@dataclass(frozen=True)
class Sample:
    """One proxy's result in one round."""

    value: float
    requests: int = 0
    non_2xx: int = 0
    socket_errors: int = 0  # connect + read + write (wrk), or a failed exchange
    timeouts: int = 0
    aux: float | None = None  # a second figure shown next to the value (the p99 of the added latency)
    detail: dict[str, Any] = field(default_factory=dict)  # everything else, for the JSON report

    @property
    def failed(self) -> int:
        return self.non_2xx + self.socket_errors + self.timeouts


@dataclass(frozen=True)
class Outcome:
    figure: Figure
    gproxy: float | None  # medians over the rounds
    haproxy: float | None
    ratio: float | None  # median of the per-round ratios
    ratios: tuple[float, ...]
    verdict: str  # PASS, FAIL, or n/a; "!" appended when a run had failed requests
    notes: tuple[str, ...]
    gproxy_cell: str
    haproxy_cell: str


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of nothing")
    return float(statistics.median(values))


def percentile(values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile (as wrk and HAProxy's tools count): p99 of 2000 is the 1980th."""
    if not values:
        raise ValueError("percentile of nothing")
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100.0 * len(ordered)))
    return float(ordered[rank - 1])


def round_ratios(rounds: Sequence[tuple[Sample, Sample]]) -> tuple[float, ...]:
    """gproxy/HAProxy of each (haproxy, gproxy) round; rounds where HAProxy's figure is not positive are left out."""
    return tuple(gproxy.value / haproxy.value for haproxy, gproxy in rounds if haproxy.value > 0)


_FORMATS = {
    "req/s": lambda value: f"{value:,.0f} req/s",
    "ms": lambda value: f"{value:.2f} ms",
    "ms_fine": lambda value: f"{value:.3f} ms",
    "MiB/s": lambda value: f"{value:,.0f} MiB/s",
    "bytes": lambda value: f"{value / 1024:.1f} KiB",
}


def format_value(unit: str, value: float) -> str:
    return _FORMATS[unit](value)


def _cell(figure: Figure, samples: Sequence[Sample]) -> str:
    if not samples:
        return "-"
    text = format_value(figure.unit, median([sample.value for sample in samples]))
    aux = [sample.aux for sample in samples if sample.aux is not None]
    if aux:
        text += f" (p99 {format_value(figure.unit, median(aux))})"
    if figure.show_socket_errors:
        timeouts = sum(sample.timeouts for sample in samples)
        errors = sum(sample.socket_errors for sample in samples)
        text += f" ({timeouts} timeouts, {errors} socket errors)"
    failed = sum(sample.failed for sample in samples)
    if failed and not figure.show_socket_errors:
        text += " !"
    return text


def _failures(name: str, samples: Sequence[Sample]) -> list[str]:
    notes = []
    for index, sample in enumerate(samples, start=1):
        if sample.failed:
            notes.append(f"{name} round {index}: {sample.failed} failed of {sample.requests} requests "
                         f"(non-2xx {sample.non_2xx}, socket errors {sample.socket_errors}, "
                         f"timeouts {sample.timeouts})")
    return notes


def judge(figure: Figure, rounds: Sequence[tuple[Sample, Sample]], unavailable: str = "") -> Outcome:
    """The outcome of `figure` over its (haproxy, gproxy) rounds.

    PASS needs the median ratio within the target, no failed gproxy request,
    and no gproxy timeout where the figure forbids them. Failed requests of
    either proxy append "!" to the verdict: such a run is not comparable.
    """
    haproxy_samples = [pair[0] for pair in rounds]
    gproxy_samples = [pair[1] for pair in rounds]
    ratios = round_ratios(rounds)
    notes = _failures("HAProxy", haproxy_samples) + _failures("gproxy", gproxy_samples)
    if unavailable:
        notes.insert(0, unavailable)
    ratio = median(ratios) if ratios and not unavailable else None
    if ratio is None:
        verdict = "n/a"
    else:
        passed = figure.met(ratio) and not any(sample.failed for sample in gproxy_samples)
        if figure.no_timeouts and any(sample.timeouts for sample in gproxy_samples):
            passed = False
        verdict = "PASS" if passed else "FAIL"
        if any(sample.failed for sample in haproxy_samples + gproxy_samples):
            verdict += " !"
    return Outcome(
        figure=figure,
        gproxy=median([sample.value for sample in gproxy_samples]) if gproxy_samples else None,
        haproxy=median([sample.value for sample in haproxy_samples]) if haproxy_samples else None,
        ratio=ratio,
        ratios=ratios,
        verdict=verdict,
        notes=tuple(notes),
        gproxy_cell=_cell(figure, gproxy_samples),
        haproxy_cell=_cell(figure, haproxy_samples),
    )


def render_table(outcomes: Sequence[Outcome]) -> str:
    """A Markdown table, readable in a terminal and pasted as is into docs/performance.md."""
    headings = ["figure", "gproxy", "HAProxy 2.6", "ratio", "target", "result"]
    lines = [[outcome.figure.label, outcome.gproxy_cell, outcome.haproxy_cell,
              f"{outcome.ratio:.2f}" if outcome.ratio is not None else "-",
              outcome.figure.target, outcome.verdict] for outcome in outcomes]
    widths = [max(len(row[index]) for row in [headings, *lines]) for index in range(len(headings))]

    def joined(cells: Sequence[str], right: bool) -> str:
        padded = [cells[0].ljust(widths[0])]
        padded += [cell.rjust(width) if right else cell.ljust(width) for cell, width in zip(cells[1:], widths[1:])]
        return "| " + " | ".join(padded) + " |"

    out = [joined(headings, right=False)]
    out.append("| " + " | ".join(["-" * widths[0]] + ["-" * (width - 1) + ":" for width in widths[1:4]]
                                 + ["-" * width for width in widths[4:]]) + " |")
    out += [joined(line, right=True) for line in lines]
    return "\n".join(out)


def render_notes(outcomes: Sequence[Outcome]) -> list[str]:
    """The per-round ratios of each figure, then every failed request or unavailable proxy."""
    lines = []
    for outcome in outcomes:
        spread = " ".join(f"{ratio:.2f}" for ratio in outcome.ratios) or "-"
        lines.append(f"{outcome.figure.key}: ratio per round {spread}")
        lines += [f"{outcome.figure.key}: {note}" for note in outcome.notes]
    return lines


def render_machine(machine: dict[str, Any]) -> str:
    return (f"{machine.get('cpu_model', '?')}, {machine.get('cpus', '?')} cores (nothing pinned), "
            f"Linux {machine.get('kernel', '?')}, Python {machine.get('python', '?')}, "
            f"gevent {machine.get('gevent', '?')}, {machine.get('haproxy', '?')} (nbthread "
            f"{machine.get('haproxy_nbthread', '?')}{', splicing' if machine.get('haproxy_splice') else ''}), "
            f"{machine.get('nginx', '?')}, {machine.get('wrk', '?')}")


def short_version(text: str, pattern: str, name: str) -> str:
    """`name VERSION` from a tool's version banner, or its first line when the pattern does not match."""
    match = re.search(pattern, text)
    if match:
        return f"{name} {match.group(1)}"
    return text.splitlines()[0].strip() if text.strip() else f"{name} unknown"
