"""gproxy: a gevent HTTP/TCP load balancer configured in TOML, after HAProxy."""

__version__ = "0.1.0"
