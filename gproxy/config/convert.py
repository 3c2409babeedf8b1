"""`gproxy convert`: HAProxy configuration -> gproxy TOML, and back.

Simple directives are found through their declaration in schema.py (each
setting's `haproxy` spelling and older `aliases`, e.g. `contimeout`), and
their arguments read by the setting's type; directives whose syntax has
arguments of their own (bind, log, balance, cookie, option httpchk, option
forwardfor, server lines...) have a handler here. Anything else is collected
with its line number and a reason: `convert_haproxy` returns the TOML of what
it understood together with that list (`gproxy convert` prints the list on
stderr), `haproxy_to_toml` raises it as one ConfigError (`--strict`). Either
way a conversion never drops a directive silently.

`toml_to_haproxy` writes a loaded `Config` back as haproxy.cfg, so that
HAProxy itself (`haproxy -c -f`) can cross-check what gproxy understood.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable

import tomli_w

from gproxy.config.model import (
    BackendConfig,
    BindConfig,
    Config,
    FrontendConfig,
    LogSettings,
    LogTarget,
    ServerConfig,
    Timeouts,
)
from gproxy.config.schema import (
    BIND,
    BOTH,
    COOKIE,
    DEFAULT_SERVER,
    FORWARDFOR,
    GLOBAL,
    HTTPCHK,
    LOG_TARGET,
    PROXY,
    SERVER,
    SIDES,
    STATS_SOCKET,
    TIMEOUT,
    TUNE,
    Section,
    Setting,
)
from gproxy.config.types import (
    BindList,
    Bool,
    Choice,
    Duration,
    FileMode,
    Int,
    Str,
    Table,
    TableList,
    UserOrId,
    ValueType,
    parse_address,
    show,
)
from gproxy.durations import format_duration
from gproxy.errors import ConfigError

HEADER = "# Converted from an HAProxy configuration by `gproxy convert`; check it with `gproxy check FILE`.\n"
INDENT = "        "  # haproxy.cfg's customary indentation
SYSLOG_PORT = 514
_SIMPLE_TYPES = (Bool, Int, Duration, Str, Choice, FileMode, UserOrId)
_BARE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {"r": "\r", "n": "\n", "t": "\t"}
# Proxy settings whose HAProxy syntax needs a handler of its own.
_CUSTOM_PROXY_KEYS = {"balance", "balance_uri_whole", "connection_mode", "log", "stats", "prometheus",
                      "redirect_to_https", "hsts"}
# Server keywords that do not map one word to one key.
_SEND_PROXY = {"send-proxy": "v1", "send-proxy-v2": "v2"}
SYSTEM_CA = "@system-ca"  # HAProxy 2.6's ca-file for the system's CA store
_SNI_RE = re.compile(r"^str\((.+)\)$")
_HSTS_RE = re.compile(r"^max-age=(\d+)(;.*)?$")
# `http-request redirect scheme https [code 301] [if !{ ssl_fc }]`: what redirect_to_https does.
_REDIRECT_HTTPS = (["redirect", "scheme", "https"], [["code", "301"], ["if", "!{", "ssl_fc", "}"]])
_CONNECTION_OPTIONS = {
    "http-keep-alive": "keep-alive",
    "http-server-close": "server-close",
    "httpclose": "close",
    "forceclose": "close",  # HAProxy 1.x spelling
}
_PROXY_SECTIONS = ("frontend", "backend", "listen")
_IGNORED_SOCKET_WORDS = (("expose-fd", "listeners"),)  # gproxy's master passes sockets by itself


class _Unsupported(Exception):
    """One directive that cannot be converted; becomes one line of the ConfigError."""


class _Partial(_Unsupported):
    """An option of a server or bind line that cannot be converted: `values`
    holds the options read before it, which the line keeps (the server or
    address is not lost); the option and the rest of the line are left out."""

    def __init__(self, reason: str, values: dict[str, Any]):
        super().__init__(reason)
        self.values = values


# --- reading haproxy.cfg ----------------------------------------------------------


def split_words(line: str) -> list[str]:
    """Split one haproxy.cfg line as HAProxy does: blanks separate words,
    quotes group them, backslash escapes, '#' starts a comment."""
    words: list[str] = []
    word: list[str] = []
    in_word = False
    quote = ""
    i = 0
    while i < len(line):
        char = line[i]
        if quote == "'" and char != "'":
            word.append(char)
        elif char == "\\" and quote != "'" and i + 1 < len(line):
            i += 1
            escaped = line[i]
            if escaped == "x" and re.fullmatch(r"[0-9A-Fa-f]{2}", line[i + 1:i + 3]):
                word.append(chr(int(line[i + 1:i + 3], 16)))
                i += 2
            else:
                word.append(_ESCAPES.get(escaped, escaped))
            in_word = True
        elif char in "\"'" and (not quote or quote == char):
            quote = "" if quote else char
            in_word = True
        elif quote:
            word.append(char)
        elif char == "#":
            break
        elif char.isspace():
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        else:
            word.append(char)
            in_word = True
        i += 1
    if in_word:
        words.append("".join(word))
    return words


@dataclass
class _CfgSection:
    kind: str  # global, defaults, frontend, backend or listen
    name: str
    defaults: "_CfgSection | None" = None  # the defaults section in force for a proxy
    values: dict[str, Any] = field(default_factory=dict)
    httpchk_extra: dict[str, Any] = field(default_factory=dict)  # from http-check lines

    @property
    def sides(self) -> frozenset[str]:
        return SIDES.get(self.kind, BOTH)


def _directive_table(section: Section, prefix: tuple[str, ...] = (), skip: frozenset[str] = frozenset()
                     ) -> dict[str, tuple[tuple[str, ...], Setting]]:
    """HAProxy spelling -> (TOML key path, setting), for the simple settings of a section."""
    table: dict[str, tuple[tuple[str, ...], Setting]] = {}
    for setting in section.settings:
        if setting.key in skip or setting.haproxy is None or not isinstance(setting.type, _SIMPLE_TYPES):
            continue
        for spelling in (setting.haproxy,) + setting.aliases:
            table[spelling] = (prefix + (setting.key,), setting)
    return table


_GLOBAL_DIRECTIVES = _directive_table(GLOBAL) | {
    f"{s.haproxy}": (("tune", s.key), s) for s in TUNE.settings if s.haproxy
}
_PROXY_DIRECTIVES = _directive_table(PROXY, skip=frozenset(_CUSTOM_PROXY_KEYS)) | _directive_table(
    TIMEOUT, prefix=("timeout",))
_SERVER_KEYWORDS = _directive_table(DEFAULT_SERVER)
_SOCKET_KEYWORDS = _directive_table(STATS_SOCKET, skip=frozenset({"path"}))
_COOKIE_FLAGS = {str(s.haproxy): s.key for s in COOKIE.settings if isinstance(s.type, Bool)}
_COOKIE_MODES: tuple[str, ...] = COOKIE["mode"].type.values  # type: ignore[union-attr]


def _lookup(table: dict[str, Any], words: list[str]) -> tuple[Any, list[str]] | None:
    """The longest directive of `table` that `words` starts with, and its arguments."""
    for length in (3, 2, 1):
        entry = table.get(" ".join(words[:length])) if len(words) >= length else None
        if entry is not None:
            return entry, words[length:]
    return None


def _typed(setting: Setting, args: list[str], directive: str) -> object:
    """The TOML value of a simple directive's arguments."""
    typ = setting.type
    assert isinstance(typ, ValueType)
    if isinstance(typ, Bool):
        if args:
            raise _Unsupported(f"{directive}: unsupported argument {show(args[0])}")
        return True
    if len(args) != 1:
        raise _Unsupported(f"{directive}: expected one argument, got {len(args)}")
    try:
        return typ.from_haproxy(args[0])
    except ValueError as exc:
        raise _Unsupported(f"{directive}: {exc}") from None


