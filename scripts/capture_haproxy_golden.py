#!/usr/bin/env python3
"""Capture HAProxy 2.6's runtime-API answers as golden files for gproxy's tests.

Starts Debian's `haproxy -db -f CFG` on 127.0.0.1 with a configuration that
has an exact gproxy equivalent (both are written from the templates below),
real HTTP backends (`python -m gproxy.demo.backend`), waits for the health
checks to settle, then replays a transcript of runtime-API exchanges on its
admin, operator and user sockets and stores what HAProxy answered:

    tests/golden/haproxy-2.6/
        transcript.json      every step: socket, bytes sent, bytes answered, how to compare
        haproxy.cfg.in       the HAProxy configuration (with @PLACEHOLDERS@)
        gproxy.toml.in       its gproxy equivalent (same placeholders)
        *.txt / *.csv        the main answers, for humans to read

Ports change at every run, so answers store them as @WEB1_PORT@-style tokens;
the tests substitute the same tokens in gproxy's answers before comparing.
The tests replay `transcript.json` step by step against gproxy (see
tests/e2e/test_runtime_api_golden.py).

    .venv/bin/python scripts/capture_haproxy_golden.py [--out DIR] [--haproxy PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests" / "golden" / "haproxy-2.6"
START_TIMEOUT = 15.0  # seconds for a process to listen
SETTLE_TIMEOUT = 20.0  # seconds for health checks to reach the expected statuses
EOF_TIMEOUT = 5.0  # seconds to wait for a non-interactive answer to end
IDLE_TIMEOUT = 0.6  # seconds of silence that end an interactive (prompt) answer

# The one topology both daemons run. Proxy order matters: gproxy numbers
# `[listen]` sections first, then frontends, then backends (iid 2, 3, ...).
HAPROXY_CFG = """\
global
    nbthread 1
    maxconn 4096
    stats socket @DIR@/admin.sock mode 600 level admin
    stats socket @DIR@/operator.sock mode 600 level operator
    stats socket @DIR@/user.sock mode 600 level user
    stats timeout 10s

defaults
    mode http
    maxconn 2000
    timeout connect 1s
    timeout client 5s
    timeout server 5s

listen app
    bind 127.0.0.1:@APP_PORT@
    balance roundrobin
    cookie SRV insert indirect nocache
    option httpchk
    server web1 127.0.0.1:@WEB1_PORT@ cookie w1 weight 10 check inter 200ms
    server web2 127.0.0.1:@WEB2_PORT@ cookie w2 weight 20 check inter 200ms
    server web3 127.0.0.1:@CLOSED_PORT@ cookie w3 check inter 200ms
    server web4 127.0.0.1:@WEB1_PORT@ cookie w4
    server web5 127.0.0.1:@WEB2_PORT@ cookie w5 check inter 200ms disabled
    server bk1 127.0.0.1:@WEB2_PORT@ backup check inter 200ms

listen tcp_lb
    mode tcp
    bind 127.0.0.1:@TCP_PORT@
    server t1 127.0.0.1:@WEB1_PORT@ check inter 200ms

frontend fe_main
    bind 127.0.0.1:@FE_PORT@
    default_backend be_static

backend be_static
    balance static-rr
    server s1 127.0.0.1:@WEB1_PORT@ check inter 200ms
    server s2 127.0.0.1:@WEB2_PORT@ weight 5 check inter 200ms
"""

GPROXY_TOML = """\
[global]
maxconn = 4096
stats_timeout = "10s"
stats_socket = [
    { path = "@DIR@/admin.sock", mode = "600", level = "admin" },
    { path = "@DIR@/operator.sock", mode = "600", level = "operator" },
    { path = "@DIR@/user.sock", mode = "600", level = "user" },
]

[defaults]
mode = "http"
maxconn = 2000
timeout = { connect = "1s", client = "5s", server = "5s" }

[listen.app]
bind = ["127.0.0.1:@APP_PORT@"]
balance = "roundrobin"
cookie = { name = "SRV", mode = "insert", indirect = true, nocache = true }
httpchk = true
server = [
    { name = "web1", address = "127.0.0.1:@WEB1_PORT@", cookie = "w1", weight = 10, check = true, inter = "200ms" },
    { name = "web2", address = "127.0.0.1:@WEB2_PORT@", cookie = "w2", weight = 20, check = true, inter = "200ms" },
    { name = "web3", address = "127.0.0.1:@CLOSED_PORT@", cookie = "w3", check = true, inter = "200ms" },
    { name = "web4", address = "127.0.0.1:@WEB1_PORT@", cookie = "w4" },
    { name = "web5", address = "127.0.0.1:@WEB2_PORT@", cookie = "w5", check = true, inter = "200ms", disabled = true },
    { name = "bk1", address = "127.0.0.1:@WEB2_PORT@", backup = true, check = true, inter = "200ms" },
]

