"""HTTP mode: one client connection, its requests, their trip to a server.

This is the gevent layer of the hot path. Parsing lives in
gproxy.protocol.http, selection and counters in gproxy.runtime, cookie rules
in gproxy.persistence; here we only move bytes, apply timeouts, and decide
retries. One `HttpSession` per client connection serves its requests in
order (pipelined ones included), each through `serve_request()`.

Failure policy (what a client sees):
- a connection that fails to a server is retried `retries` times, and with
  `redispatch` the last retry (or any retry once the server is known down)
  goes to another server, so a dead server costs clients nothing;
- a request whose bytes reached a server is replayed only if it is
  idempotent, carries no body and no response byte came back;
- malformed requests get 400/431 and never reach a server; a garbage
  response gets 502; a silent server 504; no server 503;
- with `max_body_size`, a larger Content-Length gets 413 and never reaches a
  server; so does a chunked body whose buffered part is already too large; a
  chunked body that grows past the limit once forwarding began cuts the
  server connection, and the client gets 413 if no response byte was sent to
  it yet, else its connection is closed (counted in dreq, logged PR/PD).
"""

from __future__ import annotations

import gevent
from gevent import socket

from gproxy.errorpages import error_response
from gproxy.errors import ProtocolError
from gproxy.logfmt import RequestRecord
from gproxy.netio import (
    RECV_SIZE,
    ConnectFailed,
    IdleConnection,
    ReusableDeadline,
    close_quietly,
    connect,
    connect_sending,
    quick_ack,
    recv_when_readable,
    reusable_deadline,
    send_all,
    send_preamble,
)
from gproxy.proxy_protocol import build_for_server
from gproxy.persistence import (
    insert_cookie_value,
    parse_request_cookies,
    rewrite_set_cookie,
)
from gproxy.protocol.http import (
    BODY_TOO_LARGE_STATUS,
    END,
    BodyTooLarge,
    NEED_DATA,
    ConnectionClosed,
    Data,
    EndOfMessage,
    RequestHead,
    RequestParser,
    ResponseHead,
    ResponseParser,
    append_headers,
    join_head_lines,
    serialize_request_head,
)
from gproxy.dispatch import acquire
from gproxy.runtime import IDEMPOTENT_METHODS, MAX_IDLE_PER_SERVER, ErrorCapture, ServerRuntime, hrsp_index

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection"})
# The balance algorithms that hash a part of the request (_hash_key).
_KEYED_BALANCES = frozenset({"source", "uri"})
HSTS_HEADER = b"Strict-Transport-Security"
HTTPS_REDIRECT_STATUS = 301
MAX_TURNAROUND_MS = 1000  # HAProxy waits min(timeout connect, 1s) before retrying a server
MIN_WAIT_MS = 1.0  # the shortest socket timeout set (0 would make the socket non-blocking)
# A kept-alive client silent this long between requests waits parked (no greenlet):
# under load the next request comes sooner, and parking each time would cost more.
PARK_AFTER_MS = 1000.0


class Abort(Exception):
    """End the client connection now (the reason is already logged)."""


