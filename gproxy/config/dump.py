"""`gproxy check --dump FILE`: the configuration as gproxy understood it.

A loaded `Config` is written as JSON with every default applied: a value
HAProxy derives from another one (`timeout.http_request` from `client`,
`fastinter` from `inter`...) is shown resolved, durations are integers in
milliseconds, addresses "host:port" strings, and keys come in the model's
order. Two files that mean the same thing (a TOML and the conversion of an
haproxy.cfg, say) dump to the same text, which is what administrators and
the conversion tests compare. Pure: no I/O.

Secrets are never written (a dump is pasted into tickets and mails): a
dataclass field declared `repr=False` (SNMP communities and keys in
gsuite.snmp_config) and the keys in `SECRET_KEYS` are shown as `HIDDEN`, and
the password of each stats page `auth` item as `user:HIDDEN`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from typing import Any

from gproxy.config.model import Address, Config

# Fields left out: where the file came from says nothing about what it means,
# and a frontend's `binds` is shown as its `bind` (each address with its options).
_SKIPPED_FIELDS = frozenset({"source", "binds"})
# Model names that only avoid a Python keyword.
_RENAMED = {"global_": "global"}
# A field that is None while an `eff_<name>` property resolves it.
_EFFECTIVE_PREFIX = "eff_"
HIDDEN = "<hidden>"
# Keys of plain tables (the stats page's) whose values are secrets.
SECRET_KEYS = frozenset({"community", "auth_key", "priv_key", "password"})
CREDENTIAL_KEYS = frozenset({"auth"})  # arrays of "user:password"


def _hide_password(item: Any) -> Any:
    if isinstance(item, str) and ":" in item:
        return item.partition(":")[0] + ":" + HIDDEN
    return HIDDEN


def to_plain(value: Any) -> Any:
    """A JSON-ready copy of a config value (dataclasses become objects)."""
    if isinstance(value, Address):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            if field.name in _SKIPPED_FIELDS:
                continue
            item = getattr(value, field.name)
            if item is None and hasattr(type(value), _EFFECTIVE_PREFIX + field.name):
                item = getattr(value, _EFFECTIVE_PREFIX + field.name)
            if field.name == "bind" and hasattr(value, "listeners"):
                item = value.listeners
            if not field.repr and item is not None:
                item = HIDDEN  # declared a secret
            out[_RENAMED.get(field.name, field.name)] = to_plain(item)
        return out
    if isinstance(value, dict):
        return {str(key): _plain_entry(str(key), item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [to_plain(item) for item in value]
        return sorted(items, key=json.dumps) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _plain_entry(key: str, item: Any) -> Any:
    if item is None:
        return None
    if key in SECRET_KEYS:
        return HIDDEN
    if key in CREDENTIAL_KEYS and isinstance(item, (list, tuple)):
        return [_hide_password(entry) for entry in item]
    return to_plain(item)


def dump(config: Config) -> str:
    """The JSON text `gproxy check --dump` prints (ends with a newline)."""
    return json.dumps(to_plain(config), indent=2) + "\n"
