"""Benchmark configurations: one layout rendered for nginx, HAProxy and gproxy (text only, no I/O).

Both proxies get the same three listeners in front of the same two nginx origins:

    spec_keepalive  the spec's listener (shared/spec/esup-proxy.toml) with its features on:
                    weights 256/128/1 and a backup, cookie JSESSIONID prefix, forwardfor,
                    OPTIONS health checks, httplog to a syslog over UDP; keep-alive both sides
    spec_close      the same in the spec's own `close` mode (option httpclose): one client
                    connection and one server connection per request
    tcp             mode tcp, roundrobin over the two origins, tcplog

with the same maxconn, timeouts and log target, so that the figures compare
the proxies and nothing else. The origins answer `200 ok` from memory with a
`Set-Cookie: JSESSIONID=...` (so the prefix rewrite runs on every response),
and serve BULK_PATH from a sparse file for the bulk transfer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MAXCONN = 10_000
# HAProxy refuses to start unless it may open about 2 descriptors per
# connection plus a few of its own; maxconn is lowered (for both proxies) to fit.
FDS_PER_CONNECTION = 2
FDS_RESERVED = 200
FDS_PER_PIPE = 2  # HAProxy's maxpipes defaults to maxconn / 4 when it splices
CONNECTIONS_PER_PIPE = 4
TIMEOUT_CONNECT = "5s"  # the spec's timeouts
TIMEOUT_CLIENT = "50s"
TIMEOUT_SERVER = "50s"
CHECK_INTER_MS = 5000  # the spec's `check inter 5000 rise 1 fall 3`
CHECK_RISE = 1
CHECK_FALL = 3
LOG_FACILITY = "local3"
# The spec excepts the proxy's own public address; a documentation address
# here, so that every loopback client gets its X-Forwarded-For.
FORWARDFOR_EXCEPT = "192.0.2.15"
COOKIE_NAME = "JSESSIONID"
# nginx answers every request from memory; a large keepalive_requests keeps it
# from closing proxy->origin connections every 1000 requests (its default),
# which would measure nginx's connection churn instead of the proxy.
NGINX_KEEPALIVE_REQUESTS = 10_000_000
NGINX_WORKER_CONNECTIONS = 4096
NGINX_BODY = "ok\n"
ORIGIN_COOKIE = f"{COOKIE_NAME}=0123456789ABCDEF; Path=/"
BULK_PATH = "/bulk"


@dataclass(frozen=True)
class Server:
    """One server line of the spec's listener, pointed at origin number `origin` (0-based)."""

    name: str
    origin: int
    cookie: str = ""
    weight: int = 1
    backup: bool = False


# The spec's four servers on two origins: the weights and the backup are what
# the balancer has to handle; which nginx answers does not matter.
SPEC_SERVERS = (
    Server("ents3", 0, "s3", 256),
    Server("ents2", 1, "s2", 128),
    Server("ents1", 0, "s1", 1),
    Server("ent-maintenance", 1, backup=True),
)

LISTENERS = ("spec_keepalive", "spec_close", "tcp")


@dataclass(frozen=True)
class Layout:
    """The loopback ports of one proxy: its listeners, the origins, the syslog sink."""

    origins: tuple[int, ...]  # nginx ports
    ports: dict[str, int]  # listener name -> port (the keys of LISTENERS)
    log_port: int  # UDP syslog sink
    host: str = "127.0.0.1"
    maxconn: int = MAXCONN

    def url(self, listener: str, path: str = "/") -> str:
        return f"http://{self.host}:{self.ports[listener]}{path}"


