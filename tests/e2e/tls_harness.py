"""TLS pieces of the end-to-end tests: self-signed certificates made by openssl, stunnel4 in
front of a port, and gproxy's stats socket (`show stat`) for the counters the TLS and PROXY
protocol tests read."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from harness import free_port, recv_all, stop_process, wait_port

IO_TIMEOUT = 10.0


def make_cert(directory: Path, name: str, cn: str) -> Path:
    """The brief's recipe: `openssl req -x509 -newkey rsa:2048 -nodes ...`, combined PEM."""
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                    "-days", "1", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    pem = directory / f"{name}.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    return pem


def wait_stats_socket(path: str, timeout: float = IO_TIMEOUT) -> None:
    """Listening ports may be bound (by the master) before a worker serves the stats socket."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.connect(path)
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"no stats socket at {path}")


def show_stat(path: str) -> dict[tuple[str, str], dict[str, str]]:
    """`show stat` through the stats socket, by (pxname, svname)."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.connect(path)
        sock.sendall(b"show stat\n")
        text = recv_all(sock).decode()
    lines = [line for line in text.splitlines() if line]
    header = lines[0].lstrip("# ").split(",")
    rows = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        rows[(row["pxname"], row["svname"])] = row
    return rows


class Stunnel:
    """stunnel4 in server mode: TLS on `port`, clear text to `connect`."""

    def __init__(self, workdir: Path, cert: Path, connect: int, options: str = ""):
        self.port = free_port()
        self.config = workdir / f"stunnel-{self.port}.conf"
        self.config.write_text(f"foreground = yes\npid =\ndebug = 3\n[svc]\naccept = 127.0.0.1:{self.port}\n"
                               f"connect = 127.0.0.1:{connect}\ncert = {cert}\n{options}")
        self.proc = subprocess.Popen(["stunnel", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)

    def stop(self) -> None:
        stop_process(self.proc)