class HttpSession:
    """One client connection in HTTP mode."""

    # Set by the process layer after the PROXY header and TLS handshake.
    tls = False  # the client came over TLS (no redirect_to_https; `~` after the frontend in logs)
    # Set by the process layer: between requests the connection may wait parked (run() returns).
    can_park = False
    idle_since: float | None = None  # monotonic time the parked wait for the next request began
    # Reused timers of the two hot waits (netio.reusable_deadline), made on first use.
    server_deadline: ReusableDeadline | None = None  # the response head: timeout.server
    park_deadline: ReusableDeadline | None = None  # a kept-alive client's first PARK_AFTER_MS
    local_address: tuple[str, int] | None = None  # what the client connected to (PROXY header), else the socket's

    def __init__(self, ctx, frontend, client: socket.socket, address, log):
        self.ctx = ctx
        self.fe = frontend
        self.client = client
        self.client_ip = address[0]
        self.client_port = address[1]
        self.log = log  # callable(RequestRecord) or None
        fe_cfg = frontend.cfg
        self.timeouts = fe_cfg.timeouts
        backend = frontend.backend
        self.be = backend
        be_cfg = backend.cfg if backend else None
        self.be_timeouts = be_cfg.timeouts if be_cfg else fe_cfg.timeouts
        modes = {fe_cfg.connection_mode, be_cfg.connection_mode if be_cfg else "keep-alive"}
        # The most closing mode of the frontend and backend wins, as in HAProxy.
        self.mode = "close" if "close" in modes else ("server-close" if "server-close" in modes else "keep-alive")
        self.forwardfor = fe_cfg.forwardfor or (be_cfg.forwardfor if be_cfg else None)
        self.add_xff = self._wants_xff()
        self.parser = RequestParser(ctx.tune.max_header_bytes, ctx.tune.maxhdr, ctx.tune.max_uri_length,
                                    fe_cfg.max_body_size)
        self.accept_wall = ctx.clock.wall()
        self.accept_mono = ctx.clock.mono()
        self.sent_anything = False
        self.stream = None  # set by the process layer: `show sess`, `shutdown sessions`
        # hsts: our Strict-Transport-Security replaces the server's.
        self.hsts = b"max-age=%d" % (fe_cfg.hsts // 1000) if fe_cfg.hsts is not None else None
        self.dropped_response_headers = HOP_BY_HOP | {HSTS_HEADER.lower()} if self.hsts else HOP_BY_HOP
        # Per-request constants of the backend, worked out once per connection.
        cookie_cfg = be_cfg.cookie if be_cfg else None
        self.cookie_name = cookie_cfg.name.encode() if cookie_cfg else b""
        self.xff_name = self.forwardfor.header.encode() if self.forwardfor else b""
        self.xff_value = self.client_ip.encode()
        self.server_timeout_s = self.be_timeouts.server / 1000.0  # socket timeouts, in seconds
        self.client_timeout_s = self.timeouts.client / 1000.0

    def _wants_xff(self) -> bool:
        ff = self.forwardfor
        if ff is None:
            return False
        if ff.except_net is not None:
            return not _in_network(self.client_ip, ff.except_net)
        return True

    # ---- the connection --------------------------------------------------
    def run(self, first: bool = True) -> bool:
        """Serve requests until the connection ends (False), or until it waits
        idle for its next request with `can_park` set (True): the caller then
        parks it without its greenlet and calls run(False) when it is readable."""
        try:
            while self.serve_request(first):
                first = False
        except _Park:
            return True
        except Abort:
            pass
        except (OSError, socket.timeout):
            pass
        self._drop_deadlines()
        return False

    def _drop_deadlines(self) -> None:
        for deadline in (self.server_deadline, self.park_deadline):
            if deadline is not None:
                deadline.close()
        self.server_deadline = self.park_deadline = None

    def serve_request(self, first: bool) -> bool:
        """Serve one request; True if the client connection stays open."""
        ctx = self.ctx
        clock = ctx.clock
        rec = RequestRecord()
        rec.client_ip = self.client_ip
        rec.client_port = self.client_port
        rec.frontend = self.fe.name + "~" if self.tls else self.fe.name  # HAProxy's %ft
        rec.backend = self.be.name if self.be else self.fe.name
        rec.server = "<NOSRV>"
        if first:
            start_mono = self.accept_mono
        else:  # a kept-alive connection's wait started when it was parked, if it was
            start_mono = self.idle_since if self.idle_since is not None else clock.mono()
        rec.accept_time = self.accept_wall if first else clock.wall()
        head = self._read_head(first, rec, start_mono)
        if head is None:
            return False
        rec.t_request = int((clock.mono() - start_mono) * 1000)
        # The request line as parsed (single spaces): one decode, not three.
        rec.request_line = b" ".join((head.method, head.target, head.version)).decode("latin-1")
        fe_counters = self.fe.counters
        fe_counters.req_tot += 1
        ctx.process.cum_req += 1
        if self.fe.cfg.redirect_to_https and not self.tls:
            return self._redirect_to_https(head, rec, start_mono)
        if self.fe.local_routes is not None:
            # The stats page and the metrics endpoint are answered by gproxy
            # itself (HAProxy's `stats uri`, `<STATS>` in the log).
            route = self.fe.local_routes.match(head)
            if route is not None:
                return route(self, head, rec, start_mono)
        if head.body_kind == "chunked" and self.parser.refuses_buffered_body():
            # max_body_size: the chunks already here are too large; refused
            # before a server sees a byte.
            self._deny_body(rec, start_mono)
            return False
        try:
            return self._forward(head, rec, start_mono)
        finally:
            if self.stream is not None:
                self.stream.detach()

    def _redirect_to_https(self, head: RequestHead, rec: RequestRecord, start_mono: float) -> bool:
        """`redirect_to_https`: a 301 to the same path and query over https,
        logged like HAProxy's redirects (termination LR)."""
        location = b"https://" + self._https_authority(head) + _origin_form(head.target)
        keep = head.keep_alive and head.body_kind == "none" and self.mode != "close" \
            and not self.ctx.process.stopping
        response = (b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\nlocation: " + location
                    + (b"\r\n\r\n" if keep else b"\r\nconnection: close\r\n\r\n"))
        self.client.settimeout(self.timeouts.client / 1000.0)
        try:
            self.client.sendall(response)
        except (OSError, socket.timeout):
            keep = False
        counters = self.fe.counters
        counters.count_status(HTTPS_REDIRECT_STATUS)
        counters.bytes_out += len(response)
        rec.backend = self.fe.name
        rec.status = HTTPS_REDIRECT_STATUS
        rec.bytes_out = len(response)
        rec.termination = "LR--"
        self._finish_log(rec, start_mono)
        return keep

    def _https_authority(self, head: RequestHead) -> bytes:
        """The Host without its port (the https listener is on 443), else the
        address the client connected to."""
        hosts = head.header_values(b"host")
        if hosts and hosts[0]:
            host = hosts[0].strip()
            if host.startswith(b"["):
                return host[:host.find(b"]") + 1] if b"]" in host else host
            name, colon, port = host.rpartition(b":")
            return name if colon and port.isdigit() else host
        address = (self.local_address or self.client.getsockname())[0]
        return (f"[{address}]" if ":" in address else address).encode()

    # ---- reading the request head -----------------------------------------
    def _read_head(self, first: bool, rec: RequestRecord, start_mono: float) -> RequestHead | None:
        parser = self.parser
        client = self.client
        timeouts = self.timeouts
        got_bytes = bool(parser.trailing_data)
        # Waiting for a next request on a kept-alive connection uses
        # http_keep_alive; once its first byte arrives, the whole head must
        # come within http_request (the slowloris bound).
        idle_timeout = timeouts.eff_http_request if first else timeouts.eff_http_keep_alive
        if first:
            # The first request's wait runs from accept (a connection may have
            # waited parked, without its greenlet); at least 1 ms, so that an
            # expired wait still reads what is already there.
            idle_timeout = max(MIN_WAIT_MS, idle_timeout - (self.ctx.clock.mono() - self.accept_mono) * 1000.0)
        woken = self.idle_since is not None  # resumed after a parked wait: readable, or timed out
        if woken:
            # Likewise from the end of the previous response for a parked connection.
            idle_timeout = max(MIN_WAIT_MS, idle_timeout - (self.ctx.clock.mono() - self.idle_since) * 1000.0)
            self.idle_since = None
        deadline = None
        chunks = []  # this head's bytes, kept only for `show errors`
        try:
            while True:
                event = parser.next_event()
                if event is NEED_DATA:
                    if deadline is None and got_bytes:
                        deadline = gevent.Timeout(timeouts.eff_http_request / 1000.0)
                        deadline.start()
                    # The socket's timeout is set only for the waits that use it
                    # (the parked wait has its own deadline): a setting per request saved.
                    if got_bytes or first or woken:
                        client.settimeout(idle_timeout / 1000.0 if deadline is None else None)
                        data = client.recv(RECV_SIZE)
                    elif self.can_park and idle_timeout > PARK_AFTER_MS:
                        # A kept-alive client silent for PARK_AFTER_MS: its
                        # greenlet ends, the connection waits parked (run()).
                        if self.park_deadline is None:
                            self.park_deadline = reusable_deadline(PARK_AFTER_MS / 1000.0)
                        try:
                            data = recv_when_readable(client, RECV_SIZE, self.park_deadline)
                        except socket.timeout:
                            self.idle_since = start_mono
                            self._drop_deadlines()  # a parked connection keeps no timer
                            raise _Park() from None
                    else:  # a kept-alive client that was just answered: wait, then read
                        client.settimeout(idle_timeout / 1000.0)
                        data = recv_when_readable(client, RECV_SIZE)
                    chunks.append(data)
                    if data:
                        if not got_bytes:
                            got_bytes = True
                            if not first:
                                rec.accept_time = self.ctx.clock.wall()
                    parser.receive_data(data)
                    continue
                if isinstance(event, RequestHead):
                    self.fe.counters.bytes_in += len(event.raw)
                    return event
                if event is EndOfMessage:
                    continue  # the end of the previous (bodiless) request
                if event is ConnectionClosed or isinstance(event, ConnectionClosed):
                    return None
                return None
        except BodyTooLarge as exc:
            # max_body_size and a larger Content-Length: a policy refusal
            # (dreq), not an invalid request; nothing reached a server.
            if exc.head is not None:
                self._request_seen(exc.head, rec, start_mono)
            self._deny_body(rec, start_mono)
            return None
        except ProtocolError as exc:
            self._capture_error(self.fe, b"".join(chunks))
            self._reject(rec, exc.status, "PR--", start_mono, got_bytes=True)
            return None
        except (socket.timeout, gevent.Timeout) as exc:
            if deadline is not None and exc is not deadline and not isinstance(exc, socket.timeout):
                raise
            if got_bytes:
                self._reject(rec, 408, "cR--", start_mono, got_bytes=True)
            elif first:
                self._log_null(rec, "cR--", start_mono)
            return None
        except OSError:
            if got_bytes or first:
                self._log_null(rec, "CR--", start_mono)
            return None
        finally:
            if deadline is not None:
                deadline.cancel()

    def _request_seen(self, head: RequestHead, rec: RequestRecord, start_mono: float) -> None:
        """Count and record a refused request whose head was read."""
        rec.t_request = int((self.ctx.clock.mono() - start_mono) * 1000)
        rec.request_line = (f"{head.method.decode('latin-1')} {head.target.decode('latin-1')} "
                            f"{head.version.decode('latin-1')}")
        self.fe.counters.req_tot += 1
        self.ctx.process.cum_req += 1

    def _deny_body(self, rec: RequestRecord, start_mono: float) -> None:
        """max_body_size: 413, counted in dreq, logged PR--, connection closed."""
        self.fe.counters.denied_req += 1
        self._reject(rec, BODY_TOO_LARGE_STATUS, "PR--", start_mono, got_bytes=True)

    def _capture_error(self, owner, data: bytes, server=None) -> None:
        """Keep the offending bytes for `show errors` (the last error per proxy)."""
        fe = self.fe
        data = bytes(data[:self.ctx.tune.bufsize])
        capture = ErrorCapture(
            when=self.ctx.clock.wall(), source=f"{self.client_ip}:{self.client_port}",
            data=data, error_at=_first_invalid_byte(data), frontend=fe.name, frontend_id=fe.cfg.id,
            backend=self.be.name if server is not None else None,
            backend_id=self.be.cfg.id if server is not None else -1,
            server=server.name if server is not None else None, server_id=server.id if server is not None else -1)
        self.ctx.process.capture_error(owner, capture)

    def _reject(self, rec: RequestRecord, status: int, term: str, start_mono: float, got_bytes: bool) -> None:
        """Answer an error on a request that never reached a server."""
        response = error_response(status)
        try:
            self.client.settimeout(self.timeouts.client / 1000.0)
            self.client.sendall(response)
        except (OSError, socket.timeout):
            pass
        counters = self.fe.counters
        if status in (400, 408, 414, 431):
            counters.err_req += 1
        counters.count_status(status)
        counters.bytes_out += len(response)
        if not rec.request_line:
            rec.request_line = "<BADREQ>"
        rec.status = status
        rec.bytes_out = len(response)
        rec.termination = term
        self._finish_log(rec, start_mono)

    def _log_null(self, rec: RequestRecord, term: str, start_mono: float) -> None:
        """A connection that sent nothing: logged unless dontlognull."""
        if self.fe.cfg.log.dontlognull:
            return
        rec.request_line = "<BADREQ>"
        rec.termination = term
        self._finish_log(rec, start_mono)

    def _finish_log(self, rec: RequestRecord, start_mono: float, t_active: int | None = None) -> None:
        rec.t_active = int((self.ctx.clock.mono() - start_mono) * 1000) if t_active is None else t_active
        process = self.ctx.process
        rec.actconn = process.cur_conns
        rec.feconn = self.fe.counters.cur
        rec.beconn = self.be.counters.cur if self.be else 0
        if self.log is not None:
            self.log(rec)

    # ---- forwarding --------------------------------------------------------
    def _forward(self, head: RequestHead, rec: RequestRecord, start_mono: float) -> bool:
        be = self.be
        if be is None:
            self._drain_body_or_close(head)
            self._reject(rec, 503, "SC--", start_mono, got_bytes=True)
            return False
        be_cfg = be.cfg
        cookie_cfg = be_cfg.cookie
        cookie_name = self.cookie_name
        persistent: ServerRuntime | None = None
        req_flag = "-"
        cookie_rewrite = None
        if cookie_cfg is not None:
            # The membership test first (C level): most requests carry no Cookie.
            values = head.header_values(b"cookie") if b"cookie" in head.lnames else None
            found = parse_request_cookies(cookie_cfg, cookie_name, values) if values else None
            if found is None or found.server_cookie is None:
                req_flag = "N"
            else:
                cookie_rewrite = found.rewritten
                server = be.persistent_server(found.server_cookie)
                if server is None:
                    req_flag = "I"
                elif server.health.usable_for_persistent:
                    persistent = server
                    req_flag = "V"
                else:
                    req_flag = "D"
        added = self._added_request_headers(head)
        # An HTTP/1.1 client's `Connection: close` ends the client side only:
        # as in HAProxy (keep-alive mode), the server connection stays open
        # and goes back to the pool, so a connection-per-request client does
        # not cost a server connect and close per request as well.
        server_close = self.mode != "keep-alive" or (not head.keep_alive and head.version != b"HTTP/1.1")
        if server_close:
            added.append((b"Connection", b"close"))
        elif head.version == b"HTTP/1.0":
            added.append((b"Connection", b"keep-alive"))
        if head.upgrade:
            added.append((b"Connection", b"upgrade"))
        raw = head.raw
        if cookie_rewrite is None and HOP_BY_HOP.isdisjoint(head.lnames) and raw.count(b"\r") == raw.count(b"\n"):
            # The usual request: nothing to drop or rewrite, CRLF line ends
            # only (the parser refused any CR that does not start a CRLF): the
            # head goes out as received, ours appended, not re-serialised.
            out_head = append_headers(raw, added)
        else:
            out_head = serialize_request_head(head.method, head.target, head.version,
                                              self._request_headers(head, cookie_rewrite) + added)
        balance = be_cfg.balance
        key = self._hash_key(head, balance) if balance in _KEYED_BALANCES else None
        replayable = head.method in IDEMPOTENT_METHODS and head.body_kind == "none"
        return self._exchange(head, out_head, rec, start_mono, persistent, key, replayable,
                              server_close, cookie_name, req_flag)

    def _request_headers(self, head: RequestHead, cookie_rewrite) -> list[tuple[bytes, bytes]]:
        """The client's headers minus hop-by-hop ones, Cookie rewritten if asked."""
        out = []
        append = out.append
        cookie_done = cookie_rewrite is None
        for lname, header in zip(head.lnames, head.headers):  # lowercased once by the parser
            if lname in HOP_BY_HOP:
                continue
            if lname == b"cookie" and not cookie_done:
                # Replace every Cookie header by the rewritten list, once.
                for v in cookie_rewrite:
                    append((header[0], v))
                cookie_done = True
                continue
            if lname == b"cookie" and cookie_rewrite is not None:
                continue
            append(header)
        return out

    def _added_request_headers(self, head: RequestHead) -> list[tuple[bytes, bytes]]:
        """What the proxy adds after the client's headers: X-Forwarded-For (forwardfor)."""
        if self.add_xff:
            hname = self.xff_name
            if not (self.forwardfor.if_none and hname.lower() in head.lnames):
                return [(hname, self.xff_value)]
        return []

    def _hash_key(self, head: RequestHead, balance: str) -> bytes | None:
        if balance == "source":
            return self.client_ip.encode()
        if balance == "uri":
            if self.be.cfg.uri_whole:
                return head.target
            return head.target.split(b"?", 1)[0]
        return None

    def _drain_body_or_close(self, head: RequestHead) -> None:
        pass

    def _exchange(self, head, out_head, rec, start_mono, persistent, key, replayable,
                  server_close, cookie_name, req_flag) -> bool:
        """Pick a server, connect (with retries), send, relay the response."""
        be = self.be
        be_cfg = be.cfg
        clock = self.ctx.clock
        retries_left = be_cfg.retries
        retries = 0
        redispatched = False
        server = persistent
        avoid = None
        queue_ms = 0
        while True:
            # 1. a slot on a server (maybe after queueing)
            t_q = clock.mono()
            server, status = acquire(be, server, key, avoid, rec, clock.wall())
            t_c = clock.mono()  # the queue's end is the connection's start
            queue_ms += int((t_c - t_q) * 1000)
            rec.t_queue = queue_ms
            if server is None:
                term = "sQ--" if status == "queue-timeout" else "SC--"
                self._fail_before_server(head, rec, start_mono, 503, term)
                return False
            rec.server = server.name
            if self.stream is not None:
                self.stream.attach(server)
            # 2. a connection
            sock = None
            reused = False
            try:
                sock, reused, head_sent = self._server_connection(server, replayable, out_head)
            except ConnectFailed as exc:
                rec.t_connect = -1
                server.counters.err_conn += 1
                be.counters.err_conn += 1
                be.release(server)
                if retries_left <= 0:
                    self._fail_before_server(head, rec, start_mono, 503 if not exc.timed_out else 503,
                                             "sC--" if exc.timed_out else "SC--")
                    return False
                retries_left -= 1
                retries += 1
                server.counters.retries += 1
                be.counters.retries += 1
                if be_cfg.redispatch and (retries_left == 0 or not server.usable or persistent is None):
                    # Redispatch: another server, unless none other exists.
                    avoid = server
                    if server is not None and persistent is server:
                        persistent = None
                    if not redispatched:
                        redispatched = True
                        be.counters.redispatches += 1
                        server.counters.redispatches += 1
                    server = None
                else:
                    gevent.sleep(min(be_cfg.timeouts.connect, MAX_TURNAROUND_MS) / 1000.0)
                continue
            rec.t_connect = 0 if reused else int((clock.mono() - t_c) * 1000)  # a pooled one: 0, as HAProxy
            rec.retries = retries
            rec.redispatched = redispatched
            # 3. the request and its response
            outcome = self._send_and_relay(server, sock, reused, head, out_head, head_sent, rec, start_mono,
                                           server_close, cookie_name, req_flag, replayable)
            if outcome == "retry":
                # The server dropped the request before answering a byte and
                # the request is safe to replay: try again elsewhere.
                be.release(server)
                if retries_left <= 0:
                    self._fail_before_server(head, rec, start_mono, 502, "SH--")
                    return False
                if not reused:
                    retries_left -= 1
                    retries += 1
                    server.counters.retries += 1
                    be.counters.retries += 1
                    if be_cfg.redispatch:
                        avoid = server
                        if persistent is server:
                            persistent = None
                        if not redispatched:
                            redispatched = True
                            be.counters.redispatches += 1
                            server.counters.redispatches += 1
                        server = None
                continue
            return outcome

    def _server_connection(self, server: ServerRuntime, replayable: bool, out_head: bytes):
        """An idle keep-alive connection to reuse (safe requests only), or a new
        one: (socket, reused, how many bytes of `out_head` were sent on it).

        A new plain connection takes the request head at once (netio.connect_sending):
        no wait for the handshake when it is already over."""
        send_proxy = server.cfg.send_proxy
        if replayable and send_proxy is None:  # a PROXY header binds a connection to its client
            idle = server.idle  # watched while idle: what is in it is still open
            if idle:
                return idle.pop().take(), True, 0
        preamble = b""
        if send_proxy is not None:
            local = self.local_address or self.client.getsockname()
            preamble = build_for_server(send_proxy, (self.client_ip, self.client_port), (local[0], local[1]))
        timeout_ms = self.be.cfg.timeouts.connect
        if server.tls is None:
            sock, sent = connect_sending(server.host, server.port, timeout_ms, preamble + out_head)
            if sent < len(preamble):
                send_preamble(sock, preamble[sent:])
                return sock, False, 0
            return sock, False, sent - len(preamble)
        sock = connect(server.host, server.port, timeout_ms, server.tls, server.cfg.sni, preamble)
        server.counters.ssl_sess += 1
        return sock, False, 0

    def _fail_before_server(self, head, rec, start_mono, status, term) -> None:
        be = self.be
        if status == 503:
            be.counters.count_status(503)
        self._reject(rec, status, term, start_mono, got_bytes=True)

    # ---- one round trip to a server ---------------------------------------
    def _send_and_relay(self, server, sock, reused, head, out_head, head_sent, rec, start_mono,
                        server_close, cookie_name, req_flag, replayable):
        """Returns True/False (keep the client connection) or "retry".
        `head_sent` bytes of `out_head` are already on their way (sent with the connect)."""
        ctx = self.ctx
        clock = ctx.clock
        be = self.be
        client = self.client
        server_timeout = self.server_timeout_s
        client_timeout = self.client_timeout_s
        keep_server = False
        got_response_byte = False
        finalized = False  # True once release and log were done on an error path
        bytes_out = 0
        try:
            if sock.timeout != server_timeout:  # a pooled connection has it already
                sock.settimeout(server_timeout)
            t_sent = clock.mono()
            try:
                if head_sent < len(out_head):
                    send_all(sock, out_head[head_sent:] if head_sent else out_head)
            except OSError:
                if replayable:
                    finalized = True
                    return "retry"
                raise _ServerGone() from None
            server.counters.bytes_in += len(out_head)
            be.counters.bytes_in += len(out_head)
            rparser = ResponseParser(ctx.tune.max_header_bytes, ctx.tune.maxhdr)
            rparser.expect_response_to(head.method)
            fresh = True  # nothing buffered yet: the first read needs no parse before it
            body_pending = head.body_kind != "none"
            client_closes = False
            if body_pending and not head.expect_continue:
                self._relay_request_body(sock, client_timeout)
                body_pending = False
            # Read the response head (relaying interim 1xx answers).
            while True:
                try:
                    response = self._read_response_head(sock, rparser, reused, fresh)
                    fresh = False
                except socket.timeout:
                    finalized = True
                    self._server_failed(server, rec, 504, "sH--", start_mono)
                    return False
                except (ProtocolError, OSError) as exc:
                    if isinstance(exc, OSError) and not got_response_byte and (replayable or reused):
                        finalized = True
                        return "retry"
                    if isinstance(exc, ProtocolError):
                        self._capture_error(be, rparser.trailing_data, server)
                    server.counters.err_resp += 1
                    be.counters.err_resp += 1
                    finalized = True
                    self._server_failed(server, rec, 502, "PH--" if isinstance(exc, ProtocolError) else "SH--",
                                        start_mono)
                    return False
                if response is None:
                    # The server closed without answering a byte.
                    if (replayable or reused) and not got_response_byte:
                        finalized = True
                        return "retry"
                    server.counters.err_resp += 1
                    be.counters.err_resp += 1
                    finalized = True
                    self._server_failed(server, rec, 502, "SH--", start_mono)
                    return False
                got_response_byte = True
                if 100 <= response.status < 200 and response.status != 101:
                    client.settimeout(client_timeout)
                    client.sendall(response.raw)
                    bytes_out += len(response.raw)
                    if response.status == 100 and body_pending:
                        self._relay_request_body(sock, client_timeout)
                        body_pending = False
                    continue
                break
            if body_pending:
                # Final answer before the client sent its body (Expect:
                # 100-continue refused): the client stream cannot be reused.
                client_closes = True
            rec.t_response = int((clock.mono() - t_sent) * 1000)
            status = response.status
            rec.status = status
            # A stopping process (reload, soft stop) closes each kept-alive
            # connection after its response, so clients leave without error.
            keep_client = (head.keep_alive and self.mode != "close" and response.body_kind != "close"
                           and not client_closes and not self.ctx.process.stopping)
            keep_server = not server_close and response.keep_alive and self.mode == "keep-alive"
            resp_flag, out = self._response_headers(response, server, cookie_name, req_flag,
                                                    keep_client, head)
            rec.termination = "--" + req_flag + resp_flag if be.cfg.cookie else "----"
            tunnel = status == 101 or (head.method == b"CONNECT" and 200 <= status < 300)
            # The head goes out with the body bytes already read (one send for
            # a small response): a system call saved per request.
            first, complete = (b"", False) if tunnel else _buffered_body(rparser)
            if first:
                out += first
            try:
                send_all(client, out, client_timeout)
            except (OSError, socket.timeout):
                raise _ClientGone() from None
            bytes_out += len(out)
            if not complete:  # the client's sends to come wait within timeout.client
                client.settimeout(client_timeout)
                if reused:
                    quick_ack(sock)  # more is to come from the server (see _read_response_head)
            if tunnel:
                bytes_out += self._tunnel(sock, rparser)
                keep_client = keep_server = False
            elif not complete:
                bytes_out += self._relay_response_body(sock, rparser)
            index = hrsp_index(status)  # once for the three counters
            server.counters.hrsp[index] += 1
            be.counters.hrsp[index] += 1
            self.fe.counters.hrsp[index] += 1
            return keep_client
        except (_BadRequestBody, _ClientTimeout) as exc:
            # Invalid body framing (400), a body past max_body_size (413) or a
            # client too slow to send its body (408): the server got a partial
            # request and is closed; the client gets the error if nothing was
            # sent to it yet.
            keep_server = False
            timed_out = isinstance(exc, _ClientTimeout)
            status = 408 if timed_out else exc.status
            if timed_out:
                server.counters.cli_abrt += 1
                be.counters.cli_abrt += 1
            elif status == BODY_TOO_LARGE_STATUS:
                self.fe.counters.denied_req += 1
            else:
                self.fe.counters.err_req += 1
            if not bytes_out:
                response = error_response(status)
                try:
                    client.sendall(response)
                    bytes_out += len(response)
                except (OSError, socket.timeout):
                    pass
                rec.status = status
                self.fe.counters.count_status(status)
            rec.termination = "cD--" if timed_out else "PD--"
            return False
        except _ClientGone:
            server.counters.cli_abrt += 1
            be.counters.cli_abrt += 1
            keep_server = False
            rec.termination = "CD--"
            return False
        except (_ServerGone, OSError):
            server.counters.srv_abrt += 1
            be.counters.srv_abrt += 1
            keep_server = False
            rec.termination = "SD--"
            return False
        finally:
            # The pool keeps as many idle connections as the server ever had
            # requests in flight at once (its smax; at least MAX_IDLE_PER_SERVER),
            # as HAProxy keeps what it used. Bounded by the requests in flight
            # now instead, it shrank between bursts: under 1000 concurrent
            # clients, whose requests come in waves, most requests opened and
            # closed a server connection. The server's keep-alive timeout
            # closes the surplus once the load goes (IdleConnection).
            if keep_server and len(server.idle) < max(MAX_IDLE_PER_SERVER, server.counters.max) \
                    and server.usable and server.cfg.send_proxy is None:
                server.idle.append(IdleConnection(sock, server.idle))
            else:
                close_quietly(sock)
            if not finalized:
                rec.bytes_out = bytes_out
                server.counters.bytes_out += bytes_out
                be.counters.bytes_out += bytes_out
                self.fe.counters.bytes_out += bytes_out
                ctx.process.bytes_out += bytes_out
                # Tw Tc Tr Ta behind show stat's qtime..ttime and their maxima.
                t_active = int((ctx.clock.mono() - start_mono) * 1000)
                be.record_times(server, rec.t_queue, rec.t_connect, rec.t_response, t_active)
                be.release(server)
                self._finish_log(rec, start_mono, t_active)

    def _read_response_head(self, sock, rparser, reused: bool = False, fresh: bool = False) -> ResponseHead | None:
        """The response head (None: the server closed first). On a `reused`
        connection a response that comes in pieces gets quick ACKs
        (netio.quick_ack) as soon as a piece is read: a server that writes its
        head and body apart without TCP_NODELAY holds the second piece until
        the first is ACKed, and a kept-alive connection delays its ACKs up to
        40 ms. Asked for only then, not before each request: the usual small
        response comes whole and needs none (a system call saved)."""
        got_piece = False
        while True:
            event = NEED_DATA if fresh else rparser.next_event()
            fresh = False
            if event is NEED_DATA:
                if got_piece and reused:
                    quick_ack(sock)  # the ACK that was delayed goes out now
                    reused = False
                # The server cannot have answered yet: wait, then read (no EAGAIN read).
                deadline = self.server_deadline
                if deadline is None:
                    deadline = self.server_deadline = reusable_deadline(self.be_timeouts.server / 1000.0)
                data = recv_when_readable(sock, RECV_SIZE, deadline)
                if not data and not rparser.trailing_data:
                    # EOF before any byte of this response.
                    rparser.receive_data(b"")
                    nxt = rparser.next_event()
                    if isinstance(nxt, ResponseHead):
                        return nxt
                    return None
                rparser.receive_data(data)
                got_piece = True
                continue
            if isinstance(event, ResponseHead):
                return event
            if event is ConnectionClosed or isinstance(event, ConnectionClosed):
                return None
            raise ProtocolError("unexpected event before response head", 502)

    def _relay_request_body(self, sock, client_timeout) -> None:
        parser = self.parser
        client = self.client
        counters = self.fe.counters
        while True:
            try:
                event = parser.next_event()
            except ProtocolError as exc:
                raise _BadRequestBody(exc.status) from None
            if event is NEED_DATA:
                client.settimeout(client_timeout)
                try:
                    data = client.recv(RECV_SIZE)
                except socket.timeout:
                    raise _ClientTimeout() from None
                except OSError:
                    raise _ClientGone() from None
                if not data:
                    raise _ClientGone()
                counters.bytes_in += len(data)
                parser.receive_data(data)
                continue
            if type(event) is Data:
                try:
                    send_all(sock, event.data)
                except (OSError, socket.timeout):
                    raise _ServerGone() from None
                continue
            if event is EndOfMessage or isinstance(event, EndOfMessage):
                return
            raise _ClientGone()

    def _relay_response_body(self, sock, rparser) -> int:
        client = self.client
        sent = 0
        while True:
            try:
                event = rparser.next_event()
            except ProtocolError:
                self.be.counters.err_resp += 1
                raise _ServerGone() from None
            if event is NEED_DATA:
                try:
                    data = sock.recv(RECV_SIZE)
                except (OSError, socket.timeout):
                    raise _ServerGone() from None
                try:
                    rparser.receive_data(data)
                except ProtocolError:
                    raise _ServerGone() from None
                continue
            if type(event) is Data:
                try:
                    send_all(client, event.data)
                except (OSError, socket.timeout):
                    raise _ClientGone() from None
                sent += len(event.data)
                continue
            if event is EndOfMessage or isinstance(event, EndOfMessage):
                return sent
            raise _ServerGone()

    def _response_headers(self, response: ResponseHead, server, cookie_name, req_flag, keep_client, head):
        cookie_cfg = self.be.cfg.cookie
        resp_flag = "-"
        raw = response.raw
        if raw.count(b"\r") == raw.count(b"\n"):
            # CRLF line ends only (the parser refused any CR that does not
            # start a CRLF): the status line and the headers kept go out as
            # received, only the dropped and rewritten lines change; the usual
            # response is not re-serialised header by header.
            lines = raw.split(b"\r\n")
            del lines[-2:]  # the empty line's two empty strings
        else:  # bare LF line ends: every line is written anew, with CRLF
            lines = [b"%s %d %s" % (response.version, response.status, response.reason)]
            lines += [name + b": " + value for name, value in response.headers]
        out = [lines[0]]
        append = out.append
        dropped = self.dropped_response_headers
        rewrites = cookie_cfg is not None and cookie_cfg.mode in ("prefix", "rewrite") and server.cookie
        for lname, header, line in zip(response.lnames, response.headers, lines[1:]):  # lowercased by the parser
            if lname in dropped:
                continue
            if cookie_cfg is not None and lname == b"set-cookie":
                name, value = header
                if rewrites:
                    rewritten = rewrite_set_cookie(cookie_cfg, cookie_name, value, server.cookie)
                    if rewritten is not None:
                        append(name + b": " + rewritten)
                        resp_flag = "R"
                        continue
                elif cookie_cfg.mode == "insert" and not cookie_cfg.preserve and \
                        value.lstrip().startswith(cookie_name + b"="):
                    continue  # the server's own cookie of that name is replaced by ours
            append(line)
        if cookie_cfg is not None:
            if cookie_cfg.mode == "insert" and req_flag != "V" or (
                    cookie_cfg.mode == "insert" and req_flag == "V" and not cookie_cfg.indirect
                    and self._client_cookie_differs(head, server, cookie_name)):
                if not cookie_cfg.postonly or head.method == b"POST":
                    append(b"Set-Cookie: " + insert_cookie_value(cookie_cfg, cookie_name, server.cookie))
                    resp_flag = "I"
                    if cookie_cfg.nocache and not _has_private_cache(response):
                        append(b"Cache-Control: private")
            elif resp_flag == "-":
                resp_flag = "N"
        if self.hsts is not None:
            append(HSTS_HEADER + b": " + self.hsts)
        if keep_client:
            if head.version == b"HTTP/1.0":
                append(b"Connection: keep-alive")
        elif response.status != 101:
            append(b"Connection: close")
        else:
            append(b"Connection: upgrade")
        return resp_flag, join_head_lines(out)

    @staticmethod
    def _client_cookie_differs(head, server, cookie_name) -> bool:
        return False

    def _server_failed(self, server, rec, status, term, start_mono) -> None:
        be = self.be
        be.counters.count_status(status)
        server.counters.count_status(status)
        self._reject(rec, status, term, start_mono, got_bytes=True)
        be.release(server)

    def _tunnel(self, sock, rparser) -> int:
        """After 101 Switching Protocols: relay raw bytes both ways."""
        from gproxy.tunnel import pump_both_ways
        leftover_client = self.parser.take_trailing_data()
        leftover_server = rparser.take_trailing_data()
        timeout = self.timeouts.eff_tunnel / 1000.0
        return pump_both_ways(self.client, sock, timeout, leftover_client, leftover_server)[1]


class _ClientGone(Exception):
    pass


class _Park(Exception):
    """The kept-alive client is silent: end the greenlet, park the connection."""


class _ServerGone(Exception):
    pass


class _BadRequestBody(Exception):
    """The request body broke framing or the body limit; `status` is the answer (400, 413)."""

    def __init__(self, status: int = 400):
        super().__init__(status)
        self.status = status


class _ClientTimeout(Exception):
    pass


_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0D} | {0x7F}


