"""Least privilege, gproxy's side (issue 9): the stats socket gets its
configured mode and owner, the serving process runs as the configured user,
the stats page's admin actions need credentials, and no secret (the stats
password, its Basic token) appears in the logs, `show info`, `show stat`
or stderr of a real run that used it.

The user switch with chroot and reloads is tested in test_daemon.py; this
file runs the foreground path (`gproxy run --foreground`, as the OCF agent
and the systemd unit do).
"""

from __future__ import annotations

import base64
import os
import stat
import time
from pathlib import Path

import pytest

from gproxy.runtime_api.client import send
from harness import free_port, http_get, http_request

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners and users needs root")

NOBODY = 65534
NOGROUP = 65534
URI = "/gproxy?stats"
PASSWORD = "Pw-never-logged-7q"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
WRONG = {"Authorization": "Basic " + base64.b64encode(b"admin:Wrong-pw-also-secret").decode()}
WAIT = 10.0


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def proc_uids(pid: int) -> list[str]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return line.split()[1:]
    raise AssertionError("no Uid line")


def serving_pids(root: int) -> list[int]:
    """The root process and its descendants."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            todo += [int(c) for c in children]
    return pids


def test_user_socket_owner_admin_auth_and_no_secret(start_backend, start_gproxy, tmp_path, syslog):
    backend = start_backend("a")
    port = free_port()
    socket_path = tmp_path / "admin.sock"
    tmp_path.chmod(0o755)  # nobody must reach its files
    config = {
        "global": {"user": "nobody", "group": NOGROUP,
                   "stats_socket": {"path": str(socket_path), "mode": 0o640, "level": "admin",
                                    "user": "nobody", "group": NOGROUP},
                   "log": [{"target": syslog.target}]},
        "defaults": {"mode": "http", "log": "global", "httplog": True,
                     "timeout": {"connect": "1s", "client": "5s", "server": "5s"}},
        "listen": {"app": {
            "bind": [f"127.0.0.1:{port}"],
            "stats": {"uri": URI, "auth": [f"admin:{PASSWORD}"], "admin": True},
            "server": [{"name": "a", "address": backend.address}],
        }},
    }
    proxy = start_gproxy(config, [port])
    wait_for(socket_path.exists, "the stats socket")

    info = os.stat(socket_path)
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert (info.st_uid, info.st_gid) == (NOBODY, NOGROUP)

    assert http_get(port, "/")[0] == 200
    # Whatever process serves (the one process, or its workers), runs as nobody after start-up.
    serving = [pid for pid in serving_pids(proxy.proc.pid) if proc_uids(pid)[0] == str(NOBODY)]
    assert serving, [(pid, proc_uids(pid)) for pid in serving_pids(proxy.proc.pid)]
    for pid in serving:
        assert proc_uids(pid) == [str(NOBODY)] * 4  # real, effective, saved, filesystem: no way back

    # Admin actions: without credentials, or with wrong ones, 401 and nothing changes.
    form = b"b=app&s=a&action=maint"
    for headers in ({}, WRONG):
        status = http_request(port, "POST", URI, headers={
            **headers, "Content-Type": "application/x-www-form-urlencoded"}, body=form)[0]
        assert status == 401

    def server_status() -> str:
        lines = send(str(socket_path), "show stat").decode().splitlines()
        names = lines[0][2:].split(",")
        rows = [dict(zip(names, line.split(","))) for line in lines[1:] if line]
        return next(r["status"] for r in rows if r["pxname"] == "app" and r["svname"] == "a")

    assert server_status() in ("UP", "no check")
    assert http_get(port, URI, headers=AUTH)[0] == 200
    status = http_request(port, "POST", URI, headers={
        **AUTH, "Content-Type": "application/x-www-form-urlencoded"}, body=form)[0]
    assert status == 303 and server_status() == "MAINT"

    outputs = [send(str(socket_path), cmd).decode(errors="replace")
               for cmd in ("show info", "show stat", "show stat typed", "show sess", "show errors")]
    logs = syslog.collect(timeout=0.5)
    proxy.stop()
    outputs += logs + [proxy.stderr()]
    assert any(URI.split("?")[0] in line for line in logs)  # the stats requests were logged
    for secret in (PASSWORD, "Wrong-pw-also-secret", AUTH["Authorization"].split()[1],
                   WRONG["Authorization"].split()[1]):
        for text in outputs:
            assert secret not in text