def _set(values: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    for key in path[:-1]:
        values = values.setdefault(key, {})
    values[path[-1]] = value


class _Converter:
    """Reads haproxy.cfg into per-section TOML dicts, collecting unsupported lines."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.sections: list[_CfgSection] = []
        self.problems: list[tuple[str, str]] = []
        self.global_tag: str | None = None
        self.directive_handlers = self.handlers()
        self.options = self.option_handlers()

    def run(self, text: str) -> list[_CfgSection]:
        current: _CfgSection | None = None
        skipping = False
        defaults: _CfgSection | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            words = split_words(line)
            if not words:
                continue
            try:
                keyword = words[0]
                if keyword in ("global", "defaults") + _PROXY_SECTIONS:
                    current = self.open_section(words, defaults)
                    skipping = False
                    if current.kind == "defaults":
                        defaults = current
                elif keyword in ("userlist", "peers", "resolvers", "mailers", "program", "cache",
                                 "http-errors", "ring", "backend-only", "fcgi-app"):
                    skipping = True
                    raise _Unsupported(f"section {show(keyword)} is not supported (its lines are skipped)")
                elif skipping:
                    continue
                elif current is None:
                    raise _Unsupported(f"{show(keyword)} outside of any section")
                elif current.kind == "global":
                    self.global_directive(current, words)
                else:
                    self.proxy_directive(current, words)
            except _Unsupported as exc:
                where = f"{self.source}:{number}" if self.source else f"line {number}"
                self.problems.append((where, str(exc)))
        return self.sections

    def open_section(self, words: list[str], defaults: _CfgSection | None) -> _CfgSection:
        kind = words[0]
        name = words[1] if len(words) > 1 else ""
        section = _CfgSection(kind, name, defaults if kind in _PROXY_SECTIONS else None)
        self.sections.append(section)
        if kind in _PROXY_SECTIONS and not name:
            raise _Unsupported(f"{kind} without a name")
        extra = words[2:] if kind in _PROXY_SECTIONS else words[1:]
        if kind == "defaults" and extra and extra[0] != "from":
            extra = extra[1:]  # a named defaults section: its name is of no use here
        if kind == "listen" and extra and extra[0] != "from":
            self.bind(section, extra[:1])  # HAProxy 1.x: listen NAME ADDR:PORT
            extra = extra[1:]
        if extra:
            raise _Unsupported(f"{kind} {name}: unsupported {' '.join(extra)!r}")
        return section

    # --- global ------------------------------------------------------------------

    def global_directive(self, section: _CfgSection, words: list[str]) -> None:
        keyword = words[0]
        if keyword == "log":
            section.values.setdefault("log", []).append(self.log_target(words[1:]))
        elif keyword == "log-tag" and len(words) == 2:
            self.global_tag = words[1]
        elif words[:2] == ["stats", "socket"] and len(words) >= 3:
            section.values.setdefault("stats_socket", []).append(self.stats_socket(words[2:]))
        else:
            self.simple(section, words, _GLOBAL_DIRECTIVES)

    def simple(self, section: _CfgSection, words: list[str], table: dict[str, Any]) -> None:
        found = _lookup(table, words)
        if found is None:
            raise _Unsupported(f"unsupported directive {show(' '.join(words[:2]))} in {section.kind}")
        (path, setting), args = found
        directive = " ".join(words[: len(words) - len(args)])
        if section.kind in _PROXY_SECTIONS and path[0] != "timeout" and not setting.scope & section.sides:
            raise _Unsupported(f"{directive} is not allowed in a {section.kind} section")
        _set(section.values, path, _typed(setting, args, directive))

    def log_target(self, args: list[str]) -> dict[str, Any]:
        """`log <address> [len n] [format f] <facility> [<level> [<minlevel>]]`."""
        if len(args) < 2:
            raise _Unsupported("log: expected an address and a facility")
        address, rest = args[0], args[1:]
        if rest[0] in ("len", "format", "sample"):
            raise _Unsupported(f"log: option {show(rest[0])} is not supported")
        target = self.log_address(address)
        entry: dict[str, Any] = {"target": target, "facility": rest[0]}
        if len(rest) > 1:
            entry["level"] = rest[1]
        for key in ("facility", "level"):
            if key in entry:
                try:
                    LOG_TARGET[key].type.parse(entry[key])  # type: ignore[union-attr]
                except ValueError as exc:
                    raise _Unsupported(f"log: {exc}") from None
        return entry

    @staticmethod
    def log_address(address: str) -> str:
        if address in ("stderr", "stdout"):
            return address
        if address.startswith("/"):
            return f"unix://{address}"
        for prefix in ("ipv4@", "udp@", "udp4@"):
            if address.startswith(prefix):
                address = address[len(prefix):]
        if address.count(":") > 1 and not address.startswith("["):
            raise _Unsupported(f"log: IPv6 address {show(address)} is not supported")
        host, _, port = address.partition(":")
        return f"udp://{host}:{port or SYSLOG_PORT}"

    def stats_socket(self, args: list[str]) -> dict[str, Any]:
        sock: dict[str, Any] = {"path": args[0]}
        rest = args[1:]
        while rest:
            if tuple(rest[:2]) in _IGNORED_SOCKET_WORDS:
                rest = rest[2:]
                continue
            found = _lookup(_SOCKET_KEYWORDS, rest[:1])
            if found is None or len(rest) < 2:
                raise _Unsupported(f"stats socket: unsupported option {show(rest[0])}")
            (path, setting), _ = found
            sock[path[-1]] = _typed(setting, rest[1:2], f"stats socket {rest[0]}")
            rest = rest[2:]
        return sock

    # --- proxies -------------------------------------------------------------------

    def proxy_directive(self, section: _CfgSection, words: list[str]) -> None:
        handler = self.directive_handlers.get(words[0])
        if words[0] == "option" and len(words) > 1:
            handler = self.options.get(words[1])
        if handler is not None:
            handler(section, words)
        elif words[0] == "no" and len(words) > 1:
            self.negation(section, words[1:])
        else:
            self.simple(section, words, _PROXY_DIRECTIVES)

    def handlers(self) -> dict[str, Callable[[_CfgSection, list[str]], None]]:
        return {
            "bind": lambda s, w: self.bind(s, w[1:]),
            "http-request": self.http_request,
            "http-response": self.http_response,
            "log": self.proxy_log,
            "balance": self.balance,
            "cookie": self.cookie,
            "server": self.server,
            "default-server": self.default_server,
            "http-check": self.http_check,
        }

    def option_handlers(self) -> dict[str, Callable[[_CfgSection, list[str]], None]]:
        handlers: dict[str, Callable[[_CfgSection, list[str]], None]] = {
            "httpchk": self.httpchk,
            "forwardfor": self.forwardfor,
        }
        for option, mode in _CONNECTION_OPTIONS.items():
            handlers[option] = functools.partial(self.connection_mode, mode=mode)
        return handlers

    def negation(self, section: _CfgSection, words: list[str]) -> None:
        """`no option X` / `no log`: turn off what [defaults] turned on."""
        if words == ["log"]:
            section.values["log"] = []
        elif words[0] == "option" and len(words) == 2 and words[1] in _CONNECTION_OPTIONS:
            section.values["connection_mode"] = "keep-alive"
        elif words[0] == "option" and len(words) == 2 and words[1] in ("httpchk", "forwardfor"):
            section.values[words[1]] = False
        else:
            found = _lookup(_PROXY_DIRECTIVES, words)
            if found is None or not isinstance(found[0][1].type, Bool) or found[1]:
                raise _Unsupported(f"unsupported directive {show('no ' + ' '.join(words[:2]))}")
            _set(section.values, found[0][0], False)

    def bind(self, section: _CfgSection, args: list[str]) -> None:
        if section.kind not in ("frontend", "listen"):
            raise _Unsupported(f"bind is not allowed in a {section.kind} section")
        if not args:
            raise _Unsupported("bind: expected an address")
        partial: _Partial | None = None
        try:
            options = self.bind_options(args[1:])
        except _Partial as exc:
            options, partial = exc.values, exc
        for address in args[0].split(","):
            try:
                parse_address(address, bind=True)
            except ValueError as exc:
                raise _Unsupported(f"bind: {exc}") from None
            # A plain address stays a string; with options it becomes a [bind] table.
            section.values.setdefault("bind", []).append({"address": address, **options} if options else address)
        if partial is not None:
            raise partial

    @staticmethod
    def bind_options(words: list[str]) -> dict[str, Any]:
        """`ssl crt F [crt G] alpn a,b ssl-min-ver V ciphers C accept-proxy`."""
        options: dict[str, Any] = {}
        keys = {s.haproxy: s for s in BIND.settings if s.key != "address"}
        while words:
            word = words.pop(0)
            setting = keys.get(word)
            if setting is None:
                raise _Partial(f"bind: option {show(word)} is not supported", options)
            if isinstance(setting.type, Bool):
                options[setting.key] = True
                continue
            if not words:
                raise _Partial(f"bind: {word} needs a value", options)
            value = words.pop(0)
            if setting.key == "crt":
                options.setdefault("crt", []).append(value)
            elif setting.key == "alpn":
                options["alpn"] = value.split(",")
            else:
                try:
                    options[setting.key] = _typed(setting, [value], f"bind {word}")
                except _Unsupported as exc:
                    raise _Partial(str(exc), options) from None
        return options

    def proxy_log(self, section: _CfgSection, words: list[str]) -> None:
        if words[1:] == ["global"]:
            section.values["log"] = "global"
            return
        current = section.values.get("log")
        targets = current if isinstance(current, list) else []
        targets.append(self.log_target(words[1:]))
        section.values["log"] = targets

    def connection_mode(self, section: _CfgSection, words: list[str], *, mode: str) -> None:
        if len(words) > 2:
            raise _Unsupported(f"option {words[1]}: unsupported argument {show(words[2])}")
        section.values["connection_mode"] = mode

    def balance(self, section: _CfgSection, words: list[str]) -> None:
        self.require_backend(section, "balance")
        args = words[1:]
        algorithms = PROXY["balance"].type.values  # type: ignore[union-attr]
        if not args or args[0] not in algorithms:
            raise _Unsupported(f"balance: algorithm {show(args[0] if args else '')} is not supported")
        section.values["balance"] = args[0]
        extra = args[1:]
        if args[0] == "uri" and extra[:1] == ["whole"]:
            section.values["balance_uri_whole"] = True
            extra = extra[1:]
        if extra:
            raise _Unsupported(f"balance {args[0]}: unsupported argument {show(extra[0])}")

    def cookie(self, section: _CfgSection, words: list[str]) -> None:
        self.require_backend(section, "cookie")
        if len(words) < 2:
            raise _Unsupported("cookie: expected a name")
        cookie: dict[str, Any] = {"name": words[1]}
        rest = words[2:]
        while rest:
            word = rest.pop(0)
            if word in _COOKIE_MODES:
                cookie["mode"] = word
            elif word in _COOKIE_FLAGS:
                cookie[_COOKIE_FLAGS[word]] = True
            elif word == "domain" and rest:
                cookie.setdefault("domain", []).append(rest.pop(0))
            else:
                raise _Unsupported(f"cookie: option {show(word)} is not supported")
        if "mode" not in cookie:
            raise _Unsupported("cookie without insert, prefix or rewrite (HAProxy's passive mode) is not supported")
        section.values["cookie"] = cookie

    def httpchk(self, section: _CfgSection, words: list[str]) -> None:
        """`option httpchk [[<method>] <uri> [<version>]]`; 1.x hid headers in the version."""
        self.require_backend(section, "option httpchk")
        args = words[2:]
        if len(args) > 3:
            raise _Unsupported("option httpchk: too many arguments")
        if len(args) == 1:
            args = ["OPTIONS"] + args
        check: dict[str, Any] = {"method": "OPTIONS", "path": "/"}
        check.update(zip(("method", "path"), args[:2]))
        if len(args) == 3:
            version, *headers = args[2].split("\r\n")
            check["version"] = version
            for header in filter(None, headers):
                name, _, value = header.partition(":")
                if name.strip().lower() != "host":
                    raise _Unsupported(f"option httpchk: header {show(name)} is not supported (only Host)")
                check["host"] = value.strip()
        section.values["httpchk"] = check

    def http_check(self, section: _CfgSection, words: list[str]) -> None:
        self.require_backend(section, "http-check")
        args = words[1:]
        extra = section.httpchk_extra
        if args == ["disable-on-404"]:
            extra["disable_on_404"] = True
        elif len(args) == 3 and args[:2] == ["expect", "status"]:
            extra["expect_status"] = args[2]
        elif args[:1] == ["send"]:
            rest = args[1:]
            keys = {"meth": "method", "uri": "path", "ver": "version"}
            while len(rest) >= 2:
                if rest[0] in keys:
                    extra[keys[rest[0]]] = rest[1]
                    rest = rest[2:]
                elif rest[0] == "hdr" and len(rest) >= 3 and rest[1].lower() == "host":
                    extra["host"] = rest[2]
                    rest = rest[3:]
                else:
                    break
            if rest:
                raise _Unsupported(f"http-check send: {show(rest[0])} is not supported")
        else:
            raise _Unsupported(f"unsupported directive {show('http-check ' + ' '.join(args[:2]))}")

    def http_request(self, section: _CfgSection, words: list[str]) -> None:
        """Only the redirect to https that `redirect_to_https` stands for."""
        action, options = _REDIRECT_HTTPS
        rest = words[1:]
        if rest[:3] != action:
            raise _Unsupported(f"unsupported directive {show(' '.join(words[:3]))}")
        rest = rest[3:]
        for option in options:
            if rest[:len(option)] == option:
                rest = rest[len(option):]
        if rest:
            raise _Unsupported(f"http-request redirect scheme https: {show(' '.join(rest))} is not supported "
                               "(gproxy redirects with 301 every request that came without TLS)")
        if section.kind == "backend":
            raise _Unsupported("http-request redirect is only supported in a frontend or listen section")
        section.values["redirect_to_https"] = True

    def http_response(self, section: _CfgSection, words: list[str]) -> None:
        """Only `set-header Strict-Transport-Security "max-age=N..."` (what `hsts` adds)."""
        rest = words[1:]
        if len(rest) == 3 and rest[0] in ("set-header", "add-header") and \
                rest[1].lower() == "strict-transport-security":
            match = _HSTS_RE.match(rest[2].replace(" ", ""))
            if match and not match.group(2) and section.kind != "backend":
                section.values["hsts"] = format_duration(int(match.group(1)) * 1000)
                return
            raise _Unsupported("http-response set-header Strict-Transport-Security: only "
                               '"max-age=<seconds>" in a frontend or listen is supported')
        raise _Unsupported(f"unsupported directive {show(' '.join(words[:2]))}")

    def forwardfor(self, section: _CfgSection, words: list[str]) -> None:
        rest = words[2:]
        fwd: dict[str, Any] = {}
        keys = {s.haproxy: s for s in FORWARDFOR.settings}
        while rest:
            word = rest.pop(0)
            setting = keys.get(word)
            if setting is None:
                raise _Unsupported(f"option forwardfor: option {show(word)} is not supported")
            if isinstance(setting.type, Bool):
                fwd[setting.key] = True
            elif rest:
                fwd[setting.key] = rest.pop(0)
            else:
                raise _Unsupported(f"option forwardfor: {word} needs a value")
        section.values["forwardfor"] = fwd or True

    def server(self, section: _CfgSection, words: list[str]) -> None:
        self.require_backend(section, "server")
        if len(words) < 3:
            raise _Unsupported("server: expected a name and an address")
        address = words[2]
        if address.count(":") > 1 and not address.startswith("["):
            host, _, port = address.rpartition(":")
            address = f"[{host}]:{port}"
        try:
            parse_address(address, bind=False)
        except ValueError as exc:
            raise _Unsupported(f"server {words[1]}: {exc}") from None
        server = {"name": words[1], "address": address}
        servers = section.values.setdefault("server", [])
        servers.append(server)
        try:
            server.update(self.server_keywords(words[3:], f"server {words[1]}"))
        except _Partial as exc:
            server.update(exc.values)
            raise

    def default_server(self, section: _CfgSection, words: list[str]) -> None:
        self.require_backend(section, "default-server")
        defaults = section.values.setdefault("default_server", {})
        try:
            defaults.update(self.server_keywords(words[1:], "default-server"))
        except _Partial as exc:
            defaults.update(exc.values)
            raise

    @staticmethod
    def server_keywords(words: list[str], what: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        while words:
            if words[0] in _SEND_PROXY:
                values["send_proxy"] = _SEND_PROXY[words[0]]
                words = words[1:]
                continue
            if words[:2] == ["ca-file", SYSTEM_CA]:
                words = words[2:]  # HAProxy's name for the system's CAs: gproxy's default
                continue
            if words[0] == "sni" and len(words) > 1:
                match = _SNI_RE.match(words[1])
                if match is None:
                    raise _Partial(f"{what}: sni {show(words[1])} is not supported (only sni str(<name>))", values)
                values["sni"] = match.group(1)
                words = words[2:]
                continue
            found = _lookup(_SERVER_KEYWORDS, words[:1])
            if found is None:
                raise _Partial(f"{what}: option {show(words[0])} is not supported", values)
            (path, setting), _ = found
            arity = 0 if isinstance(setting.type, Bool) else 1
            if len(words) < 1 + arity:
                raise _Partial(f"{what}: {words[0]} needs a value", values)
            try:
                values[path[-1]] = _typed(setting, words[1:1 + arity], f"{what} {words[0]}")
            except _Unsupported as exc:
                raise _Partial(str(exc), values) from None
            words = words[1 + arity:]
        return values

    @staticmethod
    def require_backend(section: _CfgSection, directive: str) -> None:
        if section.kind == "frontend":
            raise _Unsupported(f"{directive} is not allowed in a frontend section")


# --- writing TOML ---------------------------------------------------------------------


def _key(key: str) -> str:
    return key if _BARE_KEY_RE.match(key) else _string(key)


def _string(text: str) -> str:
    return tomli_w.dumps({"v": text}).partition(" = ")[2].rstrip("\n")


def _format(value: Any, typ: Any) -> str:
    """One TOML value, inline, formatted by its schema type."""
    if isinstance(typ, Table) and isinstance(value, dict):
        return _inline_table(value, typ.section)
    if isinstance(typ, TableList) and isinstance(value, list):
        return "[" + ", ".join(_inline_table(item, typ.section) for item in value) + "]"
    if isinstance(typ, BindList) and isinstance(value, list):
        return "[" + ", ".join(_inline_table(item, BIND) if isinstance(item, dict) else _string(item)
                               for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and isinstance(typ, FileMode):
        return f"0o{value:o}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_format(item, None) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _inline_table(values: dict[str, Any], section: Section) -> str:
    if not values:
        return "{}"
    return "{ " + ", ".join(f"{_key(k)} = {_format(v, _type_of(section, k))}" for k, v in _ordered(values, section)) + " }"


def _type_of(section: Section, key: str) -> Any:
    setting = section.get(key)
    return setting.type if setting is not None else None


def _ordered(values: dict[str, Any], section: Section) -> list[tuple[str, Any]]:
    """Keys in schema order, so every conversion reads the same way."""
    order = {key: i for i, key in enumerate(section.keys())}
    return sorted(values.items(), key=lambda item: order.get(item[0], len(order)))


def _table_text(header: str, values: dict[str, Any], section: Section) -> str:
    lines = [f"[{header}]"]
    arrays: list[str] = []
    for key, value in _ordered(values, section):
        if key == "server":
            for server in value:
                arrays.append(f"\n[[{header}.server]]")
                arrays.extend(f"{_key(k)} = {_format(v, _type_of(SERVER, k))}" for k, v in _ordered(server, SERVER))
        else:
            lines.append(f"{_key(key)} = {_format(value, _type_of(section, key))}")
    return "\n".join(lines + arrays) + "\n"


def _fold(defaults: dict[str, Any], own: dict[str, Any], sides: frozenset[str]) -> dict[str, Any]:
    """A proxy's values with its defaults section written in (several defaults
    sections cannot share one [defaults]). Mirrors the loader's folding."""
    folded: dict[str, Any] = {}
    for key, value in defaults.items():
        setting = PROXY.get(key)
        if setting is not None and setting.scope & sides and key not in ("bind", "server"):
            folded[key] = value
    mode = own.get("mode", folded.get("mode"))
    for key in list(folded):
        setting = PROXY.get(key)
        if mode == "tcp" and setting is not None and setting.http_only and key not in own:
            if key == "httplog" and folded[key] and "tcplog" not in own:
                folded["tcplog"] = True
            del folded[key]
    for key, value in own.items():
        setting = PROXY.get(key)
        if setting is not None and setting.merge and isinstance(folded.get(key), dict):
            folded[key] = {**folded[key], **value}
        else:
            folded[key] = value
    return folded


