"""Cookie persistence (HAProxy's `cookie NAME insert|prefix|rewrite`), pure.

The engine asks two questions per request: which server does the client's
cookie point to (and what Cookie header the server should see instead), and
how the server's response cookies must be rewritten for the client. Both are
answered here from header values alone, so the rules are unit-tested without
sockets. Log flags follow HAProxy's termination-state cookie letters:
request side N (none) I (invalid) D (server down) V (valid); response side
N (none) I (inserted) R (rewritten) P (provided) - (n/a).
"""

from __future__ import annotations

from dataclasses import dataclass

from gproxy.config.model import CookieConfig

PREFIX_SEPARATOR = b"~"
EXPIRED_ATTRS = b"; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"


@dataclass(frozen=True, slots=True)
class RequestCookie:
    """What the client's Cookie headers say about persistence."""

    server_cookie: bytes | None  # the server value found (s3), None if absent
    rewritten: list[bytes] | None  # Cookie header values to forward; None: unchanged


def _split_pairs(value: bytes) -> list[bytes]:
    return [p.strip() for p in value.split(b";") if p.strip()]


def parse_request_cookies(conf: CookieConfig, name: bytes, cookie_values: list[bytes]) -> RequestCookie:
    """Find the persistence cookie `name` among the request's Cookie values.

    prefix: `NAME=s3~abc` routes to s3 and is forwarded as `NAME=abc`.
    insert: `NAME=s3` routes to s3; with `indirect` it is removed before forwarding.
    rewrite: `NAME=s3` routes to s3 and is forwarded unchanged.
    """
    prefix = name + b"="
    for index, header in enumerate(cookie_values):
        if prefix not in header:
            continue
        pairs = _split_pairs(header)
        for pos, pair in enumerate(pairs):
            if not pair.startswith(prefix):
                continue
            value = pair[len(prefix):]
            if conf.mode == "prefix":
                server, sep, rest = value.partition(PREFIX_SEPARATOR)
                if not sep:
                    # No prefix: the application's own cookie, passed unchanged.
                    return RequestCookie(None, None)
                pairs[pos] = prefix + rest
                return RequestCookie(server, _replace(cookie_values, index, pairs))
            if conf.mode == "insert" and conf.indirect and not conf.preserve:
                del pairs[pos]
                return RequestCookie(value, _replace(cookie_values, index, pairs))
            return RequestCookie(value, None)
    return RequestCookie(None, None)


def _replace(values: list[bytes], index: int, pairs: list[bytes]) -> list[bytes]:
    out = list(values)
    if pairs:
        out[index] = b"; ".join(pairs)
    else:
        del out[index]
    return out


def rewrite_set_cookie(conf: CookieConfig, name: bytes, set_cookie: bytes, server_cookie: bytes) -> bytes | None:
    """Rewrite one Set-Cookie value from the server; None if it is not ours.

    prefix: `NAME=abc; Path=/` becomes `NAME=s3~abc; Path=/`.
    rewrite: `NAME=abc; Path=/` becomes `NAME=s3; Path=/`.
    """
    head = name + b"="
    if not set_cookie.lstrip().startswith(head):
        return None
    stripped = set_cookie.lstrip()
    value_and_attrs = stripped[len(head):]
    value, sep, attrs = value_and_attrs.partition(b";")
    if conf.mode == "prefix":
        return head + server_cookie + PREFIX_SEPARATOR + value + sep + attrs
    if conf.mode == "rewrite":
        return head + server_cookie + sep + attrs
    return None


def insert_cookie_value(conf: CookieConfig, name: bytes, server_cookie: bytes | None) -> bytes:
    """The Set-Cookie value inserted in insert mode (an expired one when the
    chosen server has no cookie value, so a stale cookie is forgotten)."""
    if not server_cookie:
        return name + b"=" + EXPIRED_ATTRS
    parts = [name + b"=" + server_cookie + b"; path=/"]
    for domain in conf.domain:
        parts.append(b"; domain=" + domain.encode())
    if conf.httponly:
        parts.append(b"; HttpOnly")
    if conf.secure:
        parts.append(b"; Secure")
    return b"".join(parts)
