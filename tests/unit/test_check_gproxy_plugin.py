"""check_gproxy end to end in-process: saved `show stat` captures served on a unix socket
(and over HTTP for -U), every mode, thresholds, and every failure as UNKNOWN without a traceback."""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import nagiosplugin.runtime
import pytest

from checks import gproxy_check
from test_check_statesock import FakeSocketServer

DATA = Path(__file__).resolve().parents[1] / "checks_data"
BIN = Path(sys.executable).parent
SEED_OK = (DATA / "haproxy-2.6.12-seed-ok.csv").read_bytes()
SHOW_INFO = (DATA / "haproxy-2.6.12-show-info.txt").read_bytes()


def crafted(rows: list[dict[str, str]]) -> bytes:
    """A `show stat` answer with HAProxy 2.6's header, from rows given by column name."""
    header = (DATA / "haproxy-2.6.12-capture.csv").read_text().splitlines()[0]
    columns = header[2:].rstrip(",").split(",")
    lines = [header] + [",".join(row.get(c, "") for c in columns) + "," for row in rows]
    return ("\n".join(lines) + "\n\n").encode()


def server_row(name: str, status: str, backup: bool = False, **more: str) -> dict[str, str]:
    return {"pxname": "esup-proxy", "svname": name, "status": status, "bck": "1" if backup else "0",
            "act": "0" if backup else "1", "type": "2", "scur": "0", "qcur": "0", "lastchg": "5", **more}


def backend_row(status: str = "UP", **more: str) -> dict[str, str]:
    return {"pxname": "esup-proxy", "svname": "BACKEND", "status": status, "type": "1", "scur": "7",
            "slim": "200", "qcur": "1", **more}


@pytest.fixture
def lb(tmp_path):
    """Serve a `show stat` answer (and `show info`) on a unix socket; returns (path, server)."""
    servers = []

    def serve(stat: bytes, info: bytes = SHOW_INFO, **kwargs) -> str:
        server = FakeSocketServer(tmp_path / f"lb{len(servers)}.sock",
                                  answers={"show stat": stat, "show info": info}, **kwargs)
        servers.append(server)
        return server.path

    yield serve
    for server in servers:
        server.close()


def run_check(capsys, *argv: str) -> tuple[int, str]:
    """main() in this process: the exit code and stdout (nagiosplugin's Runtime is a singleton: reset it)."""
    nagiosplugin.runtime.Runtime.instance = None
    with pytest.raises(SystemExit) as exit_info:
        gproxy_check.main(list(argv))
    out = capsys.readouterr().out
    assert "Traceback" not in out
    return exit_info.value.code, out


def perfdata(out: str) -> dict[str, str]:
    text = out.split("|", 1)[1]
    return dict(re.findall(r"('[^']+'|\S+)=(\S+)", text))


# ------------------------------------------------------------------ backends

def test_seed_all_up(lb, capsys):
    rc, out = run_check(capsys, "-s", lb(SEED_OK))
    lines = out.splitlines()
    assert rc == 0
    assert lines[0] == "GPROXY BACKENDS OK - esup-proxy: 3/3 active servers up"
    assert lines[1].startswith("esup-proxy: UP, 3/3 active up, 1/1 backup up, sessions 0/")
    assert lines[2].startswith("  ents3 UP for ") and ", check L7OK/200 in " in lines[2]
    assert lines[5].startswith("  ent-maintenance (backup) UP")
    assert perfdata(out)["'esup-proxy_up'"] == "3;3:;1:;0;3"
    assert perfdata(out)["'esup-proxy_qcur'"] == "0;;;0"


def test_seed_backup_serving_is_critical_and_says_so(lb, capsys):
    rc, out = run_check(capsys, "backends", "-s", lb((DATA / "haproxy-2.6.12-seed-backup-serving.csv").read_bytes()))
    assert rc == 2
    assert out.splitlines()[0] == ("GPROXY BACKENDS CRITICAL - esup-proxy: no active server up, "
                                   "backup ent-maintenance serving")
    assert "  ents1 DOWN for " in out and "check L4CON (Connection refused)" in out
    assert perfdata(out)["'esup-proxy_up'"] == "0;3:;1:;0;3"


