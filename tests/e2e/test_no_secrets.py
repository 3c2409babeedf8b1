"""No secret anywhere it should not be (issue 9, least privilege).

One real run of everything that holds a secret: gproxy with a stats page
(two users, admin actions), SNMP traps in v2c (a community) and v3 (auth and
priv keys), a stats socket; a two-node heartbeat cluster with its keys file
and the same SNMP targets. Activity: requests, a stats page login that
works and one that fails, a server killed (DOWN, traps), a forged heartbeat
(auth failure), `heartbeat status` and `--json`, `gproxy check --dump`, the
runtime API's views. Then none of the secret strings may appear in gproxy's
logs and stderr, the heartbeat nodes' logs, status output, the dump, the
stats page, the traps Debian's snmptrapd received, or what the SNMP notify
commands of both daemons got (arguments, environment, stdin).

A v2c trap carries its community in its envelope by design (SNMPv2c has no
other authentication): that field is the receiver's business, so for v2c
the var-binds are checked; a v3 trap must carry no secret anywhere, and its
raw datagrams (captured by a plain UDP socket) neither a key nor the
message in clear text (authPriv encrypts it).
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import REPO, BackendProcess, GproxyProcess, free_port, http_get, http_request
from gsuite.snmp_config import DEFAULT_ENTERPRISE_OID, default_engine_id
from test_runtime_api import cli
from test_snmp_traps import BASE_MIBS, DUMMY, MIB_DIR, SNMPTRAPD, LoopbackCluster, forged_heartbeat, udp_port

NODE = "lb-secrets"
STATS_URI = "/gproxy?stats"
ADMIN_PW = "St4ts-admin-pw-n0t-for-logs"
OPS_PW = "St4ts-ops-pw-n0t-for-logs"
WRONG_PW = "Wr0ng-pw-n0t-for-logs"
COMMUNITY = "C0mmunity-n0t-for-logs"
V3_USER = "nms"
AUTH_KEY = "Auth-key-n0t-for-logs"
PRIV_KEY = "Priv-key-n0t-for-logs"
HB_KEY = "Hb-key-n0t-for-logs"
WAIT = 20.0


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


SECRETS = (ADMIN_PW, OPS_PW, WRONG_PW, COMMUNITY, AUTH_KEY, PRIV_KEY, HB_KEY,
           basic("admin", ADMIN_PW), basic("ops", OPS_PW), basic("admin", WRONG_PW))


def wait_for(predicate, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class TrapReceiver:
    """snmptrapd on a loopback port knowing our community and v3 user, logging
    `version/security <TAB> var-binds` lines to a file."""

    def __init__(self, workdir: Path, engine_ids: list[str]):
        if not Path(SNMPTRAPD).exists():
            pytest.fail("snmptrapd is missing: run scripts/install-debian-deps.sh (make test does)")
        self.port = udp_port()
        self.log = workdir / "traps.log"
        conf = workdir / "snmptrapd.conf"
        users = "".join(f"createUser -e {eid} {V3_USER} SHA {AUTH_KEY} AES {PRIV_KEY}\n" for eid in engine_ids)
        conf.write_text(f"authCommunity log {COMMUNITY}\n{users}authUser log {V3_USER} priv\n"
                        "format2 %V\\t%P\\t%v\\n\n")
        mibs = ["-M", f"{BASE_MIBS}:{MIB_DIR}", "-m", "ALL"] if (BASE_MIBS / "SNMPv2-SMI.mib").exists() else ["-m", ""]
        self.proc = subprocess.Popen(
            [SNMPTRAPD, "-f", "-C", "-c", str(conf), *mibs, "-Lf", str(self.log), "-n", f"udp:127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, SNMP_PERSISTENT_DIR=str(workdir / "persist")))
        wait_for(lambda: self.log.exists() and "NET-SNMP version" in self.log.read_text(errors="replace"),
                 "snmptrapd to start")

    def traps(self) -> list[tuple[str, str]]:
        """(security, var-binds) of each trap received so far."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            security, tab, varbinds = line.partition("\t")
            if tab and "TRAP2" in security:
                out.append((security, varbinds))
        return out

    def wait(self, text: str) -> None:
        """Until a trap mentioning `text` arrived in both versions."""
        def both() -> bool:
            found = [security for security, varbinds in self.traps() if text in varbinds]
            return any("v2c" in s for s in found) and any(f"v3, user {V3_USER}" in s for s in found)
        wait_for(both, f"a trap about {text!r} in v2c and v3")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class RawUdp:
    """A plain UDP socket collecting the datagrams a v3 trap target receives."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.sock.recv(65535))
            except socket.timeout:
                continue
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def snmp_table(receiver: TrapReceiver, raw: RawUdp, notified: Path) -> dict:
    """Traps to snmptrapd (v2c and v3) and to a raw socket (v3); a notify
    command appending its arguments and environment to `notified`."""
    record = ("import os, sys; open(sys.argv[1], 'a').write(repr(sys.argv) + repr(sorted(os.environ.items()))"
              " + sys.stdin.read() + '\\n')")
    v3 = {"version": "v3", "user": V3_USER, "auth_protocol": "SHA", "auth_key": AUTH_KEY,
          "priv_protocol": "AES", "priv_key": PRIV_KEY}
    return {"traps": [
        {"target": f"udp://127.0.0.1:{receiver.port}", "version": "v2c", "community": COMMUNITY},
        {"target": f"udp://127.0.0.1:{receiver.port}", **v3},
        {"target": f"udp://127.0.0.1:{raw.port}", **v3},
    ], "notify_command": [sys.executable, "-c", record, str(notified)]}


class SyslogFile:
    """A UDP syslog receiver keeping every datagram (a thread, so nothing is lost)."""

    def __init__(self):
        self.raw = RawUdp()

    @property
    def target(self) -> str:
        return f"udp://127.0.0.1:{self.raw.port}"

    def lines(self) -> list[str]:
        return [d.decode("utf-8", "replace") for d in list(self.raw.datagrams)]


def errors_data(errors: str) -> str:
    """The captured bytes of a `show errors` dump, its wrapped lines joined
    back (`00037  Authorization: Basic ...`, `00101  z\\r\\n`)."""
    return "".join(re.findall(r"^ +\d{5}  (.*)$", errors, re.MULTILINE))


def run(*args: str, ok: bool = True) -> str:
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO, timeout=60)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_no_secret_in_logs_status_dumps_or_traps(tmp_path):
    if not DUMMY.exists():
        pytest.fail("ocf:heartbeat:Dummy is missing: run scripts/install-debian-deps.sh (make test does)")
    engine_ids = [default_engine_id(DEFAULT_ENTERPRISE_OID, "gproxy", NODE)]
    engine_ids += [default_engine_id(DEFAULT_ENTERPRISE_OID, "heartbeat", n) for n in ("n1", "n2")]
    receiver = TrapReceiver(tmp_path, engine_ids)
    raw = RawUdp()
    syslog = SyslogFile()
    backends = [BackendProcess(name).start() for name in ("s1", "s2")]
    port = free_port()
    admin_sock = tmp_path / "admin.sock"
    config = {
        "global": {"node": NODE, "stats_socket": {"path": str(admin_sock), "level": "admin"},
                   "log": [{"target": syslog.target}]},
        "snmp": snmp_table(receiver, raw, tmp_path / "notified-gproxy.txt"),
        "defaults": {"mode": "http", "log": "global", "httplog": True,
                     "timeout": {"connect": "1s", "client": "5s", "server": "5s"}},
        "listen": {"app": {
            "bind": [f"127.0.0.1:{port}"],
            "stats": {"uri": STATS_URI, "auth": [f"admin:{ADMIN_PW}", f"ops:{OPS_PW}"], "admin": True},
            "server": [{"name": b.name, "address": b.address, "check": True, "inter": "200ms", "rise": 1,
                        "fall": 1} for b in backends],
        }},
    }
    (tmp_path / "gp").mkdir()
    proxy = GproxyProcess(config, tmp_path / "gp")
    hb_dir = tmp_path / "hb"
    hb_dir.mkdir()
    cluster = LoopbackCluster(hb_dir, snmp_table(receiver, raw, tmp_path / "notified-heartbeat.txt"))
    (hb_dir / "authkey").write_text(f"auth 1\n1 sha256 {HB_KEY}\n")
    outputs: dict[str, str] = {}
    try:
        proxy.start([port])
        wait_for(admin_sock.exists, "the stats socket")
        cluster.start("n1")
        cluster.start("n2")

        # gproxy: traffic, the stats page with good and bad credentials, an admin action.
        for _ in range(4):
            assert http_get(port, "/")[0] == 200
        page = http_get(port, STATS_URI, headers={"Authorization": "Basic " + basic("admin", ADMIN_PW)})
        assert page[0] == 200
        outputs["stats page"] = page[2].decode(errors="replace") + json.dumps(page[1])
        assert http_get(port, STATS_URI, headers={"Authorization": "Basic " + basic("ops", OPS_PW)})[0] == 200
        assert http_get(port, STATS_URI, headers={"Authorization": "Basic " + basic("admin", WRONG_PW)})[0] == 401
        def admin_action(action: str, password: str) -> int:
            return http_request(port, "POST", STATS_URI, body=f"b=app&s=s2&action={action}".encode(), headers={
                "Authorization": "Basic " + basic("admin", password),
                "Content-Type": "application/x-www-form-urlencoded"})[0]

        assert admin_action("drain", WRONG_PW) == 401
        assert admin_action("drain", ADMIN_PW) == 303
        assert admin_action("ready", ADMIN_PW) == 303

        # A server goes down: log lines, and traps in both versions.
        backends[0].kill()
        receiver.wait("app/s1 is DOWN")
        assert http_get(port, "/")[0] == 200  # s2 serves

        # heartbeat: the nodes join (traps), a forged packet is refused (auth failure trap).
        receiver.wait("node n1 joined")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as forger:
            forger.sendto(forged_heartbeat("snmp-e2e"), ("127.0.0.1", cluster.ports["n2"]))
        wait_for(lambda: any("bad-hmac" in v or "heartbeatAuthFailures" in v for _, v in receiver.traps()),
                 "the auth failure trap")
        cluster.wait_placed("n2", "n1")
        outputs["heartbeat status"] = cluster.heartbeat("status")
        outputs["heartbeat status --json"] = cluster.heartbeat("status", "--json")
        assert "n1" in outputs["heartbeat status"] and json.loads(outputs["heartbeat status --json"])

        # What an operator can look at.
        for command in ("show info", "show stat", "show stat typed", "show sess", "show errors",
                        "show servers state"):
            outputs[f"gproxy {command}"] = cli(admin_sock, command)
        outputs["gproxy show errors (data unwrapped)"] = errors_data(outputs["gproxy show errors"])
        outputs["gproxy check --dump"] = run("gproxy", "check", str(proxy.path), "--dump")
        assert '"auth"' in outputs["gproxy check --dump"]  # the dump shows the users, hidden passwords
        outputs["heartbeat check"] = run("heartbeat", "check", str(cluster.path), ok=False)
    finally:
        proxy.stop()
        cluster.stop()
        for backend in backends:
            backend.stop()
        receiver.stop()
        raw.stop()
        syslog.raw.stop()

    outputs["gproxy stderr"] = proxy.stderr()
    outputs["gproxy syslog"] = "\n".join(syslog.lines())
    outputs["heartbeat logs"] = cluster.logs()
    for log in hb_dir.glob("*.log"):
        outputs[f"heartbeat {log.name}"] = log.read_text(errors="replace")
    for notified in ("gproxy", "heartbeat"):
        text = (tmp_path / f"notified-{notified}.txt").read_text(errors="replace")
        assert "GSUITE_" in text
        outputs[f"{notified} notify command (argv, environment, stdin)"] = text
    traps = receiver.traps()
    assert any("v2c" in s for s, _ in traps) and any("v3" in s for s, _ in traps)
    outputs["traps (var-binds)"] = "\n".join(varbinds for _, varbinds in traps)
    outputs["traps (v3, whole)"] = "\n".join(s + "\t" + v for s, v in traps if "v3" in s)
    assert "app/s1 is DOWN" in outputs["gproxy syslog"] and STATS_URI.split("?")[0] in outputs["gproxy syslog"]

    leaks = [(secret, where) for where, text in outputs.items() for secret in SECRETS if secret in text]
    assert leaks == [], leaks

    # v3 on the wire: datagrams arrived, none carries a key or the message in clear.
    assert raw.datagrams
    for datagram in raw.datagrams:
        for secret in (AUTH_KEY, PRIV_KEY, COMMUNITY):
            assert secret.encode() not in datagram
        assert b"is DOWN" not in datagram and b"joined" not in datagram


def test_show_errors_does_not_print_the_credentials_of_an_invalid_request(start_backend, start_gproxy, tmp_path):
    backend = start_backend("s1")
    port = free_port()
    sock_path = tmp_path / "operator.sock"
    config = {
        "global": {"stats_socket": {"path": str(sock_path), "level": "operator"}},
        "defaults": {"mode": "http", "timeout": {"connect": "1s", "client": "5s", "server": "5s"}},
        "listen": {"app": {"bind": [f"127.0.0.1:{port}"],
                           "stats": {"uri": STATS_URI, "auth": [f"admin:{ADMIN_PW}"]},
                           "server": [{"name": "s1", "address": backend.address}]}},
    }
    start_gproxy(config, [port])
    wait_for(sock_path.exists, "the stats socket")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {STATS_URI} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic('admin', ADMIN_PW)}\r\n"
                     "Bad\x01Header: x\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 400 ")
    errors = cli(sock_path, "show errors")
    data = errors_data(errors)
    assert "Authorization" in data  # the invalid request was captured
    assert basic("admin", ADMIN_PW) not in data