[listen.tcp_lb]
mode = "tcp"
bind = ["127.0.0.1:@TCP_PORT@"]
server = [{ name = "t1", address = "127.0.0.1:@WEB1_PORT@", check = true, inter = "200ms" }]

[frontend.fe_main]
bind = ["127.0.0.1:@FE_PORT@"]
default_backend = "be_static"

[backend.be_static]
balance = "static-rr"
server = [
    { name = "s1", address = "127.0.0.1:@WEB1_PORT@", check = true, inter = "200ms" },
    { name = "s2", address = "127.0.0.1:@WEB2_PORT@", weight = 5, check = true, inter = "200ms" },
]
"""

PORT_NAMES = ("APP_PORT", "TCP_PORT", "FE_PORT", "WEB1_PORT", "WEB2_PORT", "CLOSED_PORT")

# Statuses once checks have settled with web2 drained (the first step).
SETTLED = {
    "app/web1": "UP", "app/web2": "DRAIN", "app/web3": "DOWN", "app/web4": "no check",
    "app/web5": "MAINT", "app/bk1": "UP", "tcp_lb/t1": "UP", "be_static/s1": "UP", "be_static/s2": "UP",
}


def _step(name: str, send: str, compare: str = "exact", socket_: str = "admin", read: str = "eof") -> dict:
    return {"name": name, "socket": socket_, "send": send, "compare": compare, "read": read}


def _settle(name: str, **changes: str) -> dict:
    expect = dict(SETTLED)
    expect.update({key.replace("__", "/"): value for key, value in changes.items()})
    return {"name": name, "action": "settle", "expect": expect}


def transcript() -> list[dict]:
    """The exchanges, in order. State changes come late and are undone."""
    steps: list[dict] = [
        _step("drain web2", "set server app/web2 state drain\n"),
        _settle("settled"),
        # -- reports
        _step("show stat", "show stat\n", "stat_csv"),
        _step("show stat (user level)", "show stat\n", "stat_csv", "user"),
        _step("show stat -1 -1 -1", "show stat -1 -1 -1\n", "stat_csv"),
        _step("show stat app all", "show stat 2 -1 -1\n", "stat_csv"),
        _step("show stat app servers", "show stat 2 4 -1\n", "stat_csv"),
        _step("show stat app server 2", "show stat 2 4 2\n", "stat_csv"),
        _step("show stat by name", "show stat be_static -1 -1\n", "stat_csv"),
        _step("show stat frontends", "show stat -1 1 -1\n", "stat_csv"),
        _step("show stat backends", "show stat -1 2 -1\n", "stat_csv"),
        _step("show stat up", "show stat up\n", "stat_csv"),
        _step("show stat no-maint", "show stat no-maint\n", "stat_csv"),
        _step("show stat typed", "show stat typed\n", "stat_typed"),
        _step("show stat typed one server", "show stat 2 4 1 typed\n", "stat_typed"),
        _step("show stat unknown proxy", "show stat nosuch -1 -1\n"),
        _step("show info", "show info\n", "info"),
        _step("show info typed", "show info typed\n", "info_typed"),
        _step("show info json", "show info json\n", "info_json"),
        _step("show stat json", "show stat json\n", "stat_json"),
        _step("show stat json one server", "show stat 2 4 1 json\n", "stat_json"),
        _step("show servers state", "show servers state\n", "servers_state"),
        _step("show servers state app", "show servers state app\n", "servers_state"),
        _step("show servers state unknown", "show servers state nosuch\n"),
        _step("show backend", "show backend\n"),
        _step("show cli level admin", "show cli level\n"),
        _step("show cli level operator", "show cli level\n", socket_="operator"),
        _step("show cli level user", "show cli level\n", socket_="user"),
        # -- help and unknown commands
        _step("help", "help\n"),
        _step("help (user level)", "help\n", socket_="user"),
        _step("help show", "help show\n"),
        _step("empty line", "\n"),
        _step("unknown command", "bogus command\n"),
        _step("near miss show", "show stt\n"),
        _step("prefix only", "show\n"),
        _step("near miss get", "get wieght app/web1\n"),
        # -- framing
        _step("two commands with ;", "get weight app/web1;get weight app/web2\n"),
        _step("two lines in one write", "get weight app/web1\nget weight app/web2\n"),
        _step("crlf", "show cli level\r\n"),
        _step("spaces and tabs", "  get \t weight   app/web1  \n"),
        _step("escaped semicolon", "get weight app/web1\\;x\n"),
        _step("incomplete line then EOF", "get weight app/web1", read="shut"),
        _step("prompt", "prompt\n", read="idle"),
        _step("prompt two commands", "prompt\nget weight app/web1\nget weight app/web2; show cli level\n",
              read="idle"),
        _step("prompt toggled off", "prompt\nprompt\n", read="idle"),
        _step("prompt quit", "prompt\nquit\n", read="idle"),
        _step("prompt empty line", "prompt\n\n", read="idle"),
        _step("quit", "quit\n"),
        _step("payload in prompt mode", "prompt\nshow cli level <<\nline one\nline two\n\n", read="idle"),
        _step("payload", "show cli level <<\nline one\n\n"),
        # -- levels
        _step("operator from user", "operator\n", socket_="user"),
        _step("lower to user", "user;show cli level\n"),
        _step("lower to operator", "operator;show cli level\n"),
        _step("lowered cannot clear", "user;clear counters\n", socket_="operator"),
        _step("show sess at user", "show sess\n", socket_="user"),
        _step("show errors at user", "show errors\n", socket_="user"),
        _step("clear counters at user", "clear counters\n", socket_="user"),
        _step("clear counters all at operator", "clear counters all\n", socket_="operator"),
        _step("clear counters at operator", "clear counters\n", socket_="operator"),
    ]
    admin_only = [
        "disable server app/web1", "enable server app/web1", "set server app/web1 state maint",
        "set server app/web1 weight 5", "set weight app/web1 5", "set server app/web1 health down",
        "set server app/web1 addr 127.0.0.2", "set maxconn server app/web1 10",
        "set maxconn frontend app 10", "disable health app/web1", "enable health app/web1",
        "shutdown sessions server app/web1",
    ]
    for level in ("user", "operator"):
        steps += [_step(f"{cmd} at {level}", cmd + "\n", socket_=level) for cmd in admin_only]
    steps += [_step("get weight at user", "get weight app/web1\n", socket_="user")]
    # -- bad input: no state change
    bad = [
        "get weight", "get weight app", "get weight nosuch/web1", "get weight app/nosuch",
        "get weight #2/#1", "get weight #99/#1", "get weight #2/#99",
        "set weight app/web1", "set weight app/web1 300", "set weight app/web1 -1", "set weight app/web1 abc",
        "set weight app/web1 10x", "set weight nosuch/web1 1",
        "set server app/web1", "set server app/web1 foo", "set server app/web1 state",
        "set server app/web1 state bogus", "set server app/nosuch state ready", "set server nosuch/web1 state ready",
        "set server app state ready", "set server app/web1 weight", "set server app/web1 weight 257",
        
        "set server be_static/s1 weight 3", "set server be_static/s2 weight 50%",
        "set server app/web1 health", "set server app/web1 health bogus",
        "set server app/web1 addr", "set server app/web1 addr 999.1.1.1", "set server app/web1 addr foo.invalid",
        "set server app/web1 addr 127.0.0.1 port", "set server app/web1 addr 127.0.0.1 port abc",
        "set maxconn server app/web1", "set maxconn server app/web1 abc",
        "set maxconn server app/nosuch 10", "set maxconn server", "set maxconn frontend nosuch 10",
        "set maxconn frontend app", "set maxconn frontend be_static 10",
        "set maxconn frontend", "set maxconn",
        "disable server app/nosuch", "disable server nosuch/web1", "disable server app", "disable server",
        "enable server app/nosuch",
        "disable health app/nosuch", "enable health nosuch/web1", "enable health",
        "shutdown sessions server app/nosuch", "shutdown sessions server", "shutdown sessions",
        "set timeout cli", "set timeout cli abc", "set timeout", "clear counters bogus",
        "show servers state be_static extra",
    ]
    steps += [_step(f"bad: {cmd}", cmd + "\n") for cmd in bad]
    # -- changes, each checked and undone
    steps += [
        _step("get weight", "get weight app/web1\n"),
        _step("set weight", "set weight app/web1 5\n"),
        _step("get weight after set", "get weight app/web1\n"),
        _step("set weight percent", "set server app/web1 weight 50%\n"),
        _step("get weight after percent", "get weight app/web1\n"),
        _step("set weight percent cap", "set server app/web2 weight 2000%\n"),
        _step("get weight capped", "get weight app/web2\n"),
        _step("set weight percent of initial", "set server app/web1 weight 300%\n"),
        _step("get weight percent of initial", "get weight app/web1\n"),
        _step("static weight rounded to 0", "set server be_static/s1 weight 50%\n"),
        _step("get weight static rounded", "get weight be_static/s1\n"),
        _step("set weight zero", "set server app/web2 weight 0\n"),
        _step("get weight by id", "get weight #2/#2\n"),
        _step("static 100%", "set server be_static/s1 weight 100%\n"),
        _step("static 0%", "set server be_static/s2 weight 0%\n"),
        _step("get weight static", "get weight be_static/s2\n"),
        _step("show stat after weights", "show stat\n", "stat_csv"),
        _step("restore weights", "set weight app/web1 10;set weight app/web2 20;set weight be_static/s1 100%;set weight be_static/s2 100%\n"),
        _step("maint web1", "set server app/web1 state maint\n"),
        _step("disable server web4", "disable server app/web4\n"),
        _settle("maint settled", app__web1="MAINT", app__web4="MAINT"),
        _step("show stat in maint", "show stat 2 -1 -1\n", "stat_csv"),
        _step("show servers state in maint", "show servers state app\n", "servers_state"),
        _step("ready web1", "set server app/web1 state ready\n"),
        _step("enable server web4", "enable server app/web4\n"),
        _settle("ready settled"),
        _step("disable health", "disable health app/web1\n"),
        _settle("health disabled", app__web1="no check"),
        _step("show stat health disabled", "show stat 2 4 1\n", "stat_csv"),
        _step("show servers state health disabled", "show servers state app\n", "servers_state"),
        _step("enable health", "enable health app/web1\n"),
        _settle("health enabled"),
        _step("set maxconn server", "set maxconn server app/web1 50\n"),
        _step("set maxconn frontend", "set maxconn frontend app 100\n"),
        _step("show stat maxconn", "show stat 2 -1 -1\n", "stat_csv"),
        _step("restore maxconn", "set maxconn server app/web1 0;set maxconn frontend app 2000\n"),
        _step("set addr", "set server app/web4 addr 127.0.0.2\n"),
        _step("set addr and port", "set server app/web4 addr 127.0.0.3 port @WEB2_PORT@\n"),
        _step("show servers state addr", "show servers state app\n", "servers_state"),
        _step("restore addr", "set server app/web4 addr 127.0.0.1 port @WEB1_PORT@\n"),
        _step("set addr same", "set server app/web4 addr 127.0.0.1\n"),
        _step("shutdown sessions", "shutdown sessions server app/web1\n"),
        _step("clear counters", "clear counters\n"),
        _step("clear counters all", "clear counters all\n"),
        _step("ready web2", "set server app/web2 state ready\n"),
        _step("drain web2 again", "set server app/web2 state drain\n"),
        _settle("end"),
    ]
    return steps


# ---------------------------------------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (all held open while picking, so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_port(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def exchange(path: str, data: bytes, read: str) -> bytes:
    """Send `data` on the unix socket at `path`; return the answer, marked
    with <EOF> if the server closed, <TIMEOUT> if it stayed silent.

    read: "eof" waits for the close; "idle" stops after IDLE_TIMEOUT of
    silence (interactive mode); "shut" half-closes after sending."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(data)
        if read == "shut":
            sock.shutdown(socket.SHUT_WR)
        sock.settimeout(IDLE_TIMEOUT if read == "idle" else EOF_TIMEOUT)
        out = bytearray()
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                return bytes(out) + b"<TIMEOUT>"
            except ConnectionResetError:
                return bytes(out) + b"<EOF>"
            if not chunk:
                return bytes(out) + b"<EOF>"
            out += chunk