@dataclass(frozen=True)
class Conversion:
    """What `gproxy convert` produced: the TOML of every directive it
    understood, and the (where, reason) of each one it did not."""

    text: str
    problems: tuple[tuple[str, str], ...]


def haproxy_to_toml(cfg_text: str, source: str | None = None) -> str:
    """Convert haproxy.cfg text to gproxy TOML; raise ConfigError listing each
    line that could not be converted, as "line N" (or "SOURCE:N" when the
    file name is given). This is `gproxy convert --strict`."""
    conversion = convert_haproxy(cfg_text, source)
    if conversion.problems:
        raise ConfigError(list(conversion.problems))
    return conversion.text


def convert_haproxy(cfg_text: str, source: str | None = None) -> Conversion:
    """Convert haproxy.cfg text; unsupported lines are left out of the TOML
    and listed in `problems`."""
    converter = _Converter(source)
    sections = converter.run(cfg_text)
    for section in sections:  # http-check lines complete the httpchk of their section
        if section.httpchk_extra:
            base = section.values.get("httpchk")
            if not isinstance(base, dict):
                inherited = section.defaults.values.get("httpchk") if section.defaults else None
                base = dict(inherited) if isinstance(inherited, dict) else {"method": "OPTIONS", "path": "/"}
            section.values["httpchk"] = {**base, **section.httpchk_extra}
    if converter.global_tag:  # HAProxy's global log-tag names every log line
        for section in sections:
            targets = section.values.get("log")
            for target in targets if isinstance(targets, list) else ():
                target["tag"] = converter.global_tag
    global_ = next((s for s in sections if s.kind == "global"), None)
    proxies = [s for s in sections if s.kind in _PROXY_SECTIONS]
    used_defaults = {id(p.defaults): p.defaults for p in proxies if p.defaults is not None}
    shared = len(used_defaults) == 1 and all(p.defaults is not None for p in proxies)
    chunks = [HEADER]
    if global_ is not None and global_.values:
        chunks.append(_table_text("global", global_.values, GLOBAL))
    if shared:
        defaults = dict(next(iter(used_defaults.values())).values)
        defaults.setdefault("mode", "tcp")  # HAProxy's default mode; gproxy's is http
        chunks.append(_table_text("defaults", defaults, PROXY))
    for proxy in proxies:
        values = dict(proxy.values)
        if not shared:
            values = _fold(proxy.defaults.values if proxy.defaults else {}, values, proxy.sides)
            values.setdefault("mode", "tcp")
        chunks.append(_table_text(f"{proxy.kind}.{_key(proxy.name)}", values, PROXY))
    text = "\n".join(chunks)
    tomllib.loads(text)  # what we write must read back; a failure here is a bug
    return Conversion(text, tuple(converter.problems))