def test_one_server_down_is_a_warning(lb, capsys):
    stat = crafted([server_row("ents3", "UP"), server_row("ents2", "DOWN", check_status="L7STS", check_code="500",
                                                           last_chk="HTTP status check returned code <3C>500<3E>"),
                    server_row("ents1", "UP 1/3"), server_row("ent-maintenance", "UP", backup=True), backend_row()])
    rc, out = run_check(capsys, "-s", lb(stat))
    assert rc == 1
    assert out.splitlines()[0] == "GPROXY BACKENDS WARNING - esup-proxy: 2/3 active servers up (ents2 DOWN)"
    assert "ents2 DOWN for 5s, check L7STS/500 (HTTP status check returned code <3C>500<3E>)" in out
    assert perfdata(out)["'esup-proxy_scur'"] == "7;;;0;200"


def test_every_server_down_and_no_backup(lb, capsys):
    stat = crafted([server_row("a", "DOWN"), server_row("b", "DOWN 1/2"), server_row("m", "DOWN", backup=True),
                    backend_row("DOWN")])
    rc, out = run_check(capsys, "-s", lb(stat))
    assert rc == 2
    assert out.splitlines()[0] == "GPROXY BACKENDS CRITICAL - esup-proxy: no active server up, no backup server up either"


def test_backup_down_alone_is_a_warning(lb, capsys):
    stat = crafted([server_row("a", "UP"), server_row("m", "DOWN", backup=True), backend_row()])
    rc, out = run_check(capsys, "-s", lb(stat))
    assert rc == 1 and out.splitlines()[0] == "GPROXY BACKENDS WARNING - esup-proxy: backup m DOWN"


def test_drain_and_maint_count_unless_maint_ok(lb, capsys):
    path = lb((DATA / "haproxy-2.6.12-seed-drain-maint.csv").read_bytes())
    rc, out = run_check(capsys, "-s", path)
    assert rc == 1
    assert out.splitlines()[0] == "GPROXY BACKENDS WARNING - esup-proxy: 1/3 active servers up (ents2 DRAIN, ents1 MAINT)"
    rc, out = run_check(capsys, "-s", path, "--maint-ok")
    assert rc == 0
    assert out.splitlines()[0] == "GPROXY BACKENDS OK - esup-proxy: 1/1 active servers up, 2 drained or in maintenance"
    assert "  ents1 MAINT for " in out


def test_everything_in_maintenance_with_maint_ok_and_backup_serving(lb, capsys):
    stat = crafted([server_row("a", "MAINT"), server_row("b", "MAINT"), server_row("m", "UP", backup=True),
                    backend_row()])
    rc, out = run_check(capsys, "-s", lb(stat), "--maint-ok")
    assert rc == 0 and out.splitlines()[0].endswith("0/0 active servers up, 2 drained or in maintenance, backup serving")
    stat = crafted([server_row("a", "MAINT"), backend_row("DOWN")])
    rc, out = run_check(capsys, "-s", lb(stat), "--maint-ok")
    assert rc == 2  # HAProxy says the backend is DOWN: nothing serves, whatever the reason


def test_real_capture_many_backends_filters(lb, capsys):
    path = lb((DATA / "haproxy-2.6.12-capture.csv").read_bytes())
    rc, out = run_check(capsys, "-s", path)
    first = out.splitlines()[0]
    assert rc == 2
    assert first.startswith("GPROXY BACKENDS CRITICAL - be_checks: no active server up, nothing serves; "
                            "be_nolb: no active server up (n1 NOLB), nothing serves; be_app: 2/5 active servers up")
    rc, out = run_check(capsys, "-s", path, "-b", "be_app")
    assert rc == 1 and out.splitlines()[0] == ("GPROXY BACKENDS WARNING - be_app: 2/5 active servers up "
                                               "(2 DOWN, 2 MAINT)".replace("2 DOWN, 2 MAINT", "1 DOWN, 2 MAINT"))
    rc, out = run_check(capsys, "-s", path, "--exclude", "be_checks", "--exclude", "be_nolb", "--exclude", "be_app")
    assert rc == 0 and out.splitlines()[0] == "GPROXY BACKENDS OK - tcp_lb: 1/1 active servers up"
    rc, out = run_check(capsys, "-s", path, "-b", "be_nope")
    assert rc == 3 and out.splitlines()[0] == "GPROXY BACKENDS UNKNOWN - no backend named 'be_nope'"


