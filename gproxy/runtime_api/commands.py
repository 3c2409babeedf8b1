"""The runtime API's commands: their table (words, level, HAProxy's usage
line, handler), HAProxy's help text and error strings, and `execute()`.

Pure with respect to I/O: handlers read and change the live state through
`ProxyState` (runtime.py objects) and take `now` from the context; the only
side effects beyond that are the ones runtime.py performs (closing idle
server sockets, killing streams through their `kill` callables).

Access levels are HAProxy's: user < operator < admin. A command above the
connection's level answers `Permission denied`; `operator` and `user` lower
the level of the current connection. Unknown commands answer HAProxy's
usage text, with suggestions found the way HAProxy finds them (word
fingerprints, see `_fingerprint`).

Deliberate differences from HAProxy 2.6 (it accepts these and changes state):
`set server ... addr ... port N` outside 1..65535, a negative `set maxconn
server`, and a non-numeric `set maxconn frontend` are refused here with an
error line and change nothing (docs/runtime-api.md lists them).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Callable

from gproxy import __version__
from gproxy.config.model import Level
from gproxy.health import DisableChecks, EnableChecks, ForceHealth, SetAdmin
from gproxy.runtime import BackendRuntime, ServerRuntime, close_idle
from gproxy.runtime_api import reports, stat_csv
from gproxy.runtime_api.framing import Command
from gproxy.runtime_api.view import ProxyState, atoi, find_backend, find_frontend, find_proxy_id, find_server

LEVEL_RANK: dict[str, int] = {"user": 1, "operator": 2, "admin": 3}
MAX_WEIGHT = 256  # HAProxy's SRV_UWGHT_MAX
MAX_PERCENT = 25600  # relative weights are capped before scaling, as HAProxy does
MAX_MATCHES = 5  # HAProxy's CLI_MAX_MATCHES: suggestions for a near miss
PREFIX_WORDS = 5  # HAProxy's CLI_PREFIX_KW_NB: words of a command compared
MAX_PORT = 65535

PERMISSION_DENIED = "Permission denied\n"
NO_SUCH_BACKEND = "No such backend.\n"
NO_SUCH_SERVER = "No such server.\n"
NO_SUCH_FRONTEND = "No such frontend.\n"
NO_SUCH_PROXY = "No such proxy.\n"
REQUIRE_BACKEND_SERVER = "Require 'backend/server'.\n"
STATE_USAGE = "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
HEALTH_USAGE = "'set server <srv> health' expects 'up', 'stopping', or 'down'.\n"
SET_SERVER_USAGE = ("usage: set server <backend>/<server> addr | agent | agent-addr | agent-port | agent-send | "
                    "check-addr | check-port | fqdn | health | ssl | state | weight\n")
ADDR_USAGE = "set server <b>/<s> addr requires an address and optionally a port.\n"
WEIGHT_REQUIRED = "Require <weight> or <weight%>.\n"
WEIGHT_EMPTY = "Empty weight string empty or preceded by garbage"  # sic, and no newline, as HAProxy
WEIGHT_GARBAGE = "Trailing garbage in weight string"
WEIGHT_RELATIVE = "Relative weight must be positive.\n"
WEIGHT_ABSOLUTE = "Absolute weight can only be between 0 and 256 inclusive.\n"
WEIGHT_STATIC = "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
MAXCONN_REQUIRED = "Require <maxconn>.\n"
MAXCONN_EMPTY = "maxconn string empty or preceded by garbage"
MAXCONN_GARBAGE = "Trailing garbage in maxconn string"
OUT_OF_RANGE = "Value out of range.\n"
INTEGER_EXPECTED = "Integer value expected.\n"
EXPECTS_INTEGER = "Expects an integer value.\n"  # `set maxconn global` words it differently
FRONTEND_EXPECTED = "A frontend name is expected.\n"
HEALTH_NOT_CONFIGURED = "Health check was not configured on this server, cannot enable.\n"
CANT_FIND_BACKEND = "Can't find backend.\n"
BY_CLI = "by 'stats socket command'"

HELP_HEADER = "The following commands are valid at this level:\n"
UNKNOWN_HEADER = "Unknown command. Please enter one of the following commands only:\n"
NEAR_MISS_HEADER = "Unknown command, but maybe one of the following ones is a better match:\n"
ALWAYS_LISTED = (
    "  help [<command>]                        : list matching or all commands\n"
    "  prompt                                  : toggle interactive mode with prompt\n"
    "  quit                                    : disconnect\n"
)


class CliError(Exception):
    """Stop a command and answer `text` (HAProxy's message, newline included
    where HAProxy prints one)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


