"""The policy engine's golden corpus (Pacemaker's cts/scheduler): each
tests/policy/cases/NAME.toml is one input, NAME.summary what the engine must
answer. After a deliberate change, rewrite the expected files with

    python -m heartbeat.policy.simulate --regenerate tests/policy/cases

and review their diff like code."""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from heartbeat.config.loader import load_file
from heartbeat.policy import schedule
from heartbeat.policy.casefile import CaseError, load_case
from heartbeat.policy.simulate import apply, main, run

CASES_DIR = Path(__file__).resolve().parents[1] / "policy" / "cases"
CASES = sorted(p for p in CASES_DIR.glob("*.toml") if not p.name.startswith("_"))
SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "esup-cluster.toml"
REGENERATE = "python -m heartbeat.policy.simulate --regenerate tests/policy/cases"


def test_the_corpus_is_complete():
    assert len(CASES) >= 30
    for path in CASES:
        assert path.with_suffix(".summary").exists(), f"{path.name} has no expected summary: run {REGENERATE}"
        assert tomllib.loads(path.read_text())["case"]["description"], path.name


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case_matches_its_summary(path: Path):
    expected = path.with_suffix(".summary").read_text(encoding="utf-8")
    assert run(load_case(path)) == expected, f"{path.name} changed: review, then run {REGENERATE}"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_case_converges(path: Path):
    """Once the transition's actions are done, there is nothing left to do."""
    case = load_case(path)
    transition = schedule(case.cib, case.status, case.now)
    again = schedule(case.cib, apply(case.status, transition), case.now)
    assert again.actions == ()
    assert again.placement == transition.placement


def test_base_is_the_spec_cluster():
    """_esup-cluster.toml is a copy of the contract file; it must not drift."""
    if not SPEC.exists():
        pytest.skip("shared/spec is not next to the repository")
    copy = load_file(str(CASES_DIR / "_esup-cluster.toml"))
    assert replace(copy, source=None) == replace(load_file(str(SPEC)), source=None)


def test_regenerate_writes_then_check_passes(tmp_path: Path, capsys):
    for name in ("_esup-cluster.toml", "esup-cold-start.toml", "esup-move.toml"):
        (tmp_path / name).write_text((CASES_DIR / name).read_text())
    assert main(["--check", str(tmp_path)]) == 1  # no summaries yet
    assert main(["--regenerate", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.summary")) == ["esup-cold-start.summary", "esup-move.summary"]
    assert (tmp_path / "esup-move.summary").read_text() == (CASES_DIR / "esup-move.summary").read_text()
    assert main(["--check", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main([str(tmp_path / "esup-cold-start.toml")]) == 0
    assert "Start      vip   ( esup-proxy-1 )" in capsys.readouterr().out


@pytest.mark.parametrize("text, message", [
    ("[case]\nbase = \"_two-nodes.toml\"\n[status]\nonlin = []\n", "unknown key(s): onlin"),
    ("[case]\nbase = \"_two-nodes.toml\"\ndescripton = \"x\"\n", "unknown key(s): descripton"),
    ("[case]\nbase = \"_two-nodes.toml\"\n[stauts]\n", "unknown table(s): stauts"),
    ("[case]\nbase = \"_two-nodes.toml\"\n[meta.nothing]\ntarget_role = \"stopped\"\n", "no resource 'nothing'"),
    ("[case]\n[[node]]\nname = \"n1\"\n", "node"),  # the config loader's own checks apply
    ("[case\n", "line 1"),
])
def test_bad_case_files_are_one_line_errors(tmp_path: Path, capsys, text: str, message: str):
    (tmp_path / "_two-nodes.toml").write_text((CASES_DIR / "_two-nodes.toml").read_text())
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(CaseError, match="bad.toml"):
        load_case(bad)
    assert main([str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("simulate: ") and message in err and "Traceback" not in err


def test_missing_file_and_directory_are_user_errors(tmp_path: Path, capsys):
    assert main([str(tmp_path / "none.toml")]) == 1
    assert main(["--regenerate", str(tmp_path / "nodir")]) == 1
    assert "not a directory" in capsys.readouterr().err
