"""The floor of a gevent proxy: the least a relay can cost per keep-alive request.

It does no HTTP work at all: recv the client's request, send it on a
dedicated server connection, recv the answer (assumed to come in one read:
the bench's small responses), send it back. Two ways: a greenlet per
connection with gevent's sockets (how gproxy serves HTTP), or libev io
watchers and callbacks with plain sockets (how gproxy's TCP tunnel runs).
docs/performance.md, "The floor of a gevent proxy", has the figures; run it
under `wrk -t1 -c50` against an nginx origin and divide the process's CPU
time by the requests. A probe, not part of the product.

usage: python bench/floor_relay.py LISTEN_PORT ORIGIN_PORT [greenlet|loop]
"""
import sys
from gevent import socket, get_hub
from gevent.server import StreamServer

listen, origin = int(sys.argv[1]), int(sys.argv[2])
mode = sys.argv[3] if len(sys.argv) > 3 else "greenlet"

def handle(client, addr):
    server = socket.create_connection(("127.0.0.1", origin))
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            server.sendall(data)
            answer = server.recv(65536)
            client.sendall(answer)
    except OSError:  # wrk resets its connections at the end of a run
        pass
    finally:
        server.close()

if mode == "greenlet":
    StreamServer(("127.0.0.1", listen), handle, backlog=1024).serve_forever()
else:
    import socket as std
    loop = get_hub().loop
    lsock = std.socket(); lsock.setsockopt(std.SOL_SOCKET, std.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", listen)); lsock.listen(1024); lsock.setblocking(False)
    keep = set()
    class Conn:
        def __init__(self, c):
            self.c = c; c.setblocking(False); c.setsockopt(std.IPPROTO_TCP, std.TCP_NODELAY, 1)
            self.s = std.create_connection(("127.0.0.1", origin)); self.s.setblocking(False)
            self.s.setsockopt(std.IPPROTO_TCP, std.TCP_NODELAY, 1)
            self.cw = loop.io(c.fileno(), 1); self.sw = loop.io(self.s.fileno(), 1)
            self.cw.start(self.on_client); keep.add(self)
        def on_client(self):
            try:
                data = self.c.recv(65536)
            except BlockingIOError:
                return
            except OSError:  # wrk resets its connections at the end of a run
                data = b""
            if not data:
                self.cw.stop(); self.c.close(); self.s.close(); keep.discard(self); return
            self.s.send(data)
            self.cw.stop(); self.sw.start(self.on_server)
        def on_server(self):
            try:
                data = self.s.recv(65536)
            except BlockingIOError:
                return
            self.c.send(data)
            self.sw.stop(); self.cw.start(self.on_client)
    def on_accept():
        for _ in range(64):
            try:
                c, _a = lsock.accept()
            except BlockingIOError:
                return
            Conn(c)
    aw = loop.io(lsock.fileno(), 1); aw.start(on_accept)
    get_hub().join()