@dataclass
class Session:
    """One CLI connection: its current level and idle timeout."""

    level: Level
    timeout_ms: int
    ident: str = "0x0"  # how `show sess` names this connection


@dataclass
class Context:
    """What a handler gets: the state, the connection, the time, and a way
    to gather the process facts `show info` needs (I/O, done by the caller)."""

    state: ProxyState
    session: Session
    now: float
    facts: Callable[[], reports.ProcessFacts]


@dataclass(frozen=True)
class Outcome:
    """A command's answer; `action` asks the framing layer to toggle the
    prompt or to close ("prompt", "quit"). `ok` is False when the answer is
    an error (unknown command, permission, a refused argument): nothing changed."""

    text: str
    action: str = ""
    ok: bool = True


Handler = Callable[[Context, tuple[str, ...], "str | None"], str]


@dataclass(frozen=True)
class Keyword:
    words: tuple[str, ...]
    level: Level
    usage: str | None  # HAProxy's help line (None: not listed, like help/prompt/quit)
    run: Handler


# -- argument helpers -----------------------------------------------------------------------------------


def _arg(args: tuple[str, ...], index: int) -> str:
    return args[index] if index < len(args) else ""


def _require(ctx: Context, level: Level) -> None:
    if LEVEL_RANK[ctx.session.level] < LEVEL_RANK[level]:
        raise CliError(PERMISSION_DENIED)


def _server(ctx: Context, spec: str) -> ServerRuntime:
    """`<backend>/<server>`, each a name or `#<id>`, with HAProxy's errors."""
    backend_key, slash, server_key = spec.partition("/")
    if not slash or not server_key:
        raise CliError(REQUIRE_BACKEND_SERVER)
    backend = find_backend(ctx.state, backend_key)
    if backend is None:
        raise CliError(NO_SUCH_BACKEND)
    server = find_server(backend, server_key)
    if server is None:
        raise CliError(NO_SUCH_SERVER)
    return server


def _strtol(text: str) -> tuple[int | None, str]:
    """C's strtol(): (value or None if no digits, the rest of the string)."""
    i = 0
    while i < len(text) and text[i] in " \t\n\r\f\v":
        i += 1
    start = i
    if i < len(text) and text[i] in "+-":
        i += 1
    digits_start = i
    while i < len(text) and "0" <= text[i] <= "9":
        i += 1
    if i == digits_start:
        return None, text
    return int(text[start:i]), text[i:]


