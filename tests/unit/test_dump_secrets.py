"""`gproxy check --dump` never writes a secret: stats passwords, SNMP
communities and keys come out hidden, everything else unchanged."""

from __future__ import annotations

import json

from gproxy.config.dump import HIDDEN, dump
from gproxy.config.loader import load_string

SECRETS = ("Stats-S3cret-pw", "Other:pw-with-colon", "Comm-S3cret", "Auth-S3cret-key", "Priv-S3cret-key")

CONFIG = """
[snmp]
traps = [{target = "udp://127.0.0.1:16200", version = "v2c", community = "Comm-S3cret"},
         {target = "udp://127.0.0.1:16200", version = "v3", user = "nms", auth_protocol = "SHA", auth_key = "Auth-S3cret-key", priv_protocol = "AES", priv_key = "Priv-S3cret-key"}]
[defaults]
mode = "http"
[listen.app]
bind = ["127.0.0.1:18191"]
stats = {uri = "/st", auth = ["admin:Stats-S3cret-pw", "ops:Other:pw-with-colon"], admin = true}
[[listen.app.server]]
name = "b1"
address = "127.0.0.1:18192"
"""


def test_no_secret_is_dumped_and_users_stay_visible() -> None:
    text = dump(load_string(CONFIG))
    for secret in SECRETS:
        assert secret not in text
    data = json.loads(text)
    assert data["frontends"]["app"]["stats"]["auth"] == [f"admin:{HIDDEN}", f"ops:{HIDDEN}"]
    v2c, v3 = data["snmp"]["traps"]
    assert v2c["community"] == HIDDEN
    assert (v3["user"], v3["auth_key"], v3["priv_key"]) == ("nms", HIDDEN, HIDDEN)
    assert v3["auth_protocol"] == "SHA" and v3["priv_protocol"] == "AES"


def test_unset_secrets_stay_null() -> None:
    data = json.loads(dump(load_string(CONFIG.replace(', auth = ["admin:Stats-S3cret-pw", "ops:Other:pw-with-colon"], admin = true', ""))))
    assert data["frontends"]["app"]["stats"].get("auth") in (None, [])
    v2c = data["snmp"]["traps"][0]
    assert v2c["auth_key"] is None and v2c["priv_key"] is None