@pytest.mark.parametrize("args, rc, warn, crit", [
    (["-w", "2:", "-c", "1:"], 0, "2:", "1:"),
    (["-w", "3:", "-c", "3:"], 2, "3:", "3:"),
    (["-w", "75%:"], 1, "2.25:", "1:"),
    (["-w", "50%:", "-c", "50%:"], 0, "1.5:", "1.5:"),
    (["-c", "@2"], 2, "3:", "@2"),
])
def test_thresholds_on_servers_up(lb, capsys, args, rc, warn, crit):
    stat = crafted([server_row("a", "UP"), server_row("b", "UP"), server_row("c", "DOWN"), backend_row()])
    code, out = run_check(capsys, "-s", lb(stat), *args)
    assert code == rc
    assert perfdata(out)["'esup-proxy_up'"] == f"2;{warn};{crit};0;3"


# ------------------------------------------------------------------ server

def test_server_mode(lb, capsys):
    path = lb((DATA / "haproxy-2.6.12-seed-drain-maint.csv").read_bytes())
    rc, out = run_check(capsys, "server", "-s", path, "-b", "esup-proxy", "-S", "ents3")
    assert rc == 0 and re.match(r"GPROXY SERVER OK - esup-proxy/ents3 UP for \d+s, check L7OK/200 in \d+ms$",
                                out.splitlines()[0])
    assert "chkfail=2c;;;0" in out and "scur=0;;;0" in out
    rc, out = run_check(capsys, "server", "-s", path, "-b", "esup-proxy", "-S", "ents1")
    assert rc == 1 and out.startswith("GPROXY SERVER WARNING - esup-proxy/ents1 MAINT for ")
    rc, out = run_check(capsys, "server", "-s", path, "-b", "esup-proxy", "-S", "ents2", "--maint-ok")
    assert rc == 0 and out.startswith("GPROXY SERVER OK - esup-proxy/ents2 DRAIN")
    path = lb((DATA / "haproxy-2.6.12-seed-backup-serving.csv").read_bytes())
    rc, out = run_check(capsys, "server", "-s", path, "-b", "esup-proxy", "-S", "ents2")
    assert rc == 2 and "ents2 DOWN for" in out and "L4CON (Connection refused)" in out
    rc, out = run_check(capsys, "server", "-s", path, "-b", "esup-proxy", "-S", "ents9")
    assert rc == 3 and out.splitlines()[0] == ("GPROXY SERVER UNKNOWN - no server esup-proxy/ents9 "
                                               "(no such server in that backend)")
    rc, out = run_check(capsys, "server", "-s", path, "-b", "esup-proxy")
    assert rc == 3 and "server mode needs one -b BACKEND and -S SERVER" in out


# ------------------------------------------------------------------ sessions

def test_sessions_against_limits(lb, capsys):
    stat = crafted([{"pxname": "esup-proxy", "svname": "FRONTEND", "status": "OPEN", "type": "0", "scur": "1700",
                     "slim": "2000"},
                    server_row("a", "UP", scur="95", slim="100"), server_row("b", "UP", scur="10", slim=""),
                    backend_row(scur="105")])
    info = b"Name: gproxy\nMaxconn: 4096\nCurrConns: 1000\n\n"
    rc, out = run_check(capsys, "sessions", "-s", lb(stat, info))
    assert rc == 2
    assert out.splitlines()[0] == ("GPROXY SESSIONS CRITICAL - server esup-proxy/a: 95/100 sessions (95%); "
                                   "frontend esup-proxy: 1700/2000 sessions (85%)")
    perf = perfdata(out)
    assert perf["sessions"] == "1000;3276.8;3686.4;0;4096"
    assert perf["'esup-proxy_scur'"] == "1700;1600;1800;0;2000"
    assert perf["'esup-proxy/a_scur'"] == "95;80;90;0;100"
    rc, out = run_check(capsys, "sessions", "-s", lb(stat, info), "-w", "96", "-c", "99")
    assert rc == 0 and out.splitlines()[0] == "GPROXY SESSIONS OK - 3 limits, highest use server esup-proxy/a 95/100 (95%)"


