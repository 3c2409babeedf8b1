"""The `stats` and `prometheus` tables of a frontend, as frozen values.

The loader has already validated each key against the schema
(`gproxy.config.schema.STATS_PAGE` / `PROMETHEUS`); the frontend config
keeps the table as written, so the schema's defaults are folded in here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from gproxy.config.schema import PROMETHEUS, STATS_PAGE


@dataclass(frozen=True)
class StatsSettings:
    uri: str = STATS_PAGE["uri"].default
    auth: tuple[str, ...] = ()  # "user:password" strings; empty: no authentication
    realm: str = STATS_PAGE["realm"].default
    refresh_ms: int | None = None  # None: the page never reloads by itself
    admin: bool = False
    hide_version: bool = False

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> "StatsSettings":
        values = {**STATS_PAGE.defaults(), **table}
        return cls(uri=values["uri"], auth=tuple(values["auth"]), realm=values["realm"],
                   refresh_ms=values["refresh"], admin=bool(values["admin"]),
                   hide_version=bool(values["hide_version"]))


@dataclass(frozen=True)
class PrometheusSettings:
    uri: str = PROMETHEUS["uri"].default

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> "PrometheusSettings":
        return cls(uri={**PROMETHEUS.defaults(), **table}["uri"])
