"""TCP mode: pick a server (with queueing, retries and redispatch), then
relay bytes both ways until both sides are done. Logged in tcplog format."""

from __future__ import annotations

import gevent

from gproxy.dispatch import acquire
from gproxy.http_proxy import MAX_TURNAROUND_MS
from gproxy.logfmt import RequestRecord
from gproxy.netio import ConnectFailed, close_quietly, connect
from gproxy.proxy_protocol import build_for_server
from gproxy.tunnel import relay


class TcpSession:
    # Set by the process layer after the PROXY header and TLS handshake.
    tls = False  # the client came over TLS (`~` after the frontend in logs)
    local_address: tuple[str, int] | None = None  # what the client connected to, else the socket's

    def __init__(self, ctx, frontend, client, address, log):
        self.ctx = ctx
        self.fe = frontend
        self.be = frontend.backend
        self.client = client
        self.address = address
        self.log = log
        self.stream = None  # set by the process layer: `show sess`, `shutdown sessions`

    def run(self) -> None:
        ctx = self.ctx
        clock = ctx.clock
        fe, be = self.fe, self.be
        rec = RequestRecord()
        rec.client_ip, rec.client_port = self.address[0], self.address[1]
        rec.accept_time = clock.wall()
        rec.frontend = fe.name + "~" if self.tls else fe.name  # HAProxy's %ft
        rec.backend = be.name if be else fe.name
        rec.server = "<NOSRV>"
        start = clock.mono()
        if be is None:
            rec.termination = "SC"
            self._log(rec, start)
            return
        cfg = be.cfg
        key = self.address[0].encode() if cfg.balance == "source" else None
        retries_left, retries, redispatched = cfg.retries, 0, False
        server, avoid = None, None
        sock = None
        queue_ms = 0
        while sock is None:
            t_q = clock.mono()
            server, status = acquire(be, server, key, avoid, rec, clock.wall())
            queue_ms += int((clock.mono() - t_q) * 1000)
            rec.t_queue = queue_ms
            if server is None:
                rec.termination = "sQ" if status == "queue-timeout" else "SC"
                self._log(rec, start)
                return
            rec.server = server.name
            t_c = clock.mono()
            try:
                sock = connect(server.host, server.port, cfg.timeouts.connect, server.tls, server.cfg.sni,
                               self._proxy_header(server))
            except ConnectFailed as exc:
                server.counters.err_conn += 1
                be.counters.err_conn += 1
                be.release(server)
                if retries_left <= 0:
                    rec.termination = "sC" if exc.timed_out else "SC"
                    rec.t_connect = -1
                    self._log(rec, start)
                    return
                retries_left -= 1
                retries += 1
                server.counters.retries += 1
                be.counters.retries += 1
                if cfg.redispatch and (retries_left == 0 or not server.usable):
                    avoid, server = server, None
                    if not redispatched:
                        redispatched = True
                        be.counters.redispatches += 1
                else:
                    gevent.sleep(min(cfg.timeouts.connect, MAX_TURNAROUND_MS) / 1000.0)
                continue
            rec.t_connect = int((clock.mono() - t_c) * 1000)
            if server.tls is not None:
                server.counters.ssl_sess += 1
        rec.retries, rec.redispatched = retries, redispatched
        stream = getattr(self, "stream", None)
        if stream is not None:
            stream.attach(server)
        try:
            # Tunnel inactivity: the client and server timeouts, as in HAProxy's TCP mode.
            timeout = max(fe.cfg.timeouts.client, cfg.timeouts.server) / 1000.0
            if cfg.timeouts.tunnel is not None:
                timeout = cfg.timeouts.tunnel / 1000.0
            result = relay(self.client, sock, timeout)
        finally:
            if stream is not None:
                stream.detach()
            close_quietly(sock)
            # Tw Tc and the session's whole time (no response time in TCP mode, as HAProxy).
            be.record_times(server, rec.t_queue, rec.t_connect, -1, int((clock.mono() - start) * 1000))
            be.release(server)
        rec.bytes_in = result.up
        rec.bytes_out = result.down
        for counters in (server.counters, be.counters):
            counters.bytes_in += result.up
            counters.bytes_out += result.down
        fe.counters.bytes_in += result.up
        fe.counters.bytes_out += result.down
        ctx.process.bytes_out += result.down
        if result.timed_out:
            rec.termination = "cD" if result.client_closed_first else "sD"
        elif result.error_side == "client":
            rec.termination = "CD"
            server.counters.cli_abrt += 1
        elif result.error_side == "server":
            rec.termination = "SD"
            server.counters.srv_abrt += 1
        else:
            rec.termination = "--"
        if not (fe.cfg.log.dontlognull and result.up == 0 and result.down == 0):
            self._log(rec, start)

    def _proxy_header(self, server) -> bytes:
        """The PROXY header a server with `send_proxy` gets first (b"" otherwise)."""
        if server.cfg.send_proxy is None:
            return b""
        local = self.local_address or self.client.getsockname()
        return build_for_server(server.cfg.send_proxy, (self.address[0], self.address[1]), (local[0], local[1]))

    def _log(self, rec: RequestRecord, start: float) -> None:
        rec.t_active = int((self.ctx.clock.mono() - start) * 1000)
        rec.actconn = self.ctx.process.cur_conns
        rec.feconn = self.fe.counters.cur
        rec.beconn = self.be.counters.cur if self.be else 0
        if self.log is not None:
            self.log(rec)