# --- writing haproxy.cfg ---------------------------------------------------------------


def _haproxy_log_target(target: LogTarget) -> str:
    address = target.target
    if address.startswith("udp://"):
        address = address[len("udp://"):]
    elif address.startswith("unix://"):
        address = address[len("unix://"):]
    level = "" if target.level == LOG_TARGET["level"].default else f" {target.level}"
    return f"log {address} {target.facility}{level}"


def _id_directive(name: str, value: int | str) -> str:
    """uid/gid for numbers, user/group for names."""
    if isinstance(value, int):
        return f"{'uid' if name == 'user' else 'gid'} {value}"
    return f"{name} {value}"


def _global_lines(config: Config) -> list[str]:
    g = config.global_
    lines = [f"maxconn {g.maxconn}"]
    lines += [_haproxy_log_target(t) for t in g.log]
    tags = {t.tag for t in g.log}
    if len(tags) == 1:  # HAProxy has one tag for all targets, gproxy one per target
        lines.append(f"log-tag {tags.pop()}")
    if g.chroot:
        lines.append(f"chroot {g.chroot}")
    for name, value in (("user", g.user), ("group", g.group)):
        if value is not None:
            lines.append(_id_directive(name, value))
    if g.daemon:
        lines.append("daemon")
    if g.pidfile:
        lines.append(f"pidfile {g.pidfile}")
    for sock in g.stats_sockets:
        words = [f"stats socket {sock.path} mode {sock.mode:o} level {sock.level}"]
        words += [f"{name} {value}" for name, value in (("user", sock.user), ("group", sock.group)) if value is not None]
        lines.append(" ".join(words))
    lines.append(f"stats timeout {format_duration(g.stats_timeout)}")
    if g.node:
        lines.append(f"node {g.node}")
    if g.grace:
        lines.append(f"grace {format_duration(g.grace)}")
    lines.append(f"tune.bufsize {g.tune.bufsize}")
    lines.append(f"tune.http.maxhdr {g.tune.maxhdr}")
    return lines


