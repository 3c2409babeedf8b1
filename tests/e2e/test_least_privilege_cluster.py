"""Least privilege, heartbeat's side (issue 9): a keys file others can read
is refused at start-up, and the shared secret never shows in a node's log,
its status document or `heartbeat status` output (text and JSON) after a
real run with a failover.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO
from netns import can_use_netns
from test_cluster import VENV_BIN, cluster, wait_served  # noqa: F401 (cluster: the fixture)

OK, WHY = can_use_netns()
pytestmark = pytest.mark.skipif(not OK, reason=WHY)

SECRET = "e2e-cluster-secret"  # the key Cluster writes in its authkey file


def test_a_keys_file_others_can_read_is_refused(cluster):
    authkey = cluster.tmp / "authkey"
    for mode in (0o644, 0o640, 0o604):
        authkey.chmod(mode)
        result = cluster.lab.run(0, [sys.executable, "-m", "heartbeat", "run", str(cluster.path),
                                     "--node", cluster.names[0]], cwd=REPO, timeout=30)
        assert result.returncode == 1, result.stderr
        assert f"mode {mode:04o} lets group or others at the keys" in result.stderr
        assert str(authkey) in result.stderr
        assert SECRET not in result.stdout + result.stderr


def test_the_secret_never_shows_in_logs_or_status(cluster):
    cluster.start(0)
    cluster.start(1)
    cluster.wait_placed(1, "esup-proxy-1")
    cluster.procs[0].terminate()  # a failover: more log lines, last_failover in the status
    cluster.procs[0].wait(30)
    cluster.wait_placed(1, "esup-proxy-2")
    wait_served(cluster.vip)
    outputs = [json.dumps(cluster.status(1))]
    for extra in ([], ["--json"]):
        result = subprocess.run([str(VENV_BIN / "python"), "-m", "heartbeat", "status", "-s", cluster.socket(1),
                                 *extra], capture_output=True, text=True, cwd=REPO, timeout=30)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    cluster.stop()
    outputs.append(cluster.logs())
    outputs += [p.read_text(errors="replace") for p in Path(cluster.tmp).glob("*.log")]
    assert "esup-proxy-2" in outputs[0]
    for text in outputs:
        assert SECRET not in text
