"""`make demo`: the seed's load balancer on loopback, with its four servers.

Starts four demo backends (ents3, ents2, ents1 and the maintenance server),
gproxy with the embedded copy of the seed's configuration (addresses
rewritten to 127.0.0.1, short check timers, the maintenance server as
backup), and a syslog receiver that writes gproxy's log to a file. Prints
what to try, and stops everything cleanly on Ctrl-C.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "esup-proxy.toml"
PREFERRED_FRONTEND_PORT = 8080


def _port(preferred: int | None = None) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred or 0))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _syslog_receiver(path: Path) -> tuple[int, threading.Thread]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def loop() -> None:
        with open(path, "ab", buffering=0) as out:
            while True:
                data = sock.recv(65536)
                out.write(data if data.endswith(b"\n") else data + b"\n")

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return sock.getsockname()[1], thread


def build_config(text: str, frontend_port: int, backend_ports: dict[str, int], log_port: int, workdir: Path) -> str:
    """Rewrite the seed's addresses to loopback and shorten the timers."""
    text = text.replace("udp://192.0.2.14:514", f"udp://127.0.0.1:{log_port}")
    text = text.replace('"192.0.2.15:80"', f'"127.0.0.1:{frontend_port}"')
    text = text.replace('except = "192.0.2.15"', 'except = "127.0.0.2"')
    for old, port in backend_ports.items():
        text = text.replace(f'"{old}"', f'"127.0.0.1:{port}"')
    text = re.sub(r'inter = ("5s"|5000)', 'inter = "1s"', text)
    text = text.replace('path = "/run/gproxy/admin.sock"', f'path = "{workdir}/admin.sock"')
    # The demo runs as whoever starts it: no chroot, no change of user (those need root).
    text = re.sub(r'(?m)^(chroot|user|group) = .*\n', "", text)
    # The stats page (with its admin buttons) and the Prometheus endpoint.
    text = text.replace('connection_mode = "close"', 'connection_mode = "close"\n'
                        'stats = { uri = "/gproxy?stats", auth = ["admin:demo"], admin = true, refresh = "5s" }\n'
                        'prometheus = { uri = "/metrics" }', 1)
    return text


CLUSTER = """\
[cluster]
name = "demo"
keepalive = "200ms"
warntime = "500ms"
deadtime = "1s"
initdead = "2s"
auth_key_file = "{workdir}/authkey"
status_socket = "{workdir}/{{node}}.sock"
state_dir = "{workdir}/state-{{node}}"

[[node]]
name = "demo-1"
addresses = ["127.0.0.1:{port1}"]

[[node]]
name = "demo-2"
addresses = ["127.0.0.1:{port2}"]

[[resource]]
id = "proxy"
agent = "ocf:gproxy:gproxy"
params = {{ config = "{config}", gproxy = "{gproxy}", pidfile = "{workdir}/gproxy.pid", socket = "{workdir}/admin.sock" }}
monitor = {{ interval = "2s", timeout = "10s" }}

[[constraint]]
kind = "location"
resource = "proxy"
node = "demo-1"
score = 100
"""


def write_cluster(workdir: Path, config_path: Path) -> Path:
    authkey = workdir / "authkey"
    authkey.write_text("auth 1\n1 sha256 demo-only-secret\n")
    authkey.chmod(0o600)
    gproxy = Path(sys.executable).parent / "gproxy"
    path = workdir / "cluster.toml"
    path.write_text(CLUSTER.format(workdir=workdir, port1=_udp_port(), port2=_udp_port(), config=config_path,
                                   gproxy=gproxy))
    return path


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_cluster(sock_path: Path, timeout: float = 30.0) -> str | None:
    """`heartbeat status` once gproxy runs, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = subprocess.run([sys.executable, "-m", "heartbeat", "status", "-s", str(sock_path)],
                                capture_output=True, text=True)
        if result.returncode == 0 and "Started" in result.stdout:
            return result.stdout
        time.sleep(0.3)
    return None


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="gproxy-demo-"))
    log_path = workdir / "gproxy.log"
    log_path.touch()
    log_port, _ = _syslog_receiver(log_path)
    names = {"192.0.2.16:80": "ents3", "192.0.2.17:80": "ents2", "192.0.2.18:80": "ents1",
             "192.0.2.19:80": "ent-maintenance"}
    ports = {old: _port() for old in names}
    frontend_port = _port(PREFERRED_FRONTEND_PORT)
    children: list[subprocess.Popen] = []
    try:
        for old, name in names.items():
            proc = subprocess.Popen([sys.executable, "-m", "gproxy.demo.backend", "--listen",
                                     f"127.0.0.1:{ports[old]}", "--name", name],
                                    stdout=subprocess.PIPE, text=True)
            children.append(proc)
            proc.stdout.readline()  # "ready ..."
        config_path = workdir / "esup-proxy.toml"
        config_path.write_text(build_config(DEFAULT_CONFIG.read_text(), frontend_port, ports, log_port, workdir))
        cluster_path = write_cluster(workdir, config_path)
        nodes = []
        for node in ("demo-1", "demo-2"):
            log = open(workdir / f"{node}.log", "ab")
            nodes.append(subprocess.Popen([sys.executable, "-m", "heartbeat", "run", str(cluster_path),
                                           "--node", node], stdout=log, stderr=log))
        children.extend(nodes)
        status = wait_for_cluster(workdir / "demo-2.sock")
        if status is None:
            print(f"the cluster did not start gproxy; see {workdir}/demo-*.log", file=sys.stderr)
            return 1
        url = f"http://127.0.0.1:{frontend_port}/"
        hb = f"{sys.executable} -m heartbeat"
        print(f"""
gproxy demo is running: the seed's configuration on loopback, gproxy kept
running by a two-node heartbeat cluster (demo-1 preferred) through its OCF agent.

  Try:        curl -i {url}
              curl -i '{url}setcookie?name=JSESSIONID&value=abc'   (the cookie comes back prefixed: s3~abc)
              curl -i {url}echo -H 'Cookie: JSESSIONID=s2~xyz'     (persistence to ents2, which sees xyz)
  Weights:    for i in $(seq 385); do curl -s {url}; done | sort | uniq -c
  Stats page: http://admin:demo@127.0.0.1:{frontend_port}/gproxy?stats   (drain/maint buttons; ;csv for CSV)
  Metrics:    curl -s {url}metrics
  Log:        tail -f {log_path}
  Stats:      {sys.executable} -m gproxy ctl -s {workdir}/admin.sock 'show stat'
  Cluster:    {hb} status -s {workdir}/demo-1.sock
              {hb} move proxy demo-2 -s {workdir}/demo-1.sock   (then: clear proxy)
  Config:     {config_path}, {cluster_path}
  Backends:   {', '.join(f'{n}=127.0.0.1:{ports[o]}' for o, n in names.items())}
  Failover:   kill the ents* backends (see `ps`); the maintenance server takes over.

Ctrl-C stops everything.

{status}""", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        while all(node.poll() is None for node in nodes):
            time.sleep(0.5)
        print("a cluster node exited; see its log in " + str(workdir), file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(children):
            if proc.poll() is None:
                proc.terminate()
        for proc in children:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        print("demo stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