def _in_network(ip: str, network) -> bool:
    """Is the client address `ip` in `network` (forwardfor's `except`)? Cached:
    a connection-per-request client asks on every request, and parsing the
    address costs more than the rest of the session's setup (ipaddress is
    pure Python)."""
    key = (ip, network)
    try:
        return _NETWORK_HITS[key]
    except KeyError:
        pass
    from ipaddress import ip_address
    try:
        inside = ip_address(ip) in network
    except ValueError:
        inside = False
    if len(_NETWORK_HITS) >= MAX_CACHED_CLIENT_ADDRESSES:
        _NETWORK_HITS.clear()  # a bound, not an LRU: many clients only cost the parse again
    _NETWORK_HITS[key] = inside
    return inside


MAX_CACHED_CLIENT_ADDRESSES = 4096
_NETWORK_HITS: dict[tuple, bool] = {}


def _buffered_body(rparser: ResponseParser) -> tuple[bytes, bool]:
    """The response body bytes already buffered after its head, and whether
    they end it (EndOfMessage consumed). A framing error is left for
    `_relay_response_body`, to which the parser raises it again."""
    try:
        event = rparser.next_event()
        if event is EndOfMessage:
            return b"", True
        if type(event) is not Data:
            return b"", False
        data = event.data
        if rparser.state == END:
            rparser.next_event()  # the EndOfMessage that follows
            return data, True
        return data, False
    except ProtocolError:
        return b"", False


def _origin_form(target: bytes) -> bytes:
    """The path and query of a request target (absolute-form loses its scheme and host)."""
    if target.startswith(b"/"):
        return target
    scheme, sep, rest = target.partition(b"://")
    if sep:
        slash = rest.find(b"/")
        return rest[slash:] if slash >= 0 else b"/"
    return b"/"


def _first_invalid_byte(data: bytes) -> int:
    """Where `show errors` points: the first control byte, else the start."""
    for index, byte in enumerate(data):
        if byte in _CONTROL:
            return index
    return 0


def _has_private_cache(response: ResponseHead) -> bool:
    for value in response.header_values(b"cache-control"):
        lowered = value.lower()
        if b"private" in lowered or b"no-cache" in lowered or b"no-store" in lowered:
            return True
    return False
