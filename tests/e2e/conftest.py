"""Fixtures that start real processes on loopback and always stop them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BackendProcess, GproxyProcess, UdpLogReceiver, free_port  # noqa: E402


@pytest.fixture
def start_backend():
    started: list[BackendProcess] = []

    def start(name: str, port: int | None = None) -> BackendProcess:
        backend = BackendProcess(name, port).start()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def start_gproxy(tmp_path):
    started: list[GproxyProcess] = []

    def start(config, wait_ports=()) -> GproxyProcess:
        workdir = tmp_path / f"gproxy{len(started)}"
        workdir.mkdir()
        proc = GproxyProcess(config, workdir).start(list(wait_ports))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def syslog():
    receiver = UdpLogReceiver()
    yield receiver
    receiver.close()


def http_config(servers: list[dict], *, port: int, log_target: str | None = None, mode: str = "http",
                **listen) -> dict:
    """A one-listen gproxy config with short timers, as a dict for tomli_w."""
    config: dict = {
        "global": {"maxconn": 1000},
        "defaults": {"mode": mode, "timeout": {"connect": "1s", "client": "5s", "server": "5s"},
                     "retries": 3, "redispatch": True},
        "listen": {"app": {"bind": [f"127.0.0.1:{port}"], **listen, "server": servers}},
    }
    if log_target:
        config["global"]["log"] = [{"target": log_target, "facility": "local0"}]
        config["defaults"]["log"] = "global"
        config["defaults"]["httplog" if mode == "http" else "tcplog"] = True
    return config


@pytest.fixture
def port():
    return free_port()