def parse_weight(text: str, initial: int, dynamic: bool) -> int:
    """HAProxy's weight argument: absolute 0..256, or `N%` of the initial
    weight (capped at 256). Static algorithms take only 0 or the initial weight."""
    if not text:
        raise CliError(WEIGHT_REQUIRED)
    value, rest = _strtol(text)
    if value is None:
        raise CliError(WEIGHT_EMPTY)
    if rest == "%":
        if value < 0:
            raise CliError(WEIGHT_RELATIVE)
        value = min(initial * min(value, MAX_PERCENT) // 100, MAX_WEIGHT)
    elif value < 0 or value > MAX_WEIGHT:
        raise CliError(WEIGHT_ABSOLUTE)
    elif rest:
        raise CliError(WEIGHT_GARBAGE)
    if value and value != initial and not dynamic:
        raise CliError(WEIGHT_STATIC)
    return value


def _apply(ctx: Context, server: ServerRuntime, event) -> None:
    server.apply(event, ctx.now)


# -- handlers ---------------------------------------------------------------------------------------------


def cmd_help(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    return usage_message(args, ctx.session.level)


def cmd_show_cli_level(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    return ctx.session.level + "\n"


def cmd_lower_level(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    wanted = args[0]
    _require(ctx, wanted)  # type: ignore[arg-type]  # a level can be lowered, never raised
    ctx.session.level = wanted  # type: ignore[assignment]
    return ""


# `set timeout cli <delay>`: seconds by default, HAProxy's time units otherwise.
_TIME_UNITS_MS = {"": 1000, "us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def cmd_set_timeout(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    if _arg(args, 2) != "cli":
        raise CliError("'set timeout' only supports 'cli'.\n")
    if not _arg(args, 3):
        raise CliError("Expects an integer value.\n")
    value, rest = _strtol(args[3])
    unit_ms = _TIME_UNITS_MS.get(rest)
    if value is None or unit_ms is None or value <= 0 or not args[3][:1].isdigit():
        raise CliError("Invalid timeout value.\n")
    ctx.session.timeout_ms = max(1, int(value * unit_ms))
    return ""


def cmd_show_info(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    options = args[2:]
    return reports.show_info(ctx.state, ctx.now, ctx.facts(), typed="typed" in options, as_json="json" in options)


def cmd_show_version(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    return __version__ + "\n"


def cmd_show_stat(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    iid = types = sid = -1
    first_option = 2
    if _arg(args, 2) and _arg(args, 3) and _arg(args, 4):
        # `show stat <iid|proxy> <type> <sid>`: HAProxy takes three words here
        # whatever they are, so `show stat typed up no-maint` is "No such proxy."
        iid = find_proxy_id(ctx.state, args[2])
        if iid == 0:
            raise CliError(NO_SUCH_PROXY)
        types, sid = atoi(args[3]), atoi(args[4])
        first_option = 5
    options = set(args[first_option:])
    filt = stat_csv.StatFilter(
        iid=iid, types=types, sid=sid, typed="typed" in options, json="json" in options,
        hide_down="up" in options, hide_maint="no-maint" in options,
        show_legends=LEVEL_RANK[ctx.session.level] >= LEVEL_RANK["operator"])
    return stat_csv.show_stat(ctx.state, ctx.now, filt)


def cmd_show_servers_state(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    name = _arg(args, 3) or None
    if name is not None and name.startswith("#"):
        backend = find_backend(ctx.state, name)
        name = backend.name if backend is not None else None
        if backend is None:
            raise CliError(CANT_FIND_BACKEND)
    text = reports.show_servers_state(ctx.state, ctx.now, name)
    if text is None:
        raise CliError(CANT_FIND_BACKEND)
    return text


def cmd_show_backend(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    return reports.show_backend(ctx.state)


def cmd_show_sess(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    wanted = _arg(args, 2)
    if wanted and wanted != "all":
        stream = _stream(ctx, wanted)
        if stream is None:
            raise CliError("Session not found.\n")
        return reports.show_sess_one(ctx.state, ctx.now, stream)
    return reports.show_sess(ctx.state, ctx.now, ctx.session.ident)


def _stream(ctx: Context, key: str):
    try:
        wanted = int(key, 16) if key.lower().startswith("0x") else int(key)
    except ValueError:
        return None
    return ctx.state.process.streams.get(wanted)


def cmd_shutdown_session(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    stream = _stream(ctx, _arg(args, 2))
    if stream is None:
        raise CliError("No such session (use 'show sess').\n")
    stream.kill()
    return ""


def cmd_show_errors(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    proxy = _arg(args, 2) or None
    which = "both"
    for word in args[2:]:
        if word in ("request", "response"):
            which = word
            if proxy == word:
                proxy = None
    text = reports.show_errors(ctx.state, ctx.now, proxy, which)
    if text is None:
        raise CliError(NO_SUCH_PROXY)
    return text


def cmd_get_weight(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    server = _server(ctx, _arg(args, 2))
    return f"{server.weight} (initial {server.initial_weight})\n"


def _set_weight(server: ServerRuntime, text: str) -> str:
    backend: BackendRuntime = server.backend
    weight = parse_weight(text, server.initial_weight, backend.balancer.dynamic)
    backend.set_weight(server, weight)
    return ""


def cmd_set_weight(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    server = _server(ctx, _arg(args, 2))
    return _set_weight(server, _arg(args, 3))


def cmd_disable_server(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    _apply(ctx, _server(ctx, _arg(args, 2)), SetAdmin("maint"))
    return ""


def cmd_enable_server(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    _apply(ctx, _server(ctx, _arg(args, 2)), SetAdmin("ready"))
    return ""


def cmd_disable_health(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    server = _server(ctx, _arg(args, 2))
    if server.health.check_configured:
        _apply(ctx, server, DisableChecks())
    return ""


def cmd_enable_health(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    server = _server(ctx, _arg(args, 2))
    if not server.health.check_configured:
        raise CliError(HEALTH_NOT_CONFIGURED)
    _apply(ctx, server, EnableChecks())
    return ""


def cmd_shutdown_sessions(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    _server(ctx, _arg(args, 3)).shutdown_sessions()
    return ""


def cmd_set_maxconn_server(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    server = _server(ctx, _arg(args, 3))
    text = _arg(args, 4)
    if not text:
        raise CliError(MAXCONN_REQUIRED)
    value, rest = _strtol(text)
    if value is None:
        raise CliError(MAXCONN_EMPTY)
    if rest:
        raise CliError(MAXCONN_GARBAGE)
    if value < 0:
        raise CliError(OUT_OF_RANGE)  # HAProxy 2.6 stores -1 as 4294967295; refused here
    server.maxconn = value
    server.backend.dequeue(server)  # a raised limit lets queued requests in now
    return ""


def cmd_set_maxconn_frontend(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    if not _arg(args, 3):
        raise CliError(FRONTEND_EXPECTED)
    frontend = find_frontend(ctx.state, args[3])
    if frontend is None:
        raise CliError(NO_SUCH_FRONTEND)
    text = _arg(args, 4)
    if not text:
        raise CliError(INTEGER_EXPECTED)
    value, rest = _strtol(text)
    if value is None or rest:
        raise CliError(INTEGER_EXPECTED)  # HAProxy 2.6 reads "abc" as 0; refused here
    if value < 0:
        raise CliError(OUT_OF_RANGE)
    frontend.maxconn = value
    return ""


def cmd_set_maxconn_global(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    """HAProxy 2.6's rules: atoi() of the value (so `abc` is 0), above
    Hard_maxconn is refused, 0 or less restores Hard_maxconn."""
    text = _arg(args, 3)
    if not text:
        raise CliError(EXPECTS_INTEGER)
    process = ctx.state.process
    value = atoi(text)
    if value > process.hard_maxconn:
        raise CliError(OUT_OF_RANGE)
    process.maxconn = value if value > 0 else process.hard_maxconn
    # HAProxy's dequeue_all_listeners(): acceptors stopped at the old limit
    # accept again now if the new one allows (Gproxy's Acceptors; the
    # in-memory states of the unit tests have none).
    for acceptor in getattr(ctx.state, "servers", ()):
        acceptor.resume()
    return ""


def cmd_clear_counters(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    everything = _arg(args, 2) == "all"
    if everything:
        _require(ctx, "admin")
    state = ctx.state
    counters = [fe.counters for fe in state.frontends.values()]
    for be in state.backends.values():
        counters.append(be.counters)
        counters.extend(srv.counters for srv in be.servers)
    for c in counters:
        current = c.cur  # a gauge, not a counter: live connections still end later
        c.clear(all_counters=everything)
        c.cur = current
    state.process.clear_rate_peaks()
    return ""


# `set server <b>/<s> <what> ...`

def _set_server_state(ctx: Context, server: ServerRuntime, args: tuple[str, ...]) -> str:
    state = _arg(args, 4)
    if state not in ("ready", "drain", "maint"):
        raise CliError(STATE_USAGE)
    _apply(ctx, server, SetAdmin(state))  # type: ignore[arg-type]
    return ""


def _set_server_health(ctx: Context, server: ServerRuntime, args: tuple[str, ...]) -> str:
    health = _arg(args, 4)
    if health not in ("up", "stopping", "down"):
        raise CliError(HEALTH_USAGE)
    _apply(ctx, server, ForceHealth(health))  # type: ignore[arg-type]
    return ""


def _set_server_weight(ctx: Context, server: ServerRuntime, args: tuple[str, ...]) -> str:
    return _set_weight(server, _arg(args, 4))


def _set_server_addr(ctx: Context, server: ServerRuntime, args: tuple[str, ...]) -> str:
    addr = _arg(args, 4)
    if not addr:
        raise CliError(ADDR_USAGE)
    try:
        new_host = str(ipaddress.ip_address(addr))
    except ValueError:
        raise CliError(f"Invalid addr '{addr}' {BY_CLI}\n") from None
    old_host, old_port = server.host, server.port
    same_host = new_host == old_host
    new_port = old_port
    if _arg(args, 5) == "port":
        text = _arg(args, 6)
        value, rest = _strtol(text)
        head = "no need to change the addr" if same_host else "IP not changed"
        if value is None or rest or not text[:1].isdigit():
            raise CliError(f"{head}, problem converting port '{text}' to an int {BY_CLI}\n")
        if not 1 <= value <= MAX_PORT:
            raise CliError(f"{head}, port '{text}' is out of range (1-{MAX_PORT}) {BY_CLI}\n")
        new_port = value
    # Everything was checked: apply both parts or nothing (HAProxy applies
    # the address even when the port is refused).
    parts = ["no need to change the addr" if same_host else f"IP changed from '{old_host}' to '{new_host}'"]
    if new_port != old_port:
        parts.append(f"port changed from '{old_port}' to '{new_port}'")
    if len(parts) > 1 or not same_host:
        server.host, server.port = new_host, new_port
        close_idle(server)  # kept-alive connections go to the old address
    return ", ".join(parts) + f" {BY_CLI}\n"


def _set_server_unsupported(ctx: Context, server: ServerRuntime, args: tuple[str, ...]) -> str:
    raise CliError(f"'set server <srv> {args[3]}' is not supported by gproxy.\n")


_SET_SERVER: dict[str, Callable[[Context, ServerRuntime, tuple[str, ...]], str]] = {
    "state": _set_server_state,
    "health": _set_server_health,
    "weight": _set_server_weight,
    "addr": _set_server_addr,
    **{what: _set_server_unsupported for what in (
        "agent", "agent-addr", "agent-port", "agent-send", "check-addr", "check-port", "fqdn", "ssl")},
}


def cmd_set_server(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    server = _server(ctx, _arg(args, 2))
    action = _SET_SERVER.get(_arg(args, 3))
    if action is None:
        raise CliError(SET_SERVER_USAGE)
    return action(ctx, server, args)


# -- the table --------------------------------------------------------------------------------------------

def _framing(ctx: Context, args: tuple[str, ...], payload: str | None) -> str:
    return ""  # prompt and quit: `execute` turns them into framing actions


KEYWORDS: tuple[Keyword, ...] = (
    Keyword(("help",), "user", None, cmd_help),
    Keyword(("prompt",), "user", None, _framing),
    Keyword(("quit",), "user", None, _framing),
    Keyword(("operator",), "user",
            "operator                                : lower the level of the current CLI session to operator",
            cmd_lower_level),
    Keyword(("user",), "user",
            "user                                    : lower the level of the current CLI session to user",
            cmd_lower_level),
    Keyword(("show", "cli", "level"), "user",
            "show cli level                          : display the level of the current CLI session",
            cmd_show_cli_level),
    Keyword(("set", "timeout"), "user",
            "set timeout [cli] <delay>               : change a timeout setting", cmd_set_timeout),
    Keyword(("show", "info"), "user",
            "show info [desc|json|typed|float]*      : report information about the running process",
            cmd_show_info),
    Keyword(("show", "version"), "user",
            "show version                            : show version of the current process", cmd_show_version),
    Keyword(("show", "stat"), "user",
            "show stat [desc|json|no-maint|typed|up]*: report counters for each proxy and server", cmd_show_stat),
    Keyword(("show", "servers", "state"), "user",
            "show servers state [<backend>]          : dump volatile server information "
            "(all or for a single backend)", cmd_show_servers_state),
    Keyword(("show", "backend"), "user",
            "show backend                            : list backends in the current running config",
            cmd_show_backend),
    Keyword(("get", "weight"), "user",
            "get weight <bk>/<srv>                   : report a server's current weight", cmd_get_weight),
    Keyword(("show", "sess"), "operator",
            "show sess [id]                          : report the list of current sessions or dump this exact "
            "session", cmd_show_sess),
    Keyword(("show", "errors"), "operator",
            "show errors [<px>] [request|response]   : report last request and/or response errors for each proxy",
            cmd_show_errors),
    Keyword(("clear", "counters"), "operator",
            "clear counters [all]                    : clear max statistics counters (or all counters)",
            cmd_clear_counters),
    Keyword(("disable", "server"), "admin",
            "disable server (DEPRECATED)             : disable a server for maintenance (use 'set server' instead)",
            cmd_disable_server),
    Keyword(("enable", "server"), "admin",
            "enable server  (DEPRECATED)             : enable a disabled server (use 'set server' instead)",
            cmd_enable_server),
    Keyword(("disable", "health"), "admin",
            "disable health                          : disable health checks", cmd_disable_health),
    Keyword(("enable", "health"), "admin",
            "enable health                           : enable health checks", cmd_enable_health),
    Keyword(("set", "server"), "admin",
            "set server <bk>/<srv> [opts]            : change a server's state, weight, address or ssl",
            cmd_set_server),
    Keyword(("set", "weight"), "admin",
            "set weight <bk>/<srv>  (DEPRECATED)     : change a server's weight (use 'set server' instead)",
            cmd_set_weight),
    Keyword(("set", "maxconn", "server"), "admin",
            "set maxconn server <bk>/<srv>           : change a server's maxconn setting", cmd_set_maxconn_server),
    Keyword(("set", "maxconn", "frontend"), "admin",
            "set maxconn frontend <frontend> <value> : change a frontend's maxconn setting",
            cmd_set_maxconn_frontend),
    Keyword(("set", "maxconn", "global"), "admin",
            "set maxconn global <value>              : change the per-process maxconn setting",
            cmd_set_maxconn_global),
    Keyword(("shutdown", "sessions", "server"), "admin",
            "shutdown sessions server <bk>/<srv>     : kill sessions on a server", cmd_shutdown_sessions),
    Keyword(("shutdown", "session"), "admin",
            "shutdown session [id]                   : kill a specific session", cmd_shutdown_session),
)


def find_keyword(words: tuple[str, ...], keywords: tuple[Keyword, ...] = KEYWORDS) -> Keyword | None:
    """The first keyword whose words all start the command (HAProxy's cli_find_kw)."""
    for keyword in keywords:
        size = len(keyword.words)
        if words[:size] == keyword.words:
            return keyword
    return None


# -- help and near misses (HAProxy's cli_gen_usage_msg) ----------------------------------------------------


def _fingerprint(words) -> dict[tuple[int, int], int]:
    """Counts of character-class transitions across `words` (begin, a..z,
    digit, other, end), so that similar words have close fingerprints."""
    counts: dict[tuple[int, int], int] = {}
    for word in words:
        previous = 28  # word start
        for char in word.lower():
            if "a" <= char <= "z":
                current = ord(char) - 96
            elif "0" <= char <= "9":
                current = 27
            else:
                current = 28
            counts[(previous, current)] = counts.get((previous, current), 0) + 1
            previous = current
        counts[(previous, 28)] = counts.get((previous, 28), 0) + 1  # word end
    return counts


def _distance(a: dict, b: dict) -> int:
    return sum(abs(a.get(key, 0) - b.get(key, 0)) for key in a.keys() | b.keys())


def _matching_words(keyword: Keyword, args: tuple[str, ...]) -> int:
    count = 0
    for index, word in enumerate(keyword.words[:PREFIX_WORDS]):
        if index >= len(args) or not args[index] or args[index] != word:
            break
        count += 1
    return count


def usage_message(args: tuple[str, ...], level: str, keywords: tuple[Keyword, ...] = KEYWORDS) -> str:
    """HAProxy's help text: for `help [words]`, an empty line, an unknown
    command or a near miss. Lists the commands visible at `level` that
    share the longest run of leading words, or the closest ones."""
    ishelp = bool(args) and args[0] == "help"
    if ishelp:
        args = args[1:]
    visible = [k for k in keywords if k.usage is not None]
    length = max((_matching_words(k, args) for k in visible), default=0)
    if ishelp:
        header = HELP_HEADER
    elif not length and not (args and args[0]):
        header = UNKNOWN_HEADER
    else:
        header = NEAR_MISS_HEADER
    entries: list[Keyword] = []
    if length < len(args) and args[length]:
        # Rank the commands that match the first `length` words by how
        # close their remaining words are to what was typed.
        typed = args[length:PREFIX_WORDS]
        typed_print = _fingerprint(typed)
        typed_len = sum(len(word) for word in typed)
        best: list[tuple[int, Keyword]] = []
        for keyword in visible:
            if keyword.words[:length] != args[:length] or len(keyword.words) < length:
                continue
            rest = keyword.words[length:PREFIX_WORDS]
            total = typed_len + sum(len(word) for word in rest)
            distance = _distance(typed_print, _fingerprint(rest))
            if distance < 5 * total // 2 and (len(best) < MAX_MATCHES or distance < best[-1][0]):
                best.append((distance, keyword))
                best.sort(key=lambda item: item[0])  # stable: earlier keywords win ties
                del best[MAX_MATCHES:]
        if best:
            cutoff = 5 * best[0][0] // 2  # drop unlikely candidates
            entries = [keyword for distance, keyword in best if distance <= cutoff]
    if not entries:
        entries = [k for k in visible if k.words[:length] == args[:length] and len(k.words) >= length]
    lines = sorted(k.usage for k in entries if k.usage is not None)
    return header + "".join(f"  {line}\n" for line in lines) + ALWAYS_LISTED


# -- running a command -------------------------------------------------------------------------------------


def execute(ctx: Context, command: Command) -> Outcome:
    """Run one command line; never raises for bad input (it answers it)."""
    words = command.words
    keyword = find_keyword(words) if words else None
    if keyword is None:
        return Outcome(usage_message(words, ctx.session.level), ok=False)
    if keyword.words in (("prompt",), ("quit",)):
        return Outcome("", keyword.words[0])
    try:
        _require(ctx, keyword.level)
        return Outcome(keyword.run(ctx, words, command.payload))
    except CliError as exc:
        return Outcome(exc.text, ok=False)


# -- several workers ---------------------------------------------------------------------------------------

# The commands that change what every worker must agree on (server states,
# weights, addresses, limits, counters): with workers > 1, the worker that ran
# one successfully relays it to its siblings (gproxy.worker). The others stay
# with the worker that answers: reports (`show ...`), the connection's own
# settings (`set timeout`, `operator`), and `shutdown session <id>` (stream
# ids are per worker).
RELAYED: frozenset[tuple[str, ...]] = frozenset({
    ("disable", "server"),
    ("enable", "server"),
    ("disable", "health"),
    ("enable", "health"),
    ("set", "server"),
    ("set", "weight"),
    ("set", "maxconn", "server"),
    ("set", "maxconn", "frontend"),
    ("set", "maxconn", "global"),
    ("shutdown", "sessions", "server"),
    ("clear", "counters"),
})
_ESCAPED = frozenset(" \t\\;")  # what split_words (and the `;` line cut) would otherwise take apart


def relayed(command: Command, outcome: Outcome) -> bool:
    """Whether `command`, answered by `outcome`, must reach the other workers."""
    if not outcome.ok or outcome.action or not command.words:
        return False
    keyword = find_keyword(command.words)
    return keyword is not None and keyword.words in RELAYED


def relay_line(words: tuple[str, ...]) -> str:
    """One command line that split_words() reads back as `words` (the raw
    line may have been cut by `;` or had its words from a payload)."""
    return " ".join("".join("\\" + char if char in _ESCAPED else char for char in word) for word in words)
