"""bench/run.py --workers: gproxy's `workers` and HAProxy's `nbthread` move
together (like for like), and the table's lines say which was measured."""

from __future__ import annotations

import sys
import tomllib
from argparse import Namespace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # bench/ is not a package
import configs  # noqa: E402
import run  # noqa: E402

from gproxy.config.loader import load_string  # noqa: E402

LAYOUT = configs.Layout(origins=(8001, 8002), ports={"spec_keepalive": 9001, "spec_close": 9002, "tcp": 9003},
                        log_port=5514, maxconn=9900)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_the_gproxy_configuration_runs_the_workers_asked(workers):
    text = configs.gproxy_toml(LAYOUT, workers)
    assert tomllib.loads(text)["global"]["workers"] == workers
    assert load_string(text).global_.workers == workers  # gproxy itself accepts it


def test_one_worker_by_default():
    assert tomllib.loads(configs.gproxy_toml(LAYOUT))["global"]["workers"] == 1


def test_workers_sets_haproxys_threads_too():
    options = run._parse_args(["--workers", "2"])
    assert (options.workers, options.haproxy_threads) == (2, 2)
    assert run._parallelism(options) == "gproxy 2 workers against HAProxy nbthread 2"


def test_haproxy_threads_given_explicitly_wins():
    options = run._parse_args(["--workers", "2", "--haproxy-threads", "1"])
    assert (options.workers, options.haproxy_threads) == (2, 1)


def test_defaults_compare_one_worker_with_one_thread():
    options = run._parse_args([])
    assert (options.workers, options.haproxy_threads) == (1, 1)
    assert run._parallelism(options) == "gproxy 1 worker against HAProxy nbthread 1"


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--haproxy-threads", "0"]])
def test_no_workers_is_refused(argv):
    with pytest.raises(SystemExit):
        run._parse_args(argv)


def test_the_proxies_get_the_configuration_of_the_options(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "check_config", lambda argv: None)
    monkeypatch.setattr(run.shutil, "which", lambda name: "/usr/sbin/haproxy")
    fake = tmp_path / "gproxy"
    fake.write_text("")
    options = Namespace(workers=3, haproxy_threads=3, haproxy_splice=False, gproxy=str(fake))
    gproxy, haproxy = (next(p for p in run.PROXIES if p.key == key) for key in (run.GPROXY, run.HAPROXY))
    gproxy.prepare(tmp_path, LAYOUT, options)
    haproxy.prepare(tmp_path, LAYOUT, options)
    assert "workers = 3" in (tmp_path / "gproxy.toml").read_text()
    assert "nbthread 3" in (tmp_path / "haproxy.cfg").read_text()
