"""The cluster's shared keys: parsing and loading the `auth_key_file`.

The format follows Heartbeat's `/etc/ha.d/authkeys`, restricted to one
method, HMAC-SHA256::

    # /etc/heartbeat/authkey: identical on every node, mode 0600
    auth 2                # the key id that signs outgoing packets
    1 sha256 OldSecret    # still accepted on receive...
    2 sha256 NewSecret    # ...so keys rotate without a flag day

* `N sha256 SECRET` declares key N (0..15, as Heartbeat's MAXAUTH); the
  secret is one token of printable characters, used as UTF-8 bytes.
  Heartbeat's other methods (`sha1`, `md5`, `crc`) are refused: every packet
  is signed with HMAC-SHA256.
* `auth N` (at most once) names the signing key; without it, the first key
  of the file signs. Every key listed is accepted on receive.
* `#` at the start of a line or after a blank starts a comment (a `#` inside
  a secret is part of it); blank lines are ignored.
* Like Heartbeat, the file must not be readable or writable by group or
  others (mode 0600 or stricter).

Rotation: add the new key to every node's file (`auth` unchanged), restart
them one by one, then switch `auth` to the new id everywhere, then remove the
old key.

>>> keys = parse_authkeys("auth 2\\n1 sha256 old\\n2 sha256 new  # current\\n")
>>> keys.sign_id, sorted(keys.keys), keys.sign_key
(2, [1, 2], b'new')
>>> parse_authkeys("1 sha256 only").sign_id
1
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from heartbeat.errors import ConfigError

MAX_KEYS = 16  # Heartbeat's MAXAUTH: key ids 0..15
METHOD = "sha256"
# Permission bits that must be clear: anything for group or others.
_GROUP_OTHER_BITS = 0o077


@dataclass(frozen=True)
class AuthKeys:
    """Sign with `keys[sign_id]`; accept every key of `keys`."""

    sign_id: int
    keys: dict[int, bytes] = field(repr=False)  # secrets stay out of logs and tracebacks

    def __post_init__(self) -> None:
        if self.sign_id not in self.keys:
            raise ValueError(f"signing key {self.sign_id} is not among the keys")

    @property
    def sign_key(self) -> bytes:
        return self.keys[self.sign_id]


def _strip_comment(line: str) -> str:
    for i, char in enumerate(line):
        if char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def _key_id(token: str) -> int | None:
    return int(token) if token.isascii() and token.isdigit() and int(token) < MAX_KEYS else None


def parse_authkeys(text: str, source: str = "authkeys") -> AuthKeys:
    """Parse the file's text; ConfigError lists every bad line as
    (`source:LINE`, reason)."""
    problems: list[tuple[str, str]] = []
    keys: dict[int, bytes] = {}
    sign_id: int | None = None
    auth_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        tokens = _strip_comment(raw).split()
        if not tokens:
            continue
        if tokens[0] == "auth":
            if len(tokens) != 2 or _key_id(tokens[1]) is None:
                problems.append((where, f"expected 'auth N' with N in 0..{MAX_KEYS - 1}"))
            elif sign_id is not None:
                problems.append((where, f"a second 'auth' line (the first is line {auth_line})"))
            else:
                sign_id, auth_line = _key_id(tokens[1]), number
            continue
        key_id = _key_id(tokens[0])
        if key_id is None:
            problems.append((where, f"expected 'auth N' or 'N sha256 SECRET' with N in 0..{MAX_KEYS - 1}, "
                                    f"got {tokens[0]!r}"))
        elif len(tokens) < 2 or tokens[1].lower() != METHOD:
            method = tokens[1] if len(tokens) > 1 else "none"
            problems.append((where, f"key {key_id}: method {method!r} is not supported, "
                                    f"only HMAC-SHA256 ('{key_id} sha256 SECRET')"))
        elif len(tokens) != 3:
            problems.append((where, f"key {key_id}: expected one secret with no blanks "
                                    f"after 'sha256', got {len(tokens) - 2} words"))
        elif key_id in keys:
            problems.append((where, f"key {key_id} is declared twice"))
        else:
            keys[key_id] = tokens[2].encode("utf-8")
    if not keys and not problems:
        problems.append((source, "no key: add a line 'N sha256 SECRET'"))
    if sign_id is not None and keys and sign_id not in keys:
        problems.append((f"{source}:{auth_line}", f"'auth {sign_id}' names a key that is not declared "
                                                  f"(declared: {', '.join(map(str, sorted(keys)))})"))
    if problems:
        raise ConfigError(problems)
    return AuthKeys(next(iter(keys)) if sign_id is None else sign_id, keys)


def load_authkeys(path: str) -> AuthKeys:
    """Read and parse the key file; ConfigError with one-line reasons if it is
    missing, unreadable, too open (group/other bits), or invalid."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ConfigError([(path, "no such file: the cluster's keys file is required")]) from None
    except OSError as exc:
        raise ConfigError([(path, f"cannot read: {exc.strerror}")]) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError([(path, "not a regular file")])
    mode = stat.S_IMODE(info.st_mode)
    if mode & _GROUP_OTHER_BITS:
        raise ConfigError([(path, f"mode {mode:04o} lets group or others at the keys: "
                                  f"it must be 0600 or stricter (chmod 600 {path})")])
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except UnicodeDecodeError:
        raise ConfigError([(path, "not UTF-8 text")]) from None
    except OSError as exc:
        raise ConfigError([(path, f"cannot read: {exc.strerror}")]) from None
    return parse_authkeys(text, path)
