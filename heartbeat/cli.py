"""The `heartbeat` command line: one subcommand per job.

Exit status 0 on success, 1 on a user error (a bad file, a bad argument, a
refused command) with one line per problem on stderr, never a traceback for
a user error (DESIGN.md). Only bugs propagate.

Adding a subcommand (run, status, move, clear, standby, online, cleanup,
maintenance, agents, simulate...):

1. In your own module, write `register(commands: SubParsers) -> None`: it
   calls `commands.add_parser(NAME, help=...)`, adds its arguments and sets
   `handler=` a function `(args: argparse.Namespace) -> int` (the exit status)
   with `set_defaults`. Commands that talk to a running node call
   `add_socket_options(parser)` and get the socket with `socket_path(args)`.
2. Import heavy things (gevent, sockets) inside the handler, not at module
   level, so that `heartbeat check` stays quick and free of side effects.
3. Append your `register` to `COMMANDS` below (one import, one list item).

A handler may raise heartbeat.errors.HeartbeatError: main() prints it on one
line (a ConfigError one line per problem) and exits 1. `build_parser()`
builds the whole parser; `commands_of(parser)` returns its subparsers
object, for code that wants to add a command to a parser it built itself.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable, NoReturn, cast

from heartbeat import __version__, cli_node
from heartbeat.config.loader import load_file, summary, warnings_for
from heartbeat.config.schema import CLUSTER
from heartbeat.errors import ConfigError, HeartbeatError

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
EXIT_USER_ERROR = 1

Handler = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error; the suite's user errors exit 1."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


# --- helpers for the commands that talk to a running node ---------------------------


def add_socket_options(parser: argparse.ArgumentParser) -> None:
    """`-s SOCKET | -c FILE`: the node's status socket, or the cluster file that names it."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-s", "--socket", metavar="SOCKET", help="the node's status socket")
    where.add_argument("-c", "--config", metavar="FILE", help="take the status socket from this cluster file")


def socket_path(args: argparse.Namespace) -> str:
    """The socket chosen by `add_socket_options` (default: the schema's
    status_socket). Raises ConfigError if `-c FILE` does not load."""
    if getattr(args, "socket", None):
        return str(args.socket)
    if getattr(args, "config", None):
        return load_file(args.config).status_socket
    return str(CLUSTER["status_socket"].default)


# --- check ----------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    try:
        config = load_file(args.file)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return EXIT_USER_ERROR
    for line in warnings_for(config):
        print(f"warning: {line}", file=sys.stderr)
    if not args.quiet:
        print(f"{args.file}: configuration is valid ({summary(config)})")
    return EXIT_OK


def register_check(commands: "SubParsers") -> None:
    parser = commands.add_parser(
        "check", help="validate a cluster file",
        description="Validate a cluster file and print every problem as `key.path: reason`; "
                    "warn (exit 0) when the auth key file is missing or open to others.")
    parser.add_argument("file", metavar="FILE", help="the cluster file (TOML)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print nothing when the file is valid")
    parser.set_defaults(handler=cmd_check)


# The subcommands, in the order `heartbeat --help` lists them.
COMMANDS: list[Callable[["SubParsers"], None]] = [
    register_check,
    cli_node.register_run,
    cli_node.register_socket_commands,
    cli_node.register_agents,
    cli_node.register_simulate,
]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="heartbeat", description="Failover cluster manager (Heartbeat + Pacemaker) "
                                                   "for 2 to 16 nodes.")
    parser.add_argument("--version", action="version", version=f"heartbeat {__version__}")
    # Subparsers inherit _Parser (argparse uses the parent's class), hence exit 1 on their usage errors too.
    commands = cast("SubParsers", parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    for register in COMMANDS:
        register(commands)
    return parser


def commands_of(parser: argparse.ArgumentParser) -> "SubParsers":
    """The subparsers object of a parser made by `build_parser()`."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError("this parser has no subcommands")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version (0), usage errors (1)
        if exc.code is None:
            return EXIT_OK
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return EXIT_USER_ERROR
    except HeartbeatError as exc:
        print(f"heartbeat: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