def test_sessions_without_any_limit(lb, capsys):
    rc, out = run_check(capsys, "sessions", "-s", lb(crafted([server_row("a", "UP")]), b"Maxconn: 0\nCurrConns: 0\n"))
    assert rc == 3 and "no session limit to compare with" in out


# ------------------------------------------------------------------ rates

def rates_rows(req: int, r5xx: int, r2xx: int, econ: int, tcp_sess: int) -> bytes:
    return crafted([
        backend_row(req_tot=str(req), hrsp_2xx=str(r2xx), hrsp_5xx=str(r5xx), hrsp_4xx="0", econ=str(econ),
                    stot=str(req)),
        {"pxname": "tcp_lb", "svname": "BACKEND", "status": "UP", "type": "1", "stot": str(tcp_sess), "econ": "0"},
    ])


def seed_state(path: Path, seconds_ago: float, **counters: dict[str, int]) -> None:
    path.write_text(json.dumps({"format": 1, "at": time.time() - seconds_ago, "backends": counters}))


def test_rates_first_run_then_rates(lb, capsys, tmp_path):
    state = tmp_path / "state.json"
    sock = lb(rates_rows(1000, 10, 990, 0, 50))
    rc, out = run_check(capsys, "rates", "-s", sock, "--state-file", str(state))
    assert rc == 0 and out.splitlines()[0] == f"GPROXY RATES OK - first run: counters saved in {state}, rates from the next run"
    saved = json.loads(state.read_text())
    assert saved["backends"]["esup-proxy"]["req_tot"] == 1000 and "req_tot" not in saved["backends"]["tcp_lb"]
    seed_state(state, 100, **{
        "esup-proxy": {"req_tot": 800, "stot": 800, "hrsp_2xx": 800, "hrsp_4xx": 0, "hrsp_5xx": 0, "econ": 0},
        "tcp_lb": {"stot": 0, "econ": 0}})
    rc, out = run_check(capsys, "rates", "-s", sock, "--state-file", str(state))
    # 10 of the 200 responses were 5xx: 5%, inside the default warning range 0..5
    assert rc == 0
    assert out.splitlines()[0] == ("GPROXY RATES OK - 2 backends, 2.5 requests/s over 100s, "
                                   "5xx and connection errors within limits")
    assert "esup-proxy: 2 req/s".replace("req", "requests") in out and "5% 5xx (0.1/s)" in out
    assert perfdata(out)["'esup-proxy_5xx'"] == "5.0%;5;20;0;100"
    rc, out = run_check(capsys, "rates", "-s", sock, "--state-file", str(state), "-w", "4")
    assert rc == 0  # the state was just rewritten: nothing happened since, 0 responses


def test_rates_thresholds_and_tcp_backends(lb, capsys, tmp_path):
    state = tmp_path / "state.json"
    seed_state(state, 100, **{
        "esup-proxy": {"req_tot": 0, "stot": 0, "hrsp_2xx": 0, "hrsp_4xx": 0, "hrsp_5xx": 0, "econ": 0},
        "tcp_lb": {"stot": 0, "econ": 0}})
    rc, out = run_check(capsys, "rates", "-s", lb(rates_rows(1000, 300, 700, 50, 200)), "--state-file", str(state),
                        "--econ-warning", "0.1")
    assert rc == 2
    first = out.splitlines()[0]
    assert first.startswith("GPROXY RATES CRITICAL - esup-proxy: 30% 5xx (3/s of 1000 responses)")
    assert "esup-proxy: 0.5 connection errors/s" in first
    perf = perfdata(out)
    assert perf["'esup-proxy_5xx'"] == "30.0%;5;20;0;100"
    assert perf["'esup-proxy_req_rate'"].endswith(";;;0")
    assert float(perf["'esup-proxy_req_rate'"].split(";")[0]) == pytest.approx(10, rel=0.01)
    assert float(perf["tcp_lb_req_rate"].split(";")[0]) == pytest.approx(2, rel=0.01)
    assert "tcp_lb: 2 sessions/s, 0% 5xx" in out