def _timeout_lines(timeouts: Timeouts, sides: frozenset[str]) -> list[str]:
    lines = []
    for setting in TIMEOUT.settings:
        value = getattr(timeouts, setting.key)
        if value is not None and setting.scope & sides:
            lines.append(f"{setting.haproxy} {format_duration(value)}")
    return lines


def _log_lines(log: LogSettings, sides: frozenset[str]) -> list[str]:
    lines = [_haproxy_log_target(t) for t in log.targets]
    for key in ("httplog", "tcplog", "dontlognull", "log_health_checks"):
        setting = PROXY.get(key)
        if getattr(log, key) and setting is not None and setting.scope & sides:
            lines.append(str(setting.haproxy))
    return lines


def _forwardfor_line(frontend: FrontendConfig | None, backend: BackendConfig | None) -> list[str]:
    fwd = (frontend.forwardfor if frontend else None) or (backend.forwardfor if backend else None)
    if fwd is None:
        return []
    words = ["option forwardfor"]
    if fwd.except_net is not None:
        words.append(f"except {fwd.except_net}")
    if fwd.header != FORWARDFOR["header"].default:
        words.append(f"header {fwd.header}")
    if fwd.if_none:
        words.append("if-none")
    return [" ".join(words)]


def _backend_lines(be: BackendConfig) -> list[str]:
    lines = [f"balance {be.balance}" + (" whole" if be.uri_whole else ""), f"hash-type {be.hash_type}"]
    if be.cookie:
        words = [f"cookie {be.cookie.name} {be.cookie.mode}"]
        words += [flag for flag, key in _COOKIE_FLAGS.items() if getattr(be.cookie, key)]
        words += [f"domain {d}" for d in be.cookie.domain]
        lines.append(" ".join(words))
    if be.httpchk:
        chk = be.httpchk
        lines.append("option httpchk")
        send = f"http-check send meth {chk.method} uri {chk.path} ver {chk.version}"
        lines.append(send + (f" hdr Host {chk.host}" if chk.host else ""))
        if chk.disable_on_404:
            lines.append("http-check disable-on-404")
        if chk.expect_status is not None:
            status = HTTPCHK["expect_status"].type.to_haproxy(chk.expect_status)  # type: ignore[union-attr]
            lines.append(f"http-check expect status {status}")
    lines.append(f"retries {be.retries}")
    for key in ("redispatch", "allbackups"):
        if getattr(be, key):
            lines.append(str(PROXY[key].haproxy))
    if be.fullconn:
        lines.append(f"fullconn {be.fullconn}")
    for srv in be.servers:
        lines.append(" ".join([f"server {srv.name} {srv.address}"] + _server_words(srv)))
    return lines


