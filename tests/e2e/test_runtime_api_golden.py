"""gproxy's stats socket against HAProxy 2.6's captured answers.

Replays tests/golden/haproxy-2.6/transcript.json (captured from Debian's
haproxy by scripts/capture_haproxy_golden.py, with the same procedure
imported from that script) against a real gproxy running the equivalent
configuration (gproxy.toml.in), and compares every answer.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path

import pytest

from harness import REPO, BackendProcess, GproxyProcess, wait_port

sys.path.insert(0, str(REPO / "tests" / "golden"))
import golden_compare  # noqa: E402

_spec = importlib.util.spec_from_file_location("capture_haproxy_golden",
                                               REPO / "scripts" / "capture_haproxy_golden.py")
capture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(capture)

# Steps where gproxy answers differently on purpose, and how they are compared.
OVERRIDES = {
    # gproxy lists only its own commands, in HAProxy's order and words.
    "help": "help", "help (user level)": "help", "help show": "help", "prefix only": "help",
    # Suggestions come from gproxy's (smaller) command table.
    "empty line": "usage", "unknown command": "usage", "near miss show": "usage", "near miss get": "usage",
    "bad: set maxconn": "usage", "bad: shutdown sessions": "usage", "prompt empty line": "prompt_usage",
    # Only the time since the last change differs.
    "bad: show servers state be_static extra": "servers_state",
}
# Known differences, each with its reason (reported to the lead).
KNOWN_GAPS: dict[str, str] = {}
DEFERRED: set[str] = set()


@pytest.fixture(scope="module")
def golden_run(tmp_path_factory):
    """gproxy on the golden topology, the transcript replayed against it."""
    workdir = tmp_path_factory.mktemp("golden")
    ports = dict(zip(capture.PORT_NAMES, capture.free_ports(len(capture.PORT_NAMES))))
    values = {name: str(port) for name, port in ports.items()} | {"DIR": str(workdir)}
    backends = [BackendProcess("web1", ports["WEB1_PORT"]).start(),
                BackendProcess("web2", ports["WEB2_PORT"]).start()]
    config = capture.substitute((golden_compare.GOLDEN_DIR / "gproxy.toml.in").read_text(), values)
    proxy = GproxyProcess(config, workdir).start([ports["APP_PORT"]])
    try:
        steps = golden_compare.load_transcript()["steps"]
        main, tail = steps[:-2], steps[-2:]
        results = capture.run_transcript(str(workdir), ports, main)
        with socket.create_connection(("127.0.0.1", ports["APP_PORT"]), timeout=5) as sock:
            sock.sendall(b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n")
            while sock.recv(65536):
                pass
        results += capture.run_transcript(str(workdir), ports, tail)
        yield steps, results, proxy
    finally:
        proxy.stop()
        for backend in backends:
            backend.stop()


def _answered(steps, results):
    for golden, ours in zip(steps, results):
        if golden.get("action") == "settle":
            continue
        yield golden, ours["answer"]


def test_every_golden_step_matches(golden_run):
    steps, results, proxy = golden_run
    problems = []
    for golden, ours in _answered(steps, results):
        if golden["name"] in DEFERRED:
            continue
        problems += golden_compare.compare(golden, ours, OVERRIDES.get(golden["name"]))
    problems = [p for p in problems if not any(p.startswith(gap + ":") for gap in KNOWN_GAPS)]
    assert not problems, "\n".join(problems)


def test_show_stat_header_is_haproxys_byte_for_byte(golden_run):
    steps, results, _ = golden_run
    for golden, ours in _answered(steps, results):
        if golden["name"] == "show stat":
            assert ours.splitlines()[0] == golden["answer"].splitlines()[0]
            assert len(ours.splitlines()[0].split(",")) == 129  # 128 columns and the trailing comma
            return
    pytest.fail("no show stat step in the transcript")


def test_daemon_still_healthy_after_the_transcript(golden_run):
    steps, results, proxy = golden_run
    assert proxy.proc.poll() is None, proxy.stderr()
    assert "Traceback" not in proxy.stderr()


def test_show_errors(golden_run):
    steps, results, _ = golden_run
    for golden, ours in _answered(steps, results):
        if golden["name"] == "show errors":
            assert not golden_compare.compare(golden, ours)
