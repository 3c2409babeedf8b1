"""`heartbeat run`, and the commands that talk to a running node's status
socket (status, move, clear, standby, online, cleanup, maintenance, manage,
unmanage), plus `agents install` and `simulate`. Registered in
heartbeat.cli.COMMANDS."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from dataclasses import replace

from gsuite.durations import parse_duration
from heartbeat.errors import HeartbeatError

EXIT_OK = 0
EXIT_USER_ERROR = 1
CLIENT_TIMEOUT = 15.0


class SocketError(HeartbeatError):
    pass


def request(path: str, payload: dict, timeout: float = CLIENT_TIMEOUT) -> dict:
    """One request on a node's status socket; raises SocketError with a one-line reason."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise SocketError(f"{path}: no such socket (is the node running?)") from None
        except PermissionError:
            raise SocketError(f"{path}: permission denied") from None
        except OSError as exc:
            raise SocketError(f"{path}: {exc.strerror or exc}") from None
        sock.sendall(json.dumps(payload).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        raise SocketError(f"{path}: no answer within {timeout:.0f}s") from None
    finally:
        sock.close()
    try:
        answer = json.loads(data)
    except ValueError:
        raise SocketError(f"{path}: not a heartbeat status socket (invalid answer)") from None
    if not isinstance(answer, dict):
        raise SocketError(f"{path}: invalid answer")
    return answer


def node_paths(config, node: str):
    """`{node}` in status_socket, state_dir and resource parameters stands for
    the node's name, so several nodes can share one host (tests, `make demo`)
    without sharing sockets, state or the agents' pid and state files."""
    resources = tuple(
        replace(res, params=tuple((k, v.replace("{node}", node)) for k, v in res.params))
        for res in config.resources)
    return replace(config, status_socket=config.status_socket.replace("{node}", node),
                   state_dir=config.state_dir.replace("{node}", node), resources=resources)


# ---- run -------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from heartbeat.config.loader import load_file
    config = load_file(args.file)
    name = args.node or socket.gethostname()
    if config.node(name) is None:
        print(f"heartbeat: node {name!r} is not in {args.file} (use --node NAME)", file=sys.stderr)
        return EXIT_USER_ERROR
    config = node_paths(config, name)
    import signal

    import gevent
    import gevent.event

    from heartbeat.daemon import Node
    try:
        node = Node(config, name, ocf_root=args.ocf_root)
        node.start()
    except (HeartbeatError, OSError, RuntimeError) as exc:
        print(f"heartbeat: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    stopping = gevent.event.Event()

    def stop(graceful: bool) -> None:
        if not stopping.is_set():
            stopping.set()
            node.stop(stop_resources=graceful)

    # Signal handlers only schedule the stop on the loop.
    gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(stop, True))
    gevent.signal_handler(signal.SIGINT, lambda: gevent.spawn(stop, True))
    node._stop.wait()
    return EXIT_OK


def register_run(commands) -> None:
    parser = commands.add_parser("run", help="run this node of the cluster")
    parser.add_argument("file", metavar="FILE", help="the cluster file (TOML)")
    parser.add_argument("--node", help="this node's name (default: the host name)")
    parser.add_argument("--ocf-root", help="OCF root for ocf: agents (default /usr/lib/ocf)")
    parser.set_defaults(handler=cmd_run)


# ---- commands over the status socket ------------------------------------------

def _socket(args) -> str:
    from heartbeat.cli import socket_path
    path = socket_path(args)
    if "{node}" in path:
        node = getattr(args, "node_name", None) or socket.gethostname()
        path = path.replace("{node}", node)
    return path


def _send(args, payload: dict) -> int:
    answer = request(_socket(args), payload)
    if not answer.get("ok"):
        print(f"heartbeat: {answer.get('error', 'refused')}", file=sys.stderr)
        return EXIT_USER_ERROR
    return EXIT_OK


def cmd_status(args) -> int:
    from heartbeat.status import render_text
    doc = request(_socket(args), {"cmd": "status"})
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        sys.stdout.write(render_text(doc))
    return EXIT_OK


def cmd_move(args) -> int:
    payload = {"cmd": "move", "resource": args.resource, "node": args.node}
    if args.lifetime:
        try:
            payload["lifetime_ms"] = parse_duration(args.lifetime)
        except ValueError as exc:
            print(f"heartbeat: --lifetime: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
    return _send(args, payload)


def _simple(cmd: str, *fields: str):
    def handler(args) -> int:
        payload = {"cmd": cmd}
        for name in fields:
            payload[name] = getattr(args, name)
        return _send(args, payload)
    return handler


def cmd_maintenance(args) -> int:
    return _send(args, {"cmd": "maintenance", "on": args.state == "on"})


def _manage(on: bool):
    def handler(args) -> int:
        return _send(args, {"cmd": "manage", "resource": args.resource, "on": on})
    return handler


def register_socket_commands(commands) -> None:
    from heartbeat.cli import add_socket_options

    def add(name: str, help_text: str, handler, *positionals: tuple[str, str]) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        for arg, arg_help in positionals:
            if arg.endswith("?"):
                parser.add_argument(arg[:-1], nargs="?", help=arg_help)
            else:
                parser.add_argument(arg, help=arg_help)
        add_socket_options(parser)
        parser.add_argument("--on-node", dest="node_name", help="the node whose socket `{node}` names")
        parser.set_defaults(handler=handler)
        return parser

    status = add("status", "show nodes and resources (crm_mon -1 style)", cmd_status)
    status.add_argument("--json", action="store_true", help="print the status socket's JSON document")
    move = add("move", "move a resource or group to a node (cli-prefer)", cmd_move,
               ("resource", "resource or group"), ("node", "target node"))
    move.add_argument("--lifetime", help="how long the move constraint lasts (e.g. 10m)")
    add("clear", "remove a move constraint", _simple("clear", "resource"), ("resource", "resource or group"))
    add("standby", "put a node in standby (it gives its resources away)", _simple("standby", "node"),
        ("node", "node name"))
    add("online", "take a node out of standby", _simple("online", "node"), ("node", "node name"))
    add("cleanup", "forget a resource's failures (on one node or all)", _simple("cleanup", "resource", "node"),
        ("resource", "resource or group"), ("node?", "node (default: all)"))
    maint = add("maintenance", "cluster-wide maintenance mode", cmd_maintenance)
    maint.add_argument("state", choices=("on", "off"))
    add("unmanage", "leave a resource or group alone: monitored and reported, never started, stopped or "
        "recovered", _manage(False), ("resource", "resource or group"))
    add("manage", "manage a resource or group again", _manage(True), ("resource", "resource or group"))
    add("clear-split-brain", "forget a recorded split brain once it has been dealt with (every node)",
        _simple("clear-split-brain"))


# ---- agents, simulate ------------------------------------------------------------

def cmd_agents(args) -> int:
    from heartbeat.agents_install import install_agents
    try:
        installed = install_agents(args.ocf_root)
    except OSError as exc:
        print(f"heartbeat: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    for path in installed:
        print(path)
    return EXIT_OK


def register_agents(commands) -> None:
    parser = commands.add_parser("agents", help="install the shipped OCF agents (ocf:gproxy:*)")
    sub = parser.add_subparsers(dest="agents_command", required=True)
    install = sub.add_parser("install", help="copy ocf:gproxy:gproxy and ocf:gproxy:vip into an OCF root")
    install.add_argument("--ocf-root", default=os.environ.get("OCF_ROOT", "/usr/lib/ocf"))
    install.set_defaults(handler=cmd_agents)


def cmd_simulate(args) -> int:
    from heartbeat.policy import simulate
    argv = [args.case]
    return int(simulate.main(argv) or 0)


def register_simulate(commands) -> None:
    parser = commands.add_parser("simulate", help="run the policy engine on a case file (crm_simulate)")
    parser.add_argument("case", help="a policy case file (TOML)")
    parser.set_defaults(handler=cmd_simulate)
