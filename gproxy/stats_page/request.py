"""What a request to the statistics page or the metrics asks, and the reply.

Pure: the request arrives as values (method, target, Authorization header,
body bytes) and leaves as a `Reply`; the clock reading and the process
facts come from the caller. The only state this module changes is the
servers' admin state, through the runtime API's own command table, so the
page's buttons and `set server ... state` can never behave differently.

HAProxy's conventions are kept: the page answers every target that starts
with the configured URI; `;csv`, `;json`, `;typed`, `;up`, `;no-maint`,
`;norefresh` and `;st=<code>` modifiers follow it; the admin form is a POST
of `b=<backend>&s=<server>[&s=...]&action=<action>` answered by `303 See
Other` to `<uri>;st=<code>`; credentials are "user:password" pairs
compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qsl

from gproxy.errors import IllegalTransition
from gproxy.runtime_api import commands, stat_csv
from gproxy.runtime_api.framing import Command
from gproxy.runtime_api.reports import ProcessFacts
from gproxy.runtime_api.view import ProxyState, find_backend
from gproxy.stats_page.html import render_page
from gproxy.stats_page.options import ADMIN_ACTIONS, parse_options
from gproxy.stats_page.prometheus import render_metrics
from gproxy.stats_page.settings import PrometheusSettings, StatsSettings

MAX_FORM_FIELDS = 1000  # an admin form lists at most the servers of one backend
ADMIN_SESSION_TIMEOUT_MS = 0  # the CLI session the buttons run in never idles

HTML_TYPE = "text/html; charset=utf-8"
CSV_TYPE = "text/plain; charset=utf-8"
JSON_TYPE = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4"
NO_CACHE = ("Cache-Control", "no-cache")

_REASONS = {200: "OK", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 405: "Method Not Allowed",
            408: "Request Time-out", 413: "Payload Too Large"}


@dataclass(frozen=True)
class Reply:
    """A whole response. `close`: the connection cannot be reused after it."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    close: bool = False

    @property
    def reason(self) -> str:
        return _REASONS.get(self.status, "Unknown")


def authorized(settings: StatsSettings, authorization: bytes | None) -> bool:
    """Basic authentication against every configured "user:password", each
    compared in constant time and all of them always compared, so neither
    a prefix nor the position of a user shows in the timing."""
    if not settings.auth:
        return True
    if not authorization:
        return False
    scheme, _, encoded = authorization.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    import hmac  # here: hashlib loads OpenSSL's libcrypto, which a process without auth does not need

    matched = False
    for credential in settings.auth:
        matched |= hmac.compare_digest(given, credential.encode("utf-8"))
    return matched


