"""docs/heartbeat-configuration.md is generated from the schema: the
committed file must be exactly what `render_markdown()` gives, name every
key, and its examples must be true."""

from __future__ import annotations

from pathlib import Path

import pytest

from heartbeat.config.docs import render_markdown
from heartbeat.config.loader import load_file, load_string
from heartbeat.config.schema import ALL_SECTIONS
from heartbeat.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "heartbeat-configuration.md"
SPEC = ROOT.parent / "shared" / "spec" / "esup-cluster.toml"
CONFIGS = Path(__file__).resolve().parent / "heartbeat_configs"


def test_committed_docs_are_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/heartbeat-configuration.md is stale: "
        "run `python -m heartbeat.config.docs > docs/heartbeat-configuration.md`")


def test_every_key_is_documented() -> None:
    text = render_markdown()
    for section in ALL_SECTIONS:
        assert f'<a id="{section.anchor}"></a>' in text
        for setting in section.settings:
            assert f"| `{setting.key}` |" in text, f"{section.anchor}.{setting.key}"
            for name in (setting.hacf, setting.pacemaker):
                if name is not None:
                    assert f"`{name}`" in text, f"{section.anchor}.{setting.key}: {name}"


def test_table_rows_have_as_many_cells_as_their_header() -> None:
    header_cells = 0
    for row in render_markdown().splitlines():
        if not row.startswith("| "):
            continue
        cells = row.replace("\\|", "").count("|") - 1
        if row.startswith("| Key |") or row.startswith("| Table |"):
            header_cells = cells
        assert cells == header_cells, row


def test_the_example_is_the_seed_cluster() -> None:
    example = render_markdown().split("```toml\n", 1)[1].split("```", 1)[0]
    config = load_string(example, source="example")
    assert config.constraints[0].id == "location-esup-esup-proxy-1"
    if SPEC.exists():
        assert config == load_string(SPEC.read_text(), source="example")


def test_the_error_example_is_what_check_prints() -> None:
    documented = render_markdown().split("## Errors", 1)[1].split("```\n", 2)[1].strip().splitlines()
    with pytest.raises(ConfigError) as info:
        load_file(str(CONFIGS / "several_mistakes.toml"))
    assert documented == info.value.lines()
