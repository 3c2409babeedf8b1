"""`gproxy` command line: check, run, reload, ctl, convert. Exit 0 on
success, 1 on a user error with a one-line reason per problem, never a
traceback for a user error."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
import signal
import sys

from gproxy import __version__
from gproxy.errors import ConfigError

EXIT_OK = 0
EXIT_USER_ERROR = 1


def _load(path: str):
    from gproxy.config.loader import load_file
    return load_file(path)


def cmd_check(args) -> int:
    from gproxy.tls import build_contexts
    try:
        config = _load(args.file)
        build_contexts(config)  # certificates and keys must be readable and match
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return EXIT_USER_ERROR
    if args.dump:
        from gproxy.config.dump import dump
        sys.stdout.write(dump(config))
    elif not args.quiet:
        print(f"Configuration file is valid: {args.file} "
              f"({len(config.frontends)} frontends, {len(config.backends)} backends)")
    return EXIT_OK


def cmd_convert(args) -> int:
    """Print the TOML; list what was left out (line and reason) on stderr,
    which `--strict` makes an error (exit 1, no TOML)."""
    from gproxy.config.convert import convert_haproxy
    try:
        with open(args.file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{args.file}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    conversion = convert_haproxy(text, source=args.file)
    for where, reason in conversion.problems:
        print(f"{where}: {'error' if args.strict else 'not converted'}: {reason}", file=sys.stderr)
    if conversion.problems and args.strict:
        return EXIT_USER_ERROR
    sys.stdout.write(conversion.text)
    return EXIT_OK


def cmd_run(args) -> int:
    """A master (gproxy.master) that binds, then runs and supervises the workers."""
    try:
        config = _load(args.file)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return EXIT_USER_ERROR
    from gproxy.master_os import run_master
    # Absolute paths: a daemon works from /, and an upgrade runs this command line again.
    path = os.path.abspath(args.file)
    pidfile = os.path.abspath(args.pidfile) if args.pidfile else None
    if args.daemon:
        config = replace(config, global_=replace(config.global_, daemon=True))
    argv = (["run", path] + (["--foreground"] if args.foreground else []) + (["--daemon"] if args.daemon else [])
            + (["--pidfile", pidfile] if pidfile else []))
    return run_master(path, config, foreground=args.foreground, pidfile=pidfile, argv=argv)


def cmd_reload(args) -> int:
    """Check the configuration, then signal the running master (SIGHUP, or
    SIGUSR2 with --upgrade). The master checks it again and logs the outcome."""
    from gproxy.daemon import PidfileError, read_pidfile
    from gproxy.master_os import validate
    try:
        config = _load(args.file)
        validate(config)  # certificates and keys too, as the master will
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        print(f"gproxy reload: not reloading, {args.file} is not valid", file=sys.stderr)
        return EXIT_USER_ERROR
    pidfile = args.pidfile or config.global_.pidfile
    if not pidfile:
        print("gproxy reload: no pid file: give --pidfile or set global.pidfile", file=sys.stderr)
        return EXIT_USER_ERROR
    try:
        pid = read_pidfile(pidfile)
    except PidfileError as exc:
        print(f"gproxy reload: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    if pid is None:
        print(f"gproxy reload: {pidfile} names no running gproxy", file=sys.stderr)
        return EXIT_USER_ERROR
    sig = signal.SIGUSR2 if args.upgrade else signal.SIGHUP
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        print(f"gproxy reload: pid {pid} (from {pidfile}) is not running", file=sys.stderr)
        return EXIT_USER_ERROR
    except PermissionError:
        print(f"gproxy reload: not allowed to signal pid {pid} (from {pidfile})", file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"gproxy: {'upgrade' if args.upgrade else 'reload'} asked of master pid {pid}")
    return EXIT_OK


def cmd_ctl(args) -> int:
    """Send a runtime-API command to a stats socket and print the answer."""
    from gproxy.runtime_api.client import CtlError, pick_socket, send
    try:
        if args.socket:
            path = args.socket
        elif args.config:
            path = pick_socket(_load(args.config)).path
        else:
            raise CtlError("give the stats socket (-s SOCKET) or the configuration (-c CONFIG)")
        answer = send(path, " ".join(args.words))
    except ConfigError as exc:
        print(f"gproxy ctl: {exc.lines()[0]}", file=sys.stderr)
        return EXIT_USER_ERROR
    except CtlError as exc:
        print(f"gproxy ctl: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    sys.stdout.buffer.write(answer)
    sys.stdout.flush()
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gproxy", description="gevent HTTP/TCP load balancer")
    parser.add_argument("--version", action="version", version=f"gproxy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="validate a configuration file")
    p.add_argument("file")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--dump", action="store_true",
                   help="print the configuration as understood, as JSON (every default applied, durations in ms)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("run", help="run the load balancer")
    p.add_argument("file")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--foreground", "-f", action="store_true", help="stay in the foreground (overrides global.daemon)")
    mode.add_argument("--daemon", "-D", action="store_true",
                      help="go to the background once serving, as with global.daemon (for init scripts)")
    p.add_argument("--pidfile", "-p")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("reload", help="reload a running gproxy: check FILE, then SIGHUP its master")
    p.add_argument("file")
    p.add_argument("--pidfile", "-p", help="the master's pid file (default: global.pidfile)")
    p.add_argument("--upgrade", action="store_true",
                   help="re-execute the master (SIGUSR2): new program code, same sockets")
    p.set_defaults(func=cmd_reload)
    p = sub.add_parser("ctl", help="send a runtime API command to the stats socket (like socat)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("-s", "--socket", help="path of the stats socket")
    where.add_argument("-c", "--config", help="configuration file: use its most privileged stats socket")
    p.add_argument("words", nargs="+", metavar="COMMAND", help='e.g. show stat, or "show info; show backend"')
    p.set_defaults(func=cmd_ctl)
    p = sub.add_parser("convert", help="convert an HAProxy configuration to gproxy TOML")
    p.add_argument("file")
    p.add_argument("--strict", action="store_true",
                   help="a directive gproxy does not support is an error (default: listed on stderr)")
    p.set_defaults(func=cmd_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
