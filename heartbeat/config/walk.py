"""Checking raw TOML data against the cluster schema, one key at a time.

The suite's walker (gsuite.config_walk) does the tables: valid keys parsed,
every problem recorded with its key path (`resource[1].monitor.interval`),
so `heartbeat check` lists them all in one run. This one adds heartbeat's
composites (arrays of tables, `[[constraint]]` tagged by kind, lists of
values, free-key tables) and its hints for an unknown key (the section it
belongs in, ha.cf's name for it). Arrays keep invalid items as None, so the
indexes of the valid ones still match the file. The loader builds the model
from what this returns and adds the checks that span several tables.
Nothing here does I/O.
"""

from __future__ import annotations

import re
from typing import Any

from gsuite import config_walk
from gsuite.config_types import did_you_mean, kind_of, show
from gsuite.config_walk import INVALID, join
from heartbeat.config.schema import Section
from heartbeat.config.types import ListOf, MappingOf, Table, TableList, TaggedTableList, plural

__all__ = ["INVALID", "Walker"]


class Walker(config_walk.Walker):
    """Accumulates (key path, reason) problems over one validation run."""

    choice_hints = True

    # Narrower than the base's Protocol: heartbeat's sections, whose settings have `hacf`.
    def unknown_key(self, path: str, key: str, section: Section,  # type: ignore[override]
                    siblings: tuple[Section, ...]) -> None:
        owners = [s.noun for s in siblings if s is not section and s.get(key) is not None]
        renamed = [s.key for s in section.settings if s.hacf == key]
        if owners:
            self.problem(path, f"not a key of {section.noun} (it belongs in {' or '.join(owners)})")
        elif renamed:
            self.problem(path, f'unknown key (ha.cf\'s "{key}" is "{renamed[0]}" here)')
        else:
            super().unknown_key(path, key, section, siblings)

    def value(self, raw: object, typ: Any, path: str) -> Any:
        if isinstance(typ, Table):
            return self.nested(raw, typ.section, path)
        if isinstance(typ, TableList):
            return self.table_list(raw, typ, path)
        if isinstance(typ, TaggedTableList):
            return self.tagged_table_list(raw, typ, path)
        if isinstance(typ, ListOf):
            return self.list_of(raw, typ, path)
        if isinstance(typ, MappingOf):
            return self.mapping(raw, typ, path)
        return self.scalar(raw, typ, path)

    def _array(self, raw: object, path: str, name: str) -> list[Any] | None:
        if isinstance(raw, (list, tuple)):
            return list(raw)
        if isinstance(raw, dict):
            self.problem(path, f"expected an array of tables: write [[{name}]] for each one, not [{name}]")
        else:
            self.problem(path, f"expected an array of tables ([[{name}]]), got {kind_of(raw)}")
        return None

    def table_list(self, raw: object, typ: TableList, path: str) -> Any:
        items = self._array(raw, path, path.rsplit(".", 1)[-1])
        if items is None:
            return INVALID
        return [self.table(item, typ.section, f"{path}[{i}]") for i, item in enumerate(items)]

    def tagged_table_list(self, raw: object, typ: TaggedTableList, path: str) -> Any:
        items = self._array(raw, path, path.rsplit(".", 1)[-1])
        if items is None:
            return INVALID
        sections = tuple(section for _, section in typ.sections)
        choices = ", ".join(f'"{v}"' for v in typ.tag_values())
        result: list[tuple[str, dict[str, Any]] | None] = []
        for i, item in enumerate(items):
            item_path = f"{path}[{i}]"
            if not isinstance(item, dict):
                self.problem(item_path, f"expected a table, got {kind_of(item)}")
                result.append(None)
                continue
            tag = item.get(typ.tag)
            section = typ.section_for(tag) if isinstance(tag, str) else None
            if section is None:
                if typ.tag not in item:
                    self.problem(f"{item_path}.{typ.tag}", f"missing: say which kind ({choices})")
                else:
                    hint = did_you_mean(tag, typ.tag_values()) if isinstance(tag, str) else ""
                    self.problem(f"{item_path}.{typ.tag}", f"expected one of {choices}, got {kind_of(tag)}{hint}")
                result.append(None)
                continue
            values = self.table(item, section, item_path, siblings=sections)
            result.append(None if values is None else (str(tag), values))
        return result

    def list_of(self, raw: object, typ: ListOf, path: str) -> Any:
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)):
            self.problem(path, f"expected an array of {plural(typ.what)}, got {kind_of(raw)}")
            return INVALID
        if len(items) < typ.min_items:
            wanted = f"one {typ.what}" if typ.min_items == 1 else f"{typ.min_items} {plural(typ.what)}"
            self.problem(path, f"expected at least {wanted}, got {len(items)}")
            return INVALID
        values: list[Any] = []
        seen: dict[Any, int] = {}
        for i, item in enumerate(items):
            parsed = self.scalar(item, typ.item, f"{path}[{i}]")
            if parsed is INVALID:
                values.append(None)
                continue
            if parsed in seen:
                self.problem(f"{path}[{i}]", f"{show(item)} is listed twice (also {path}[{seen[parsed]}])")
                values.append(None)
                continue
            seen[parsed] = i
            values.append(parsed)
        return values

    def mapping(self, raw: object, typ: MappingOf, path: str) -> Any:
        if not isinstance(raw, dict):
            self.problem(path, f"expected a table such as {{ name = \"value\" }}, got {kind_of(raw)}")
            return INVALID
        pairs: list[tuple[str, Any]] = []
        for key, value in raw.items():
            key_path = join(path, key)
            if not re.fullmatch(typ.key_pattern, key):
                self.problem(key_path, f"{show(key)} is not a valid name{typ.key_hint}")
                continue
            parsed = self.scalar(value, typ.value, key_path)
            if parsed is not INVALID:
                pairs.append((key, parsed))
        return tuple(pairs)

