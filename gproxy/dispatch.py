"""Getting a request a slot on a server: persistence, balancing, queueing.

Shared by the HTTP and TCP layers. A server at its maxconn makes requests
wait, FIFO, in its own queue (persistent requests) or the backend's queue
(the others), for at most `timeout.queue`; then the caller answers 503.
"""

from __future__ import annotations

import gevent
from gevent.event import AsyncResult

from gproxy.runtime import BackendRuntime, ServerRuntime

OK = "ok"
NO_SERVER = "no-server"
QUEUE_TIMEOUT = "queue-timeout"


def acquire(be: BackendRuntime, server: ServerRuntime | None, key: bytes | None,
            avoid: ServerRuntime | None, rec, now: float) -> tuple[ServerRuntime | None, str]:
    """A slot on `server` (persistence) or on a balanced server; queue if full."""
    if server is not None:
        if not server.health.usable_for_persistent:
            server = None
        elif not server.is_full:
            be.take_slot(server, now)
            return server, OK
        else:
            return wait_in_queue(be, server, rec)
    picked, must_queue = be.pick(key, avoid)
    if picked is None and not must_queue and avoid is not None:
        picked, must_queue = be.pick(key, None)
    if picked is not None:
        be.take_slot(picked, now)
        return picked, OK
    if must_queue:
        return wait_in_queue(be, None, rec)
    return None, NO_SERVER


def wait_in_queue(be: BackendRuntime, server: ServerRuntime | None, rec) -> tuple[ServerRuntime | None, str]:
    if server is not None and server.maxqueue and len(server.queue) >= server.maxqueue:
        # A full server queue sends the request to the backend queue instead.
        server = None
    waiter = AsyncResult()
    position = be.enqueue(waiter, server)
    if server is not None:
        rec.srv_queue = position
    else:
        rec.backend_queue = position
    try:
        got = waiter.get(timeout=be.cfg.timeouts.eff_queue / 1000.0)
    except gevent.Timeout:
        be.cancel(waiter, server)
        # A slot may have been handed over at the very last moment.
        if waiter.ready() and waiter.value is not None:
            return waiter.value, OK
        return None, QUEUE_TIMEOUT
    if got is None:
        return None, NO_SERVER
    return got, OK
