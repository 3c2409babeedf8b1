"""The gevent side of the statistics page and the metrics.

`LocalRoutes` is what a frontend's `local_routes` holds (see
http_proxy.HttpSession.serve_request): `match(head)` picks a handler for
the requests gproxy answers itself and lets the others go to the backend.
A handler reads the request body, if any, through the session's parser
(bounded in size and by `timeout client`), asks request.py for the reply,
writes it whole on the client socket, counts it on the frontend and logs it
as HAProxy does (`<STATS>` as the server, `LR--` as the termination state).
"""

from __future__ import annotations

from typing import Callable

from gevent import socket

from gproxy import rate_sampler
from gproxy.config.model import FrontendConfig
from gproxy.errors import ProtocolError
from gproxy.logfmt import STATS_SERVER, RequestRecord
from gproxy.netio import RECV_SIZE
from gproxy.protocol.http import NEED_DATA, Data, EndOfMessage, RequestHead, serialize_response_head
from gproxy.runtime_api.reports import ProcessFacts
from gproxy.runtime_api.view import ProxyState
from gproxy.stats_page.request import Reply, answer_metrics, answer_stats, dechunk, text_reply
from gproxy.stats_page.settings import PrometheusSettings, StatsSettings

MAX_BODY_BYTES = 65536  # an admin form is a few hundred bytes; more is not a form
LOCAL_TERMINATION = "LR--"  # answered locally, during the request (HAProxy's stats applet)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

Handler = Callable[..., bool]


class _BodyError(Exception):
    """The request body could not be read; `reply` is None if the client is gone."""

    def __init__(self, reply: Reply | None):
        super().__init__(reply.status if reply else "client gone")
        self.reply = reply


class LocalRoutes:
    """The stats page (prefix match on its URI, HAProxy's rule) and the
    metrics (exact path, any query) of one frontend."""

    def __init__(self, state: ProxyState, stats: StatsSettings | None, metrics: PrometheusSettings | None,
                 wall: Callable[[], float], facts: Callable[[], ProcessFacts]):
        self.state = state
        self.stats = stats
        self.metrics = metrics
        self.wall = wall
        self.facts = facts
        self._stats_prefix = stats.uri.encode() if stats else None
        self._metrics_path = metrics.uri.split("?", 1)[0].encode() if metrics else None

    @classmethod
    def for_frontend(cls, cfg: FrontendConfig, state: ProxyState, wall: Callable[[], float],
                     facts: Callable[[], ProcessFacts]) -> "LocalRoutes | None":
        """The routes a frontend's config asks for, or None (the usual case)."""
        if cfg.stats is None and cfg.prometheus is None:
            return None
        stats = StatsSettings.from_table(cfg.stats) if cfg.stats is not None else None
        metrics = PrometheusSettings.from_table(cfg.prometheus) if cfg.prometheus is not None else None
        return cls(state, stats, metrics, wall, facts)

    def match(self, head: RequestHead) -> Handler | None:
        """Runs for every request of the frontend: two byte comparisons."""
        target = head.target
        if target[:1] != b"/":
            target = _origin_form(target)
        if self._metrics_path is not None and target.split(b"?", 1)[0] == self._metrics_path:
            return self.serve_metrics
        if self._stats_prefix is not None and target.startswith(self._stats_prefix):
            return self.serve_stats
        return None

    # ---- handlers (HttpSession calls them with the request head read) -----------

    def serve_stats(self, session, head: RequestHead, rec: RequestRecord, start_mono: float) -> bool:
        assert self.stats is not None
        rec.server = STATS_SERVER
        rate_sampler.ensure_started(self.state)  # no stats socket started it: rates from now on
        try:
            body = read_body(session, head, MAX_BODY_BYTES)
        except _BodyError as exc:
            if exc.reply is None:
                rec.termination = "CR--"
                session._finish_log(rec, start_mono)
                return False
            return send_reply(session, head, rec, start_mono, exc.reply)
        reply = answer_stats(self.state, self.stats, head.method.decode("latin-1"),
                             _origin_form(head.target).decode("latin-1"), head.header(b"authorization"),
                             body, self.wall(), self.facts)
        return send_reply(session, head, rec, start_mono, reply)

    def serve_metrics(self, session, head: RequestHead, rec: RequestRecord, start_mono: float) -> bool:
        assert self.metrics is not None
        rec.server = STATS_SERVER
        rate_sampler.ensure_started(self.state)  # no stats socket started it: rates from now on
        try:
            read_body(session, head, MAX_BODY_BYTES)  # a GET with a body: skip it to keep the stream in sync
        except _BodyError as exc:
            if exc.reply is None:
                rec.termination = "CR--"
                session._finish_log(rec, start_mono)
                return False
            return send_reply(session, head, rec, start_mono, exc.reply)
        reply = answer_metrics(self.state, self.metrics, head.method.decode("latin-1"),
                               _origin_form(head.target).decode("latin-1"), self.wall(), self.facts)
        return send_reply(session, head, rec, start_mono, reply)


