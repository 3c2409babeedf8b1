"""docs/configuration.md is generated from the schema: the committed file must
be exactly what `render_markdown()` gives, and name every key."""

from __future__ import annotations

from pathlib import Path

from gproxy.config.docs import render_markdown
from gproxy.config.loader import load_string
from gproxy.config.schema import ALL_SECTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_committed_docs_are_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/configuration.md is stale: run `python -m gproxy.config.docs > docs/configuration.md`")


def test_every_key_is_documented() -> None:
    text = render_markdown()
    for section in ALL_SECTIONS:
        assert f'<a id="{section.anchor}"></a>' in text
        for setting in section.settings:
            assert f"| `{setting.key}` |" in text, f"{section.anchor}.{setting.key}"
            if setting.haproxy:
                assert f"`{setting.haproxy.replace('|', chr(92) + '|')}`" in text


def test_table_rows_have_as_many_cells_as_their_header() -> None:
    rows = [line for line in render_markdown().splitlines() if line.startswith("| ")]
    header_cells = 0
    for row in rows:
        cells = row.replace("\\|", "").count("|") - 1
        if row.startswith("| Key |") or row.startswith("| Section |"):
            header_cells = cells
        assert cells == header_cells, row


def test_the_example_in_the_docs_loads() -> None:
    text = render_markdown()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    config = load_string(example)
    assert config.backends["esup-proxy"].servers[0].weight == 256