def stat_statuses(csv_text: str) -> dict[str, str]:
    lines = csv_text.splitlines()
    header = lines[0][2:].split(",")
    col = {name: i for i, name in enumerate(header)}
    statuses = {}
    for line in lines[1:]:
        if not line or line.startswith("#") or line.startswith("<"):
            continue
        fields = line.split(",")
        if fields[1] in ("FRONTEND", "BACKEND"):
            continue
        check = fields[col["check_status"]]
        statuses[f"{fields[0]}/{fields[1]}"] = (fields[col["status"]], check)
    return statuses


def settle(admin_path: str, expect: dict[str, str]) -> None:
    """Wait until every server shows its expected status and no check is
    half-way (no `n/m` fraction, no `* ` running check)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last: dict = {}
    while time.monotonic() < deadline:
        answer = exchange(admin_path, b"show stat\n", "eof").decode("latin-1")
        last = stat_statuses(answer)
        if all(last.get(key, ("?", ""))[0] == value for key, value in expect.items()) and \
                not any(check.startswith("* ") for _, check in last.values()):
            return
        time.sleep(0.05)
    raise TimeoutError(f"checks did not settle: expected {expect}, got {last}")


def substitute(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    return text


def tokenize_ports(data: bytes, ports: dict[str, int]) -> bytes:
    """Replace every port number by its @NAME@ token (ports change per run)."""
    for name, port in sorted(ports.items(), key=lambda item: -len(str(item[1]))):
        data = re.sub(rb"(?<![0-9])" + str(port).encode() + rb"(?![0-9])", f"@{name}@".encode(), data)
    return data


def run_transcript(sockets_dir: str, ports: dict[str, int], steps: list[dict],
                   on_step=None) -> list[dict]:
    """Play `steps` against the daemon whose sockets are in `sockets_dir`."""
    values = {name: str(port) for name, port in ports.items()}
    results = []
    for step in steps:
        result = dict(step)
        if step.get("action") == "settle":
            settle(os.path.join(sockets_dir, "admin.sock"), step["expect"])
        else:
            path = os.path.join(sockets_dir, f"{step['socket']}.sock")
            data = substitute(step["send"], values).encode("latin-1")
            answer = exchange(path, data, step["read"])
            result["answer"] = tokenize_ports(answer, ports).decode("latin-1")
        results.append(result)
        if on_step:
            on_step(result)
    return results


def start_backend(name: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gproxy.demo.backend", "--listen", f"127.0.0.1:{port}", "--name", name],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    line = proc.stdout.readline()
    if not line.startswith("ready"):
        proc.kill()
        raise RuntimeError(f"backend {name} did not start: {line!r}")
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def write_readable(out: Path, results: list[dict]) -> None:
    files = {
        "help": "help.txt", "show stat": "show_stat.csv", "show stat (user level)": "show_stat_user.csv",
        "show stat typed": "show_stat_typed.txt", "show info": "show_info.txt",
        "show info typed": "show_info_typed.txt", "show servers state": "show_servers_state.txt",
        "show backend": "show_backend.txt", "show errors": "show_errors.txt",
    }
    for result in results:
        name = files.get(result["name"])
        if name:
            (out / name).write_text(result["answer"], encoding="latin-1")


def capture(out: Path, haproxy: str, verbose: bool = False) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="gproxy-golden-"))
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
    values = {name: str(port) for name, port in ports.items()} | {"DIR": str(workdir)}
    procs: list[subprocess.Popen] = []
    try:
        procs.append(start_backend("web1", ports["WEB1_PORT"]))
        procs.append(start_backend("web2", ports["WEB2_PORT"]))
        cfg = workdir / "haproxy.cfg"
        cfg.write_text(substitute(HAPROXY_CFG, values))
        hap = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        procs.append(hap)
        wait_port(ports["APP_PORT"], hap)
        show = (lambda r: print(f"--- {r['name']}\n{r.get('answer', '')}", file=sys.stderr)) if verbose else None
        results = run_transcript(str(workdir), ports, transcript(), show)
        # One invalid request, so that `show errors` has something to report.
        with socket.create_connection(("127.0.0.1", ports["APP_PORT"]), timeout=5) as sock:
            sock.sendall(b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n")
            while sock.recv(65536):
                pass
        errors = run_transcript(str(workdir), ports, [
            _step("show errors", "show errors\n", "errors", "operator"),
            _step("show sess", "show sess\n", "sess", "operator"),
        ])
        results += errors
        out.mkdir(parents=True, exist_ok=True)
        version = subprocess.run([haproxy, "-v"], capture_output=True, text=True).stdout.splitlines()[0]
        document = {
            "haproxy": version,
            "note": "Written by scripts/capture_haproxy_golden.py; do not edit by hand.",
            "ports": list(PORT_NAMES),
            "steps": results,
        }
        (out / "transcript.json").write_text(json.dumps(document, indent=1, ensure_ascii=True) + "\n")
        (out / "haproxy.cfg.in").write_text(HAPROXY_CFG)
        (out / "gproxy.toml.in").write_text(GPROXY_TOML)
        write_readable(out, results)
        print(f"captured {len(results)} steps from {version} into {out}")
    finally:
        for proc in reversed(procs):
            stop(proc)
            if proc.stdout:
                proc.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every answer on stderr")
    args = parser.parse_args(argv)
    if not os.path.exists(args.haproxy):
        print(f"capture_haproxy_golden: {args.haproxy}: not found (apt-get install haproxy)", file=sys.stderr)
        return 1
    capture(args.out, args.haproxy, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
