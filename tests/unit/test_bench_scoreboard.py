"""Issue 8's table (bench/scoreboard.py): median ratios over A B rounds, verdicts, rendering;
and the HTTP response heads read by bench/probes.py. Pure: no process, no socket."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # bench/ is not a package
import probes  # noqa: E402
import scoreboard  # noqa: E402
from scoreboard import FIGURES_BY_KEY, Sample, judge  # noqa: E402

RATE = FIGURES_BY_KEY["http_keepalive"]  # higher is better, >= 0.8
P99 = FIGURES_BY_KEY["p99_1000"]  # lower is better, <= 1.5, no timeouts
MEMORY = FIGURES_BY_KEY["idle_memory"]  # lower is better, <= 3


def rounds(*pairs: tuple[float, float]) -> list[tuple[Sample, Sample]]:
    return [(Sample(value=haproxy, requests=1000), Sample(value=gproxy, requests=1000)) for haproxy, gproxy in pairs]


def test_the_ratio_is_the_median_of_the_per_round_ratios() -> None:
    # Per round 0.5, 0.9, 0.85: median 0.85, where the ratio of the medians would be 45/50 = 0.9.
    outcome = judge(RATE, rounds((100, 50), (50, 45), (20, 17)))
    assert outcome.ratios == (0.5, 0.9, 0.85)
    assert outcome.ratio == pytest.approx(0.85)
    assert (outcome.haproxy, outcome.gproxy) == (50, 45)
    assert outcome.verdict == "PASS"


def test_an_even_number_of_rounds_takes_the_middle_of_two() -> None:
    assert judge(RATE, rounds((100, 70), (100, 80))).ratio == pytest.approx(0.75)


def test_rates_must_reach_and_costs_must_stay_under_their_bound() -> None:
    assert judge(RATE, rounds((100, 80))).verdict == "PASS"
    assert judge(RATE, rounds((100, 79))).verdict == "FAIL"
    assert judge(MEMORY, rounds((1000, 3000))).verdict == "PASS"
    assert judge(MEMORY, rounds((1000, 3100))).verdict == "FAIL"
    assert RATE.target == ">= 0.8" and P99.target == "<= 1.5, no timeouts"


def test_failed_gproxy_requests_fail_the_figure_and_mark_it() -> None:
    bad = [(Sample(value=100, requests=1000), Sample(value=95, requests=1000, non_2xx=3))]
    outcome = judge(RATE, bad)
    assert outcome.verdict == "FAIL !"
    assert outcome.notes == ("gproxy round 1: 3 failed of 1000 requests (non-2xx 3, socket errors 0, timeouts 0)",)
    assert outcome.gproxy_cell.endswith("!")


def test_failed_haproxy_requests_only_mark_the_figure() -> None:
    bad = [(Sample(value=100, requests=1000, socket_errors=2), Sample(value=95, requests=1000))]
    assert judge(RATE, bad).verdict == "PASS !"


def test_a_gproxy_timeout_fails_the_p99_figure_and_both_counts_are_shown() -> None:
    pairs = [(Sample(value=100.0, requests=10, timeouts=1, socket_errors=2),
              Sample(value=110.0, requests=10, timeouts=4))]
    outcome = judge(P99, pairs)
    assert outcome.ratio == pytest.approx(1.1)
    assert outcome.verdict == "FAIL !"
    assert outcome.gproxy_cell == "110.00 ms (4 timeouts, 0 socket errors)"
    assert outcome.haproxy_cell == "100.00 ms (1 timeouts, 2 socket errors)"


def test_rounds_without_a_positive_haproxy_figure_are_left_out() -> None:
    added = FIGURES_BY_KEY["added_latency"]
    outcome = judge(added, [(Sample(value=-0.01), Sample(value=0.05)), (Sample(value=0.04), Sample(value=0.06))])
    assert outcome.ratios == (pytest.approx(1.5),) and outcome.verdict == "PASS"


def test_an_unavailable_proxy_gives_no_verdict() -> None:
    outcome = judge(RATE, [], unavailable="gproxy unavailable: exited with status 1")
    assert (outcome.ratio, outcome.verdict) == (None, "n/a")
    assert outcome.notes == ("gproxy unavailable: exited with status 1",)
    assert outcome.gproxy_cell == "-"


def test_percentile_is_nearest_rank_and_median_of_nothing_is_refused() -> None:
    values = list(range(1, 2001))
    assert scoreboard.percentile(values, 99) == 1980
    assert scoreboard.percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError):
        scoreboard.median([])


def test_the_table_has_one_aligned_row_per_figure() -> None:
    outcomes = [judge(RATE, rounds((100, 50))), judge(MEMORY, rounds((1136, 12150))),
                judge(FIGURES_BY_KEY["bulk"], rounds((900.0, 1200.0)))]
    table = scoreboard.render_table(outcomes).splitlines()
    assert len(table) == 5
    assert len({len(line) for line in table}) == 1  # every line as wide: columns aligned
    assert [cell.strip() for cell in table[0].strip("|").split("|")] == [
        "figure", "gproxy", "HAProxy 2.6", "ratio", "target", "result"]
    cells = [cell.strip() for cell in table[2].strip("|").split("|")]
    assert cells == [RATE.label, "50 req/s", "100 req/s", "0.50", ">= 0.8", "FAIL"]
    assert [cell.strip() for cell in table[3].strip("|").split("|")][1:4] == ["11.9 KiB", "1.1 KiB", "10.70"]
    assert "1,200 MiB/s" in table[4] and "PASS" in table[4]
    notes = scoreboard.render_notes(outcomes)
    assert notes[0] == "http_keepalive: ratio per round 0.50"


def test_the_machine_line_names_cpu_cores_kernel_and_versions() -> None:
    line = scoreboard.render_machine({"cpu_model": "AMD EPYC", "cpus": 2, "kernel": "6.18", "python": "3.11.7",
                                      "gevent": "26.9.0", "haproxy": "HAProxy 2.6.12", "haproxy_nbthread": 1,
                                      "nginx": "nginx 1.22.1", "wrk": "wrk 4.1.0"})
    assert line == ("AMD EPYC, 2 cores (nothing pinned), Linux 6.18, Python 3.11.7, gevent 26.9.0, "
                    "HAProxy 2.6.12 (nbthread 1), nginx 1.22.1, wrk 4.1.0")
    assert "(nbthread 1, splicing)" in scoreboard.render_machine({"haproxy_nbthread": 1, "haproxy_splice": True})


def test_response_heads_are_read_once_complete() -> None:
    assert probes.parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n") is None
    head_text = b"HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID=s3~0\r\ncontent-length: 3\r\n\r\n"
    head = probes.parse_head(head_text + b"ok\nHTTP/1.1 200 OK\r\n")  # the next response's start is not read
    assert head == probes.Head(status=200, content_length=3, size=len(head_text))
    assert probes.parse_head(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n").status == 503


def test_response_heads_that_are_not_http_or_lack_a_length_are_errors() -> None:
    with pytest.raises(probes.ProbeError):
        probes.parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(probes.ProbeError):
        probes.parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(probes.ProbeError):
        probes.parse_head(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20_000)


@pytest.mark.parametrize(("banner", "pattern", "name", "expected"), [
    ("HAProxy version 2.6.12-1+deb12u4 2025/09/18 - https://haproxy.org/\nStatus: long-term", r"HAProxy version (\S+)",
     "HAProxy", "HAProxy 2.6.12-1+deb12u4"),
    ("nginx version: nginx/1.22.1", r"nginx/(\S+)", "nginx", "nginx 1.22.1"),
    ("wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer", r"wrk (?:debian/)?(\d[\w.]*)", "wrk",
     "wrk 4.1.0"),
    ("something else\nsecond line", r"wrk (\d\S*)", "wrk", "something else"),
    ("", r"wrk (\d\S*)", "wrk", "wrk unknown"),
])
def test_versions_are_read_from_the_tools_banners(banner: str, pattern: str, name: str, expected: str) -> None:
    assert scoreboard.short_version(banner, pattern, name) == expected
