"""`gproxy` command line: check, run, ctl, convert (reload comes with the
operations issue). Exit 0 on success, 1 on a user error
with a one-line reason per problem, never a traceback for a user error."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from gproxy import __version__
from gproxy.errors import ConfigError, GproxyError

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


def _daemonize() -> None:
    """Classic double fork; the listeners are already bound."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def cmd_run(args) -> int:
    try:
        config = _load(args.file)
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return EXIT_USER_ERROR
    daemon = config.global_.daemon and not args.foreground
    import gevent
    from gproxy.proxy import Gproxy

    proxy = Gproxy(config, foreground=not daemon)
    try:
        proxy.bind()
    except GproxyError as exc:
        print(f"gproxy: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    if daemon:
        _daemonize()
        gevent.reinit()
    pidfile = args.pidfile or config.global_.pidfile
    if pidfile:
        with open(pidfile, "w", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")

    # Signal handlers only schedule work on the loop (never block in them).
    gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(proxy.stop, False))
    gevent.signal_handler(signal.SIGINT, lambda: gevent.spawn(proxy.stop, False))
    gevent.signal_handler(signal.SIGUSR1, lambda: gevent.spawn(proxy.stop, True))
    try:
        proxy.serve_forever()
    finally:
        if pidfile:
            try:
                os.unlink(pidfile)
            except OSError:
                pass
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
    p.add_argument("--foreground", "-f", action="store_true", help="stay in the foreground (overrides global.daemon)")
    p.add_argument("--pidfile", "-p")
    p.set_defaults(func=cmd_run)
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
