"""Plain benchmark configurations (no logs, no checks) for bench/loads.py, tls.py, reload.py (text only, no I/O).

bench/run.py (issue 8's table) uses configs.py: the spec's features on.

Both proxies get the same two listeners in front of the same two nginx
origins: `bench` (HTTP, round-robin) and `bench_tcp` (TCP, round-robin), with
the same maxconn and timeouts and no logging, so that the figures compare the
proxies and nothing else.
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
TIMEOUT_CONNECT = "5s"
TIMEOUT_CLIENT = "30s"
TIMEOUT_SERVER = "30s"
# nginx answers every request from memory; a large keepalive_requests keeps it
# from closing proxy->origin connections every 1000 requests (its default),
# which would measure nginx's connection churn instead of the proxy.
NGINX_KEEPALIVE_REQUESTS = 10_000_000
NGINX_WORKER_CONNECTIONS = 4096
NGINX_BODY = "ok\n"


@dataclass(frozen=True)
class Layout:
    """The loopback ports of one proxy run."""

    origins: tuple[int, ...]  # nginx ports, servers n1, n2...
    http_port: int  # the proxy's HTTP listener
    tcp_port: int  # the proxy's TCP listener
    host: str = "127.0.0.1"
    maxconn: int = MAXCONN


def maxconn_for(fd_limit: int) -> int:
    """The largest maxconn up to MAXCONN that a process with `fd_limit` descriptors can honour."""
    return max(1, min(MAXCONN, (fd_limit - FDS_RESERVED) // FDS_PER_CONNECTION))


def nginx_conf(port: int, workdir: Path, tag: str) -> str:
    """An nginx origin answering `200 ok` from memory; every path it writes stays in `workdir`."""
    temp = workdir / tag  # nginx creates the last path component only
    return f"""# nginx origin {tag} for bench/run.py
worker_processes 1;
pid {workdir / (tag + '.pid')};
error_log {workdir / (tag + '-error.log')} warn;
events {{ worker_connections {NGINX_WORKER_CONNECTIONS}; }}
http {{
    access_log off;
    keepalive_requests {NGINX_KEEPALIVE_REQUESTS};
    client_body_temp_path {temp}-body;
    proxy_temp_path {temp}-proxy;
    fastcgi_temp_path {temp}-fastcgi;
    uwsgi_temp_path {temp}-uwsgi;
    scgi_temp_path {temp}-scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 {json.dumps(NGINX_BODY)}; }}
    }}
}}
"""


def haproxy_cfg(layout: Layout, nbthread: int) -> str:
    """The HAProxy 2.6 reference configuration (run with `haproxy -f FILE -db`)."""
    servers = "".join(f"    server n{index} {layout.host}:{port}\n"
                      for index, port in enumerate(layout.origins, start=1))
    return f"""# HAProxy reference for bench/run.py
global
    maxconn {layout.maxconn}
    nbthread {nbthread}

defaults
    mode http
    timeout connect {TIMEOUT_CONNECT}
    timeout client {TIMEOUT_CLIENT}
    timeout server {TIMEOUT_SERVER}

listen bench
    bind {layout.host}:{layout.http_port}
    balance roundrobin
{servers}
listen bench_tcp
    mode tcp
    bind {layout.host}:{layout.tcp_port}
    balance roundrobin
{servers}"""


def gproxy_toml(layout: Layout) -> str:
    """The same configuration in gproxy's TOML (run with `gproxy run FILE --foreground`)."""
    def servers(listener: str) -> str:
        return "".join(f'\n[[listen.{listener}.server]]\nname = "n{index}"\naddress = "{layout.host}:{port}"\n'
                       for index, port in enumerate(layout.origins, start=1))

    return f"""# gproxy configuration for bench/run.py (the same as the HAProxy reference)
[global]
maxconn = {layout.maxconn}

[defaults]
mode = "http"
timeout = {{ connect = "{TIMEOUT_CONNECT}", client = "{TIMEOUT_CLIENT}", server = "{TIMEOUT_SERVER}" }}

[listen.bench]
bind = ["{layout.host}:{layout.http_port}"]
balance = "roundrobin"
{servers("bench")}
[listen.bench_tcp]
mode = "tcp"
bind = ["{layout.host}:{layout.tcp_port}"]
balance = "roundrobin"
{servers("bench_tcp")}"""