def test_rates_counter_reset_and_new_backend(lb, capsys, tmp_path):
    state = tmp_path / "state.json"
    seed_state(state, 60, **{"esup-proxy": {"req_tot": 5000, "stot": 5000, "hrsp_2xx": 5000, "hrsp_4xx": 0,
                                            "hrsp_5xx": 0, "econ": 0}})
    rc, out = run_check(capsys, "rates", "-s", lb(rates_rows(10, 0, 10, 0, 1)), "--state-file", str(state))
    assert rc == 0
    assert "esup-proxy: counters went back (restart?), rates from the next run" in out
    assert out.splitlines()[0].startswith("GPROXY RATES OK - 0 backends")


def test_rates_state_file_is_not_followed_through_a_symlink(lb, capsys, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    link = tmp_path / "state.json"
    link.symlink_to(target)
    rc, out = run_check(capsys, "rates", "-s", lb(rates_rows(1, 0, 1, 0, 1)), "--state-file", str(link))
    assert rc == 3 and out.startswith(f"GPROXY RATES UNKNOWN - state file {link}: ")
    assert target.read_text() == "precious"


def test_rates_state_file_owned_by_someone_else(lb, capsys, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give the file away")
    state = tmp_path / "state.json"
    state.write_text("{}")
    os.chown(state, 65534, 65534)
    rc, out = run_check(capsys, "rates", "-s", lb(rates_rows(1, 0, 1, 0, 1)), "--state-file", str(state))
    assert rc == 3 and "owned by uid 65534, not by this user" in out


def test_rates_default_state_path_is_per_source_filters_and_user():
    args = gproxy_check.make_parser().parse_args(["rates", "-s", "/run/a.sock"])
    source = gproxy_check.StatsSource(args.socket, None, None, 1)
    one = gproxy_check.RatesResource(source, [], [], None).path()
    two = gproxy_check.RatesResource(source, ["be"], [], None).path()
    other = gproxy_check.RatesResource(gproxy_check.StatsSource("/run/b.sock", None, None, 1), [], [], None).path()
    assert one.startswith(f"/var/tmp/check_gproxy-{os.geteuid()}-") and one.endswith(".json")
    assert len({one, two, other}) == 3


# ------------------------------------------------------------------ failures

def test_garbage_on_the_socket(lb, capsys):
    rc, out = run_check(capsys, "-s", lb(b"\x00\xffsome garbage\n"))
    assert rc == 3 and out.startswith("GPROXY BACKENDS UNKNOWN - socket ") and "not a `show stat` CSV" in out


def test_permission_denied_answer(lb, capsys):
    rc, out = run_check(capsys, "-s", lb(b"Permission denied\n\n"))
    assert rc == 3 and "it starts with 'Permission denied'" in out


def test_missing_socket(capsys, tmp_path):
    rc, out = run_check(capsys, "-s", str(tmp_path / "gone.sock"))
    assert rc == 3
    assert out == f"GPROXY BACKENDS UNKNOWN - socket {tmp_path}/gone.sock: no such socket (is the daemon running? is the path right?)\n"


def test_empty_answer(lb, capsys):
    rc, out = run_check(capsys, "-s", lb(b""))
    assert rc == 3 and "empty answer to 'show stat'" in out


def test_timeout_is_unknown_within_the_limit(lb, capsys):
    gate, answered = threading.Event(), threading.Event()
    path = lb(b"", handler=lambda conn, request: (gate.wait(30), answered.set()))
    try:
        rc, out = run_check(capsys, "-s", path, "-t", "1")
        assert not answered.is_set()  # the plugin gave up while the socket still held its answer back
    finally:
        gate.set()
    assert rc == 3 and out.splitlines()[0].endswith("no complete answer within 0.5s")


# ------------------------------------------------------------------ stats page over HTTP

class StatsPage(http.server.BaseHTTPRequestHandler):
    body = SEED_OK
    paths: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        StatsPage.paths.append(self.path)
        expected = "Basic " + base64.b64encode(b"admin:secret").decode()
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="HAProxy Statistics"')
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stats_page():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StatsPage)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    StatsPage.paths = []
    yield f"http://127.0.0.1:{server.server_address[1]}/stats"
    server.shutdown()
    server.server_close()


def test_url_with_basic_auth(stats_page, capsys):
    rc, out = run_check(capsys, "-U", stats_page, "-a", "admin:secret")
    assert rc == 0 and out.startswith("GPROXY BACKENDS OK - esup-proxy: 3/3 active servers up")
    assert StatsPage.paths == ["/stats;csv"]
    rc, out = run_check(capsys, "-U", stats_page + ";csv;norefresh", "-a", "admin:secret")
    assert rc == 0 and StatsPage.paths[-1] == "/stats;csv;norefresh"


def test_url_bad_password_and_sessions_without_show_info(stats_page, capsys):
    rc, out = run_check(capsys, "-U", stats_page, "-a", "admin:nope")
    assert rc == 3 and out.splitlines()[0] == (f"GPROXY BACKENDS UNKNOWN - stats page {stats_page};csv: "
                                               "HTTP 401 Unauthorized (check -a user:password)")
    rc, out = run_check(capsys, "sessions", "-U", stats_page, "-a", "admin:secret")
    assert rc == 0 and "global" not in out and "frontend esup-proxy" in out


def test_url_nobody_listens(capsys):
    rc, out = run_check(capsys, "-U", "http://127.0.0.1:9/stats")
    assert rc == 3 and out.startswith("GPROXY BACKENDS UNKNOWN - stats page http://127.0.0.1:9/stats;csv: ")


# ------------------------------------------------------------------ arguments and the console script

@pytest.mark.parametrize("argv, first_line", [
    (["-w", "foo"], "GPROXY UNKNOWN - argument -w/--warning: bad range 'foo'"),
    (["-w", "20:10"], "GPROXY UNKNOWN - argument -w/--warning: bad range '20:10'"),
    (["-t", "0"], "GPROXY UNKNOWN - argument -t/--timeout: must be at least 1: '0'"),
    (["bogus"], "GPROXY UNKNOWN - argument mode: invalid choice: 'bogus'"),
    (["-a", "u:p"], "GPROXY UNKNOWN - -a/--auth goes with -U/--url"),
    (["-s", "x", "-U", "http://h/"], "GPROXY UNKNOWN - argument -U/--url: not allowed with argument -s/--socket"),
])
def test_bad_arguments_exit_3_with_a_status_line(capsys, argv, first_line):
    rc, out = run_check(capsys, *argv)
    assert rc == 3 and out.splitlines()[0].startswith(first_line)
    assert "usage: check_gproxy" in out


def test_console_script_version_and_help():
    version = subprocess.run([str(BIN / "check_gproxy"), "-V"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 3 and version.stdout == "check_gproxy 0.1.0 (gproxy suite)\n"
    helped = subprocess.run([str(BIN / "check_gproxy"), "--help"], capture_output=True, text=True, timeout=30)
    assert helped.returncode == 3 and "Exit codes: 0 OK, 1 WARNING" in helped.stdout
    assert "--maint-ok" in helped.stdout and helped.stderr == ""


def test_plugin_imports_stay_small():
    heavy = ("gevent", "gproxy", "heartbeat", "urllib.request", "xml.etree", "subprocess", "hashlib", "http.client")
    probe = ("import sys, checks.gproxy_check, checks.heartbeat_check; "
             f"print(','.join(sorted(m for m in {heavy!r} if m in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30).stdout.strip()
    assert loaded == ""
