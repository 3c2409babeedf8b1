"""Request, 5xx and connection-error rates between two `show stat` samples.

Pure: the plugin saves a `Sample` of each backend's counters after every
run and compares the next run's sample with it. Counters that went
backwards mean the daemon restarted or someone ran `clear counters`: that
backend gets no rate this time, rather than a negative or absurd one.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Mapping

from checks.haproxy_csv import Stats

RESPONSE_COLUMNS = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")
COUNTER_COLUMNS = ("req_tot", "stot", "econ") + RESPONSE_COLUMNS
SAMPLE_FORMAT = 1  # bump when the saved document changes shape


@dataclass(frozen=True, slots=True)
class Sample:
    """Counters of some backends at one moment (epoch seconds).

    A counter HAProxy leaves empty (TCP backends have no `req_tot`) is absent.
    """

    at: float
    counters: Mapping[str, Mapping[str, int]]

    def to_json(self) -> dict[str, object]:
        return {"format": SAMPLE_FORMAT, "at": self.at,
                "backends": {name: dict(values) for name, values in self.counters.items()}}

    @classmethod
    def from_json(cls, doc: object) -> "Sample | None":
        """The saved sample, or None when the document is missing, old or damaged."""
        if not isinstance(doc, dict) or doc.get("format") != SAMPLE_FORMAT:
            return None
        at = doc.get("at")
        backends = doc.get("backends")
        if not isinstance(at, (int, float)) or not isinstance(backends, dict):
            return None
        counters: dict[str, Mapping[str, int]] = {}
        for name, values in backends.items():
            if not isinstance(values, dict) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
                return None
            counters[str(name)] = MappingProxyType(dict(values))
        return cls(float(at), MappingProxyType(counters))


def take_sample(stats: Stats, backends: Iterable[str], at: float) -> Sample:
    """The counters of the named backends' BACKEND rows."""
    wanted = set(backends)
    counters: dict[str, Mapping[str, int]] = {}
    for row in stats.of_kind("backend"):
        if row.proxy not in wanted:
            continue
        values = {column: row.number(column) for column in COUNTER_COLUMNS}
        counters[row.proxy] = MappingProxyType({k: v for k, v in values.items() if v is not None})
    return Sample(at, MappingProxyType(counters))


@dataclass(frozen=True, slots=True)
class BackendRates:
    """One backend's activity over `seconds`.

    `unit` is "req" for HTTP backends and "sess" for TCP ones, whose
    request rate is their session rate. `pct_5xx` is the share of the
    responses in the interval that were 5xx (0 when there were none).
    """

    name: str
    seconds: float
    requests_per_s: float
    unit: str
    errors_5xx_per_s: float
    pct_5xx: float
    responses: int
    conn_errors_per_s: float


@dataclass(frozen=True, slots=True)
class RatesOutcome:
    """Rates for the backends that have them; why the others do not."""

    rates: tuple[BackendRates, ...]
    fresh: tuple[str, ...]  # no earlier sample: first run, or a backend that just appeared
    reset: tuple[str, ...]  # counters went backwards: restart or `clear counters`
    seconds: float | None   # the interval, None on a first run


def _delta(before: Mapping[str, int], after: Mapping[str, int], column: str) -> int | None:
    if column not in after:
        return 0
    if column not in before:
        return None
    return after[column] - before[column]


def compare(previous: Sample | None, current: Sample) -> RatesOutcome:
    """Rates per backend between the two samples, in `current`'s order."""
    if previous is None or current.at <= previous.at:
        return RatesOutcome((), tuple(current.counters), (), None)
    seconds = current.at - previous.at
    rates: list[BackendRates] = []
    fresh: list[str] = []
    reset: list[str] = []
    for name, after in current.counters.items():
        before = previous.counters.get(name)
        if before is None:
            fresh.append(name)
            continue
        columns = ("req_tot" if "req_tot" in after else "stot", "econ", "hrsp_5xx") + RESPONSE_COLUMNS
        deltas = {column: _delta(before, after, column) for column in columns}
        if any(value is None or value < 0 for value in deltas.values()):
            reset.append(name)
            continue
        counted = {k: v or 0 for k, v in deltas.items()}
        responses = sum(counted[column] for column in RESPONSE_COLUMNS)
        errors_5xx = counted["hrsp_5xx"]
        rates.append(BackendRates(
            name=name,
            seconds=seconds,
            requests_per_s=counted["req_tot" if "req_tot" in after else "stot"] / seconds,
            unit="req" if "req_tot" in after else "sess",
            errors_5xx_per_s=errors_5xx / seconds,
            pct_5xx=100.0 * errors_5xx / responses if responses else 0.0,
            responses=responses,
            conn_errors_per_s=counted["econ"] / seconds,
        ))
    return RatesOutcome(tuple(rates), tuple(fresh), tuple(reset), seconds)