def maxconn_for(fd_limit: int, splice: bool = False) -> int:
    """The largest maxconn up to MAXCONN that a process with `fd_limit` descriptors can honour.

    With splicing, HAProxy also reserves a pipe (2 descriptors) per 4 connections.
    """
    per_connection = FDS_PER_CONNECTION + (FDS_PER_PIPE / CONNECTIONS_PER_PIPE if splice else 0)
    return max(1, min(MAXCONN, int((fd_limit - FDS_RESERVED) // per_connection)))


def nginx_conf(port: int, workdir: Path, tag: str, bulk_file: Path) -> str:
    """An nginx origin answering `200 ok` from memory and BULK_PATH from `bulk_file`.

    Every path it writes stays in `workdir`.
    """
    temp = workdir / tag  # nginx creates the last path component only
    return f"""# nginx origin {tag} for bench/run.py
worker_processes 1;
pid {workdir / (tag + '.pid')};
error_log {workdir / (tag + '-error.log')} warn;
events {{ worker_connections {NGINX_WORKER_CONNECTIONS}; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests {NGINX_KEEPALIVE_REQUESTS};
    client_body_temp_path {temp}-body;
    proxy_temp_path {temp}-proxy;
    fastcgi_temp_path {temp}-fastcgi;
    uwsgi_temp_path {temp}-uwsgi;
    scgi_temp_path {temp}-scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            add_header Set-Cookie {json.dumps(ORIGIN_COOKIE)};
            return 200 {json.dumps(NGINX_BODY)};
        }}
        location = {BULK_PATH} {{
            default_type application/octet-stream;
            alias {bulk_file};
        }}
    }}
}}
"""


def _haproxy_spec_listener(layout: Layout, name: str, close: bool) -> str:
    servers = ""
    for server in SPEC_SERVERS:
        address = f"{layout.host}:{layout.origins[server.origin]}"
        options = f" cookie {server.cookie} weight {server.weight}" if server.cookie else ""
        options += f" check inter {CHECK_INTER_MS} rise {CHECK_RISE} fall {CHECK_FALL}"
        options += " backup" if server.backup else ""
        servers += f"    server {server.name} {address}{options}\n"
    mode = "    option httpclose\n" if close else ""
    return f"""
listen {name}
    bind {layout.host}:{layout.ports[name]}
    balance roundrobin
    cookie {COOKIE_NAME} prefix
    option httpchk
    option forwardfor except {FORWARDFOR_EXCEPT}
{mode}{servers}"""


def haproxy_cfg(layout: Layout, nbthread: int, splice: bool = False) -> str:
    """The HAProxy 2.6 reference configuration (run with `haproxy -f FILE -db`).

    `splice` forces splicing on the tcp listener (HAProxy's default is not to
    splice; gproxy splices a direction whose reads fill its buffer).
    """
    splicing = "    option splice-request\n    option splice-response\n" if splice else ""
    tcp_servers = "".join(f"    server n{index} {layout.host}:{port}\n"
                          for index, port in enumerate(layout.origins, start=1))
    return f"""# HAProxy reference for bench/run.py
global
    maxconn {layout.maxconn}
    nbthread {nbthread}
    log {layout.host}:{layout.log_port} {LOG_FACILITY}

defaults
    log global
    mode http
    option httplog
    option dontlognull
    retries 3
    option redispatch
    maxconn {layout.maxconn}
    timeout connect {TIMEOUT_CONNECT}
    timeout client {TIMEOUT_CLIENT}
    timeout server {TIMEOUT_SERVER}
{_haproxy_spec_listener(layout, "spec_keepalive", close=False)}{_haproxy_spec_listener(layout, "spec_close", close=True)}
listen tcp
    mode tcp
    option tcplog
{splicing}    bind {layout.host}:{layout.ports["tcp"]}
    balance roundrobin
{tcp_servers}"""


def _gproxy_spec_listener(layout: Layout, name: str, close: bool) -> str:
    text = f"""
[listen.{name}]
bind = ["{layout.host}:{layout.ports[name]}"]
balance = "roundrobin"
cookie = {{ name = "{COOKIE_NAME}", mode = "prefix" }}
httpchk = {{ method = "OPTIONS", path = "/" }}
forwardfor = {{ except = "{FORWARDFOR_EXCEPT}" }}
connection_mode = "{'close' if close else 'keep-alive'}"
"""
    for server in SPEC_SERVERS:
        text += (f'\n[[listen.{name}.server]]\nname = "{server.name}"\n'
                 f'address = "{layout.host}:{layout.origins[server.origin]}"\n')
        if server.cookie:
            text += f'cookie = "{server.cookie}"\nweight = {server.weight}\n'
        text += f"check = true\ninter = {CHECK_INTER_MS}\nrise = {CHECK_RISE}\nfall = {CHECK_FALL}\n"
        text += "backup = true\n" if server.backup else ""
    return text


def gproxy_toml(layout: Layout, workers: int = 1) -> str:
    """The same configuration in gproxy's TOML (run with `gproxy run FILE --foreground`).
    `workers` > 1 compares with HAProxy's `nbthread` of the same number
    (each worker accepts from its own SO_REUSEPORT socket)."""
    tcp_servers = "".join(f'\n[[listen.tcp.server]]\nname = "n{index}"\naddress = "{layout.host}:{port}"\n'
                          for index, port in enumerate(layout.origins, start=1))
    return f"""# gproxy configuration for bench/run.py (the same as the HAProxy reference)
[global]
maxconn = {layout.maxconn}
workers = {workers}
log = [{{ target = "udp://{layout.host}:{layout.log_port}", facility = "{LOG_FACILITY}" }}]

[defaults]
mode = "http"
log = "global"
httplog = true
dontlognull = true
retries = 3
redispatch = true
maxconn = {layout.maxconn}
timeout = {{ connect = "{TIMEOUT_CONNECT}", client = "{TIMEOUT_CLIENT}", server = "{TIMEOUT_SERVER}" }}
{_gproxy_spec_listener(layout, "spec_keepalive", close=False)}{_gproxy_spec_listener(layout, "spec_close", close=True)}
[listen.tcp]
mode = "tcp"
httplog = false
tcplog = true
bind = ["{layout.host}:{layout.ports["tcp"]}"]
balance = "roundrobin"
{tcp_servers}"""
