"""checks.rates (pure) and checks.statefile (the file under /var/tmp)."""

from __future__ import annotations

import json
import os

import pytest

from checks import haproxy_csv, rates, statefile
from checks.rates import Sample

CSV = ("# pxname,svname,type,req_tot,stot,econ,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,\n"
       "web,s1,2,10,10,0,0,10,0,0,0,0,\n"
       "web,BACKEND,1,{req},{req},{econ},0,{ok},0,{c4},{c5},0,\n"
       "db,BACKEND,1,,{sess},0,,,,,,,\n")


def sample(at: float, req: int, ok: int, c4: int, c5: int, econ: int, sess: int) -> Sample:
    stats = haproxy_csv.parse_stat_csv(CSV.format(req=req, ok=ok, c4=c4, c5=c5, econ=econ, sess=sess))
    return rates.take_sample(stats, ["web", "db"], at)


def test_sample_skips_empty_counters_and_round_trips():
    first = sample(100.0, 1000, 900, 50, 50, 3, 40)
    assert dict(first.counters["web"]) == {"req_tot": 1000, "stot": 1000, "econ": 3, "hrsp_1xx": 0, "hrsp_2xx": 900,
                                           "hrsp_3xx": 0, "hrsp_4xx": 50, "hrsp_5xx": 50, "hrsp_other": 0}
    assert dict(first.counters["db"]) == {"stot": 40, "econ": 0}
    again = Sample.from_json(json.loads(json.dumps(first.to_json())))
    assert again == first


@pytest.mark.parametrize("doc", [None, [], {"format": 0}, {"format": 1, "at": "x", "backends": {}},
                                 {"format": 1, "at": 1.0, "backends": {"web": {"req_tot": "7"}}},
                                 {"format": 1, "at": 1.0, "backends": {"web": {"req_tot": True}}}])
def test_damaged_documents_are_ignored(doc):
    assert Sample.from_json(doc) is None


def test_rates_between_two_samples():
    before = sample(100.0, 1000, 900, 50, 50, 3, 40)
    after = sample(160.0, 1600, 1400, 60, 140, 9, 100)
    outcome = rates.compare(before, after)
    assert outcome.seconds == 60 and outcome.fresh == () and outcome.reset == ()
    web, db = outcome.rates
    assert (web.name, web.unit, web.requests_per_s) == ("web", "req", 10.0)
    assert web.responses == 600 and web.pct_5xx == pytest.approx(15.0) and web.errors_5xx_per_s == 1.5
    assert web.conn_errors_per_s == 0.1
    assert (db.name, db.unit, db.requests_per_s, db.pct_5xx, db.responses) == ("db", "sess", 1.0, 0.0, 0)


def test_first_run_same_instant_reset_and_new_backend():
    now = sample(100.0, 10, 10, 0, 0, 0, 1)
    assert rates.compare(None, now).seconds is None and rates.compare(None, now).fresh == ("web", "db")
    assert rates.compare(now, now).seconds is None  # no time passed: no rate rather than a division by zero
    restarted = sample(200.0, 5, 5, 0, 0, 0, 2)
    outcome = rates.compare(now, restarted)
    assert outcome.reset == ("web",) and [r.name for r in outcome.rates] == ["db"]
    only_web = Sample(50.0, {"web": now.counters["web"]})
    assert rates.compare(only_web, now).fresh == ("db",)


def test_state_file_exchange(tmp_path):
    path = str(tmp_path / "state.json")
    assert statefile.exchange(path, {"n": 1}) is None
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert statefile.exchange(path, {"n": 2}) == {"n": 1}
    assert statefile.exchange(path, {"n": 3}) == {"n": 2}
    (tmp_path / "state.json").write_text("{broken")
    assert statefile.exchange(path, {"n": 4}) is None
    assert json.loads((tmp_path / "state.json").read_text()) == {"n": 4}


def test_state_file_refuses_symlinks_directories_and_strangers(tmp_path):
    (tmp_path / "target").write_text("keep")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(statefile.StateFileError, match="link: "):
        statefile.exchange(str(tmp_path / "link"), {})
    assert (tmp_path / "target").read_text() == "keep"
    (tmp_path / "dir").mkdir()
    with pytest.raises(statefile.StateFileError, match="dir: "):
        statefile.exchange(str(tmp_path / "dir"), {})
    with pytest.raises(statefile.StateFileError, match="No such file or directory"):
        statefile.exchange(str(tmp_path / "missing" / "state.json"), {})
    if os.geteuid() == 0:
        stranger = tmp_path / "stranger.json"
        stranger.write_text("{}")
        os.chown(stranger, 65534, 65534)
        with pytest.raises(statefile.StateFileError, match="owned by uid 65534"):
            statefile.exchange(str(stranger), {})


def test_default_path():
    path = statefile.default_path("socket:/run/gproxy/admin.sock|b=|x=", 0)
    assert path.startswith("/var/tmp/check_gproxy-0-") and path.endswith(".json") and len(path) == len(
        "/var/tmp/check_gproxy-0-") + 16 + 5
    assert path != statefile.default_path("socket:/run/gproxy/admin.sock|b=|x=", 1000)