def _server_words(srv: ServerConfig) -> list[str]:
    words = []
    for setting in DEFAULT_SERVER.settings:
        value = getattr(srv, "check_port" if setting.key == "port" else setting.key)
        if value is None or value == setting.default:
            continue
        typ = setting.type
        assert isinstance(typ, ValueType)
        if setting.key == "send_proxy":
            words.append({v: k for k, v in _SEND_PROXY.items()}[value])
        elif setting.key == "sni":
            words.append(f"sni str({value})")
        elif setting.key in ("verify", "ca_file") and not srv.ssl:
            continue
        else:
            words.append(str(setting.haproxy) if isinstance(typ, Bool)
                         else f"{setting.haproxy} {typ.to_haproxy(value)}")
    if srv.ssl and srv.verify == "required":
        words.append("verify required")
        if srv.ca_file is None:
            words.append(f"ca-file {SYSTEM_CA}")  # gproxy's default: the system's CAs
    return words


def _bind_line(bind: BindConfig) -> str:
    words = [f"bind {bind.address}"]
    if bind.ssl:
        words.append("ssl")
        words += [f"crt {path}" for path in bind.crt]
        if bind.alpn:
            words.append("alpn " + ",".join(bind.alpn))
        words.append(f"ssl-min-ver {bind.ssl_min_ver}")
        if bind.ciphers:
            words.append(f"ciphers {bind.ciphers}")
    if bind.accept_proxy:
        words.append("accept-proxy")
    return " ".join(words)


