"""checks.plugin: thresholds, contexts, the summary, argument errors and the SIGALRM backstop."""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

import nagiosplugin
import nagiosplugin.runtime
import pytest
from nagiosplugin import Critical, Metric, Ok, Warn

from checks import VERSION, plugin
from checks.plugin import ALL, Threshold

REPO = Path(__file__).resolve().parents[2]


def test_version_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert VERSION == project["version"]
    assert project["scripts"]["check_gproxy"] == "checks.gproxy_check:main"
    assert project["scripts"]["check_heartbeat"] == "checks.heartbeat_check:main"


@pytest.mark.parametrize("spec, value, maximum, alerts", [
    ("10", 5, None, False), ("10", 11, None, True), ("10", -1, None, True),
    ("10:", 9, None, True), ("10:", 10, None, False),
    ("~:10", -50, None, False), ("~:10", 10.5, None, True),
    ("10:20", 15, None, False), ("10:20", 21, None, True),
    ("@10:20", 15, None, True), ("@10:20", 9, None, False),
    (ALL, 3, 3, False), (ALL, 2, 3, True),
])
def test_threshold_ranges(spec, value, maximum, alerts):
    assert Threshold(spec).alerts(value, maximum) is alerts


def test_percent_thresholds_compare_percentages_and_show_absolute_ranges():
    warning = Threshold("75:", percent=True)
    assert warning.alerts(2, 3) and not warning.alerts(3, 4)
    assert warning.perf_range(4) == "3:"
    assert Threshold("80", percent=True).perf_range(4096) == "3276.8"
    assert Threshold("@10:20", percent=True).perf_range(200) == "@20:40"
    assert Threshold("~:50", percent=True).perf_range(10) == "~:5"
    assert Threshold("90", percent=True).alerts(0, 0) is False  # no limit: nothing to exceed


@pytest.mark.parametrize("text, spec, percent", [("10", "10", False), ("75%:", "75:", True), ("@1:2", "@1:2", False),
                                                  ("~:5%", "~:5", True)])
def test_threshold_arg(text, spec, percent):
    assert plugin.threshold_arg(text) == Threshold(spec, percent)


@pytest.mark.parametrize("text", ["", "%", "abc", "20:10", "1e3", "~"])
def test_threshold_arg_refuses(text):
    with pytest.raises(argparse.ArgumentTypeError):
        plugin.threshold_arg(text)


class Canned(plugin.Resource):
    """Yields given metrics; words results from a fixed table."""

    def __init__(self, metrics, sleep: float = 0.0):
        super().__init__()
        self.metrics = metrics
        self.sleep = sleep

    def probe(self):
        time.sleep(self.sleep)
        return self.metrics

    def explain(self, metric, state):
        return self.notes.get(metric.name) or f"{metric.name} is {metric.value} ({state.text})"

    def ok_summary(self):
        return "all fine"

    def long_output(self):
        return ["line one", "line two"]


def run(capsys, resource, *contexts, timeout=5, verbose=0):
    nagiosplugin.runtime.Runtime.instance = None
    check = nagiosplugin.Check(resource, plugin.FindingContext(), plugin.PlainContext("plain"), *contexts,
                               plugin.ReportSummary(resource), name="test thing")
    with pytest.raises(SystemExit) as exit_info:
        plugin.run(check, verbose, timeout)
    return exit_info.value.code, capsys.readouterr().out


def test_ok_line_long_output_and_perfdata_last(capsys):
    resource = Canned([Metric("up", 3, min=0, max=3, context="up"), Metric("q", 0, min=0, context="plain")])
    rc, out = run(capsys, resource, plugin.ThresholdContext("up", Threshold(ALL), Threshold("1:")))
    assert rc == 0
    assert out == "TEST THING OK - all fine\nline one\nline two\n| q=0;;;0 up=3;3:;1:;0;3\n"


def test_problems_worst_first_and_findings(capsys):
    resource = Canned([Metric("up", 2, min=0, max=3, context="up")])
    resource.metrics.append(resource.finding("node", Critical, "node b offline"))
    resource.metrics.append(resource.finding("other", Ok, "fine"))
    rc, out = run(capsys, resource, plugin.ThresholdContext("up", Threshold(ALL), Threshold("1:")))
    assert rc == 2
    assert out.splitlines()[0] == "TEST THING CRITICAL - node b offline; up is 2 (warning)"
    assert out.splitlines()[-1] == "| up=2;3:;1:;0;3"  # findings write no perfdata


def test_adjust_overrules_a_range(capsys):
    class Overruled(Canned):
        def adjust(self, metric, state):
            return Warn if state == Ok else state

    rc, out = run(capsys, Overruled([Metric("up", 3, min=0, max=3, context="up")]),
                  plugin.ThresholdContext("up", None, None))
    assert rc == 1 and out.startswith("TEST THING WARNING - up is 3 (warning)")


def test_alarm_backstop_is_one_line_without_traceback(capsys):
    rc, out = run(capsys, Canned([], sleep=3), timeout=1)
    assert rc == 3 and out == "TEST THING UNKNOWN - timeout: no result within 1s (-t)\n"


def test_inner_timeout_leaves_a_margin():
    assert plugin.inner_timeout(10) == 9.5 and plugin.inner_timeout(1) == 0.5


def test_parser_exits_3_on_errors_help_and_version(capsys):
    parser = plugin.PluginArgumentParser(prog="check_x", status_name="X")
    plugin.add_common_arguments(parser, "check_x")
    for argv in (["--bogus"], ["-h"], ["-V"], ["-t", "soon"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == 3, argv
    out = capsys.readouterr().out
    assert "X UNKNOWN - unrecognized arguments: --bogus" in out
    assert "check_x 0.1.0 (gproxy suite)" in out
    assert "X UNKNOWN - argument -t/--timeout: not a whole number: 'soon'" in out