def dechunk(raw: bytes) -> bytes:
    """The payload of a chunked body, as the parser relayed it (already
    validated there: sizes, line ends, last chunk, trailers). Line ends are
    CRLF or, as the parser also accepts, a bare LF."""
    out = []
    pos = 0
    while True:
        line_end = raw.find(b"\n", pos)
        if line_end < 0:
            return b"".join(out)
        size = int(raw[pos:line_end].split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            return b"".join(out)
        start = line_end + 1
        out.append(raw[start:start + size])
        pos = start + size
        if raw[pos:pos + 1] == b"\r":
            pos += 1
        if raw[pos:pos + 1] == b"\n":
            pos += 1


def parse_form(body: bytes) -> list[tuple[str, str]] | None:
    """An application/x-www-form-urlencoded body, fields in order; None
    beyond MAX_FORM_FIELDS fields."""
    text = body.decode("utf-8", "replace")
    try:
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        return None


def apply_admin(state: ProxyState, form: list[tuple[str, str]], now: float,
                facts: Callable[[], ProcessFacts]) -> str:
    """Run the admin form's action on its servers; return the `st` code."""
    backend_key = next((value for name, value in form if name == "b"), "")
    action = next((value for name, value in form if name == "action"), "")
    servers = [value for name, value in form if name == "s"]
    if not action or not servers:
        return "NONE"
    entry = ADMIN_ACTIONS.get(action)
    backend = find_backend(state, backend_key) if backend_key else None
    if entry is None or backend is None:
        return "ERRP"
    session = commands.Session(level="admin", timeout_ms=ADMIN_SESSION_TIMEOUT_MS)
    ctx = commands.Context(state=state, session=session, now=now, facts=facts)
    done = 0
    for server in servers:
        spec = f"{backend.name}/{server}"
        words = tuple(spec if word == "{}" else word for word in entry[1])
        command = Command(words=words, line=" ".join(words))
        try:
            outcome = commands.execute(ctx, command)
        except IllegalTransition:
            continue
        if not outcome.text.strip():  # the runtime API answers nothing on success
            done += 1
            if state.relay is not None and commands.relayed(command, outcome):
                state.relay(words)  # with several workers, every one of them
    if done == len(servers):
        return "DONE"
    return "PART" if done else "ERRP"


def text_reply(status: int, text: str, close: bool = False,
               extra: tuple[tuple[str, str], ...] = ()) -> Reply:
    """A short HTML error page, like HAProxy's own."""
    reason = _REASONS.get(status, "Error")
    body = f"<html><body><h1>{status} {reason}</h1>\n{text}\n</body></html>\n".encode()
    return Reply(status, (NO_CACHE, ("Content-Type", "text/html")) + extra, body, close)


def unauthorized(settings: StatsSettings) -> Reply:
    return text_reply(401, "You need a valid user and password to access this content.",
                      extra=(("WWW-Authenticate", f'Basic realm="{settings.realm}"'),))


def answer_stats(state: ProxyState, settings: StatsSettings, method: str, target: str,
                 authorization: bytes | None, body: bytes, now: float,
                 facts: Callable[[], ProcessFacts]) -> Reply:
    """The reply to one request whose target starts with the page's URI."""
    if not authorized(settings, authorization):
        return unauthorized(settings)
    options = parse_options(target[len(settings.uri):])
    if method == "POST":
        form = parse_form(body)
        if not settings.admin:
            code = "DENY"
        elif form is None:
            code = "EXCD"
        else:
            code = apply_admin(state, form, now, facts)
        location = settings.uri + options.suffix() + ";st=" + code
        return Reply(303, (NO_CACHE, ("Location", location), ("Content-Type", "text/plain")), b"")
    if method not in ("GET", "HEAD"):
        return text_reply(405, "Only GET, HEAD and POST are answered here.", extra=(("Allow", "GET, HEAD, POST"),))
    # Addresses and cookies show only to administrators, as the CLI shows
    # them only from level operator on.
    filt = stat_csv.StatFilter(typed=options.typed, hide_down=options.hide_down,
                               hide_maint=options.hide_maint, show_legends=settings.admin)
    if options.json:
        return Reply(200, (NO_CACHE, ("Content-Type", JSON_TYPE)),
                     stat_csv.show_stat_json(state, now, filt).encode())
    if options.csv or options.typed:
        return Reply(200, (NO_CACHE, ("Content-Type", CSV_TYPE)), stat_csv.show_stat(state, now, filt).encode())
    headers: tuple[tuple[str, str], ...] = (NO_CACHE, ("Content-Type", HTML_TYPE))
    if settings.refresh_ms and not options.norefresh:
        headers += (("Refresh", str(refresh_seconds(settings.refresh_ms))),)
    page = render_page(state, settings, options, now, facts())
    return Reply(200, headers, page.encode("utf-8"))


def refresh_seconds(refresh_ms: int) -> int:
    """The `Refresh` header counts whole seconds; never 0 (a reload loop)."""
    return max(1, (refresh_ms + 999) // 1000)


METRIC_SCOPES = ("global", "frontend", "backend", "server")


def answer_metrics(state: ProxyState, settings: PrometheusSettings, method: str, target: str,
                   now: float, facts: Callable[[], ProcessFacts]) -> Reply:
    """The reply to one request for the metrics. `?scope=frontend&scope=server`
    narrows them as HAProxy's exporter does (`scope=*` or none: everything)."""
    if method not in ("GET", "HEAD"):
        return text_reply(405, "Only GET and HEAD are answered here.", extra=(("Allow", "GET, HEAD"),))
    _, _, query = target.partition("?")
    wanted = [value for name, value in parse_qsl(query, keep_blank_values=True) if name == "scope"]
    scopes = frozenset(METRIC_SCOPES) if not wanted or "*" in wanted else frozenset(wanted)
    text = render_metrics(state, now, facts() if "global" in scopes else None, scopes)
    return Reply(200, (NO_CACHE, ("Content-Type", METRICS_TYPE)), text.encode("utf-8"))