def toml_to_haproxy(config: Config) -> str:
    """Write `config` as an HAProxy 2.6 configuration (for `haproxy -c -f`).

    What HAProxy cannot say is left out: per-target log tags when they differ
    (HAProxy has one `log-tag`), `tune.max_header_bytes`, the `stats` and
    `prometheus` tables, `max_body_size` and `maxconn_per_client` (rules and
    stick-tables in HAProxy: docs/reliability.md gives them), and timeouts a
    side does not use (a frontend gets no `timeout connect`), since
    `[defaults]` is already folded into each proxy."""
    out = ["# Written by gproxy from " + (config.source or "a gproxy configuration"), "global"]
    out += [INDENT + line for line in _global_lines(config)]
    for name in config.proxy_order:
        frontend = config.frontends.get(name)
        backend = config.backends.get(name)
        kind = "listen" if frontend and backend else "frontend" if frontend else "backend"
        sides = SIDES[kind]
        proxy = frontend or backend
        assert proxy is not None
        lines = [f"mode {proxy.mode}"]
        if frontend:
            lines += [_bind_line(bind) for bind in frontend.listeners]
            lines.append(f"maxconn {frontend.maxconn}")
            if frontend.redirect_to_https:
                lines.append("http-request redirect scheme https code 301 if !{ ssl_fc }")
            if frontend.hsts is not None:
                lines.append(f'http-response set-header Strict-Transport-Security "max-age={frontend.hsts // 1000}"')
            if kind == "frontend" and frontend.default_backend:
                lines.append(f"default_backend {frontend.default_backend}")
        lines += _log_lines(proxy.log, sides)
        lines += _timeout_lines(proxy.timeouts, sides)
        if proxy.mode == "http":
            option = {v: k for k, v in _CONNECTION_OPTIONS.items() if k != "forceclose"}[proxy.connection_mode]
            lines.append(f"option {option}")
            lines += _forwardfor_line(frontend, backend)
        if backend:
            lines += _backend_lines(backend)
        out += ["", f"{kind} {name}"] + [INDENT + line for line in lines]
    return "\n".join(out) + "\n"