def _origin_form(target: bytes) -> bytes:
    """`http://host/path?q` -> `/path?q` (a client speaking to a proxy)."""
    if target[:1] == b"/":
        return target
    scheme_end = target.find(b"://")
    if scheme_end < 0:
        return target
    path_start = target.find(b"/", scheme_end + 3)
    return target[path_start:] if path_start >= 0 else b"/"


def read_body(session, head: RequestHead, limit: int) -> bytes:
    """The request's body, de-chunked, read within `timeout client`; raises
    _BodyError (with the reply to send) when it is invalid, too large or late."""
    if head.body_kind == "none":
        return b""
    if head.content_length is not None and head.content_length > limit:
        raise _BodyError(text_reply(413, "The request body is too large.", close=True))
    client = session.client
    parser = session.parser
    counters = session.fe.counters
    client.settimeout(session.timeouts.client / 1000.0)
    if head.expect_continue:
        try:
            client.sendall(CONTINUE)
        except OSError:
            raise _BodyError(None) from None
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            event = parser.next_event()
        except ProtocolError as exc:
            if exc.status == 413:  # the frontend's max_body_size, met by a chunked body
                raise _BodyError(text_reply(413, "The request body is too large.", close=True)) from None
            raise _BodyError(text_reply(400, "Your browser sent an invalid request.", close=True)) from None
        if event is NEED_DATA:
            try:
                data = client.recv(RECV_SIZE)
            except socket.timeout:
                raise _BodyError(text_reply(408, "Your browser didn't send a complete request in time.",
                                            close=True)) from None
            except OSError:
                raise _BodyError(None) from None
            if not data:
                raise _BodyError(None)
            counters.bytes_in += len(data)
            parser.receive_data(data)
            continue
        if type(event) is Data:
            size += len(event.data)
            if size > limit:
                raise _BodyError(text_reply(413, "The request body is too large.", close=True))
            chunks.append(event.data)
            continue
        if event is EndOfMessage:
            raw = b"".join(chunks)
            return dechunk(raw) if head.body_kind == "chunked" else raw
        raise _BodyError(None)


def send_reply(session, head: RequestHead, rec: RequestRecord, start_mono: float, reply: Reply) -> bool:
    """Write `reply`, count and log it; True if the connection stays open."""
    keep = head.keep_alive and session.mode != "close" and not reply.close
    headers = [(name.encode("latin-1"), value.encode("utf-8")) for name, value in reply.headers]
    headers.append((b"Content-Length", str(len(reply.body)).encode()))
    if not keep:
        headers.append((b"Connection", b"close"))
    elif head.version == b"HTTP/1.0":
        headers.append((b"Connection", b"keep-alive"))
    data = serialize_response_head(b"HTTP/1.1", reply.status, reply.reason.encode(), headers)
    if head.method != b"HEAD":
        data += reply.body
    rec.status = reply.status
    rec.termination = LOCAL_TERMINATION
    try:
        session.client.settimeout(session.timeouts.client / 1000.0)
        session.client.sendall(data)
    except (OSError, socket.timeout):
        rec.termination = "CD--"
        keep = False
    else:
        rec.bytes_out = len(data)
        counters = session.fe.counters
        counters.count_status(reply.status)
        counters.bytes_out += len(data)
        session.ctx.process.bytes_out += len(data)
    session._finish_log(rec, start_mono)
    return keep
