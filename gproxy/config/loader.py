"""The configuration loader: TOML text -> validated `model.Config`.

Every value is checked against its declaration in schema.py; every problem is
collected with its key path (`listen.web.server[1].weight: 300 is out of
range 0..256`) and all of them are raised at once in one ConfigError, so
`gproxy check` shows a user the whole list in one run. Then [defaults] is
folded into each proxy, a listen becomes a frontend and a backend of the same
name and id, and the cross-checks between proxies run.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from gsuite import config_load
from gproxy.config.model import (
    BackendConfig,
    BindConfig,
    Config,
    CookieConfig,
    ForwardFor,
    FrontendConfig,
    GlobalConfig,
    HttpCheck,
    LogSettings,
    LogTarget,
    ServerConfig,
    StatsSocket,
    Timeouts,
    Tune,
)
from gproxy.config.schema import (
    BIND,
    COOKIE,
    DEFAULT_SERVER,
    FORWARDFOR,
    GLOBAL,
    HTTPCHK,
    LOG_TARGET,
    PROXY,
    PROXY_KINDS,
    PROXY_NAME,
    SERVER,
    SIDES,
    STATS_PAGE,
    STATS_SOCKET,
    TIMEOUT,
    TOP_LEVEL,
    TUNE,
    Section,
    Setting,
)
from gproxy.config.types import BindList, Table, TableList, kind_of, parse_address, show
from gproxy.errors import ConfigError
from gsuite.config_types import did_you_mean
from gsuite.config_walk import INVALID, Walker
from gsuite.snmp_config import SnmpConfig, parse_snmp

# What an HTTP frontend may offer through ALPN: gproxy speaks HTTP/1.x only.
HTTP_ALPN = ("http/1.1", "http/1.0")
# Bind keys that mean something only when the bind terminates TLS.
_TLS_BIND_KEYS = ("crt", "alpn", "ssl_min_ver", "ciphers")
# Server keys that mean something only when the server is reached over TLS.
_TLS_SERVER_KEYS = ("ca_file", "sni")

# HAProxy numbers its internal GLOBAL proxy 1, so user proxies start at 2
# (the iid column of `show stat`).
FIRST_PROXY_ID = 2

_SECTION_HEADER_RE = re.compile(
    r"""^\s*\[\[?\s*(listen|frontend|backend)\s*\.\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))""",
    re.MULTILINE,
)


def load_file(path: str) -> Config:
    """Load and validate a TOML file; raise ConfigError listing every problem."""
    return load_string(config_load.file_text(path, ConfigError), source=path)


def load_string(text: str, source: str = "<string>") -> Config:
    """Load TOML text. Proxy ids follow the order of the sections in `text`."""
    data = config_load.document(text, source, ConfigError)
    return _Loader(source, _section_positions(text)).load(data)


def load_dict(data: dict[str, Any], source: str = "<dict>") -> Config:
    """Validate an already parsed TOML document (proxy ids follow dict order)."""
    return _Loader(source, {}).load(data)


def check_file(path: str) -> list[str]:
    """What `gproxy check FILE` prints: one line per problem, or one summary line."""
    try:
        config = load_file(path)
    except ConfigError as exc:
        return exc.lines()
    return [f"{path}: configuration is valid ({summary(config)})"]


def summary(config: Config) -> str:
    """A one-line census of a configuration: "1 listen, 2 frontends, 4 servers"."""
    listens = sum(1 for fe in config.frontends.values() if fe.is_listen)
    counts = [
        (listens, "listen", "listens"),
        (len(config.frontends) - listens, "frontend", "frontends"),
        (len(config.backends) - listens, "backend", "backends"),
        (sum(len(be.servers) for be in config.backends.values()), "server", "servers"),
    ]
    return ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts)



def _section_positions(text: str) -> dict[tuple[str, str], int]:
    """Where each [kind.NAME] first appears: tomllib groups tables by kind, but
    HAProxy numbers proxies in file order, so we recover that order here."""
    positions: dict[tuple[str, str], int] = {}
    for match in _SECTION_HEADER_RE.finditer(text):
        kind, basic, literal, bare = match.groups()
        name = bare if bare is not None else literal if literal is not None else _unescape(basic)
        positions.setdefault((kind, name), match.start())
    return positions


def _unescape(basic: str) -> str:
    try:
        return str(json.loads(f'"{basic}"'))
    except ValueError:
        return basic


def _with_defaults(section: Section, given: dict[str, Any] | None) -> dict[str, Any]:
    """Every key of `section`: the given value or the schema's default."""
    given = given or {}
    return {s.key: given.get(s.key, s.default) for s in section.settings}


@dataclass
class _Proxy:
    kind: str  # listen, frontend or backend
    name: str
    path: str
    own: dict[str, Any]  # the keys written in its section, validated
    eff: dict[str, Any] = field(default_factory=dict)  # after folding [defaults]
    inherited: set[str] = field(default_factory=set)


class _Loader(Walker):
    """One validation run: accumulates problems instead of stopping at the first
    (the walk over tables is gsuite.config_walk's, with gproxy's composites)."""

    def __init__(self, source: str, positions: dict[tuple[str, str], int]):
        super().__init__()
        self.source = source
        self.positions = positions

    # --- the whole document ---------------------------------------------------

    def load(self, data: dict[str, Any]) -> Config:
        if not isinstance(data, dict):
            raise ConfigError([(self.source, f"expected a TOML document (a table), got {kind_of(data)}")])
        for key in data:
            if key not in TOP_LEVEL:
                self.problem(key, "unknown section" + did_you_mean(key, TOP_LEVEL))
        global_ = self.build_global(self.table(data.get("global", {}), GLOBAL, "global") or {})
        snmp = self.snmp(data["snmp"]) if "snmp" in data else None
        defaults = self.table(data.get("defaults", {}), PROXY, "defaults", kind="defaults") or {}
        self.check_proxy_values(defaults, "defaults", "defaults")
        proxies = self.read_proxies(data)

        frontends: dict[str, FrontendConfig] = {}
        backends: dict[str, BackendConfig] = {}
        for proxy_id, proxy in enumerate(proxies, start=FIRST_PROXY_ID):
            self.fold(proxy, defaults)
            if proxy.kind in ("listen", "frontend"):
                frontends[proxy.name] = self.build_frontend(proxy, proxy_id, global_)
            if proxy.kind in ("listen", "backend"):
                backends[proxy.name] = self.build_backend(proxy, proxy_id, global_)
        self.check_routes(proxies, frontends, backends)
        if self.problems:
            raise ConfigError(self.problems)
        return Config(
            global_=global_,
            frontends=frontends,
            backends=backends,
            proxy_order=tuple(p.name for p in proxies),
            source=self.source,
            snmp=snmp,
        )

    def read_proxies(self, data: dict[str, Any]) -> list[_Proxy]:
        """Validate every proxy section; return them in file order, names unique."""
        proxies: list[_Proxy] = []
        for kind in [k for k in data if k in PROXY_KINDS]:
            group = data[kind]
            if not isinstance(group, dict):
                self.problem(kind, f"expected named tables such as [{kind}.NAME], got {kind_of(group)}")
                continue
            for name, body in group.items():
                path = f"{kind}.{name}"
                try:
                    PROXY_NAME.parse(name)
                except ValueError as exc:
                    self.problem(path, f"invalid proxy name: {exc}")
                own = self.table(body, PROXY, path, kind=kind)
                if own is not None:
                    self.check_proxy_values(own, path, kind)
                    proxies.append(_Proxy(kind, name, path, own))
        # Sections the text scan did not place (load_dict) keep their dict order, after the others.
        proxies.sort(key=lambda p: self.positions.get((p.kind, p.name), sys.maxsize))
        unique: list[_Proxy] = []
        seen: dict[str, _Proxy] = {}
        for proxy in proxies:
            first = seen.get(proxy.name)
            if first is None:
                seen[proxy.name] = proxy
                unique.append(proxy)
            else:
                self.problem(proxy.path, f'the name "{proxy.name}" is already used by [{first.path}] '
                             "(a frontend and a backend share a name only as one [listen.NAME])")
        return unique

    # --- generic validation against the schema -----------------------------------

    def table(self, raw: object, section: Section, path: str,  # type: ignore[override]
              kind: str | None = None, **options: Any) -> dict[str, Any] | None:
        """Validate one table: unknown keys, types, required keys and, in a
        proxy of `kind`, where each key may stand. Returns the valid keys only
        (their problems are recorded), or None if not a table."""
        if kind is not None:
            options["accept"] = lambda setting, key_path: self.allowed(setting, kind, key_path)
        values = super().table(raw, section, path, **options)
        if values is None:
            return None
        assert isinstance(raw, dict)  # a table, since the walker returned its keys
        if section is COOKIE and values.get("indirect") and values.get("mode") == "rewrite":
            # HAProxy refuses it too: a rewritten cookie is always the server's to send.
            self.problem(f"{path}.indirect", 'cannot be used with mode = "rewrite"')
        if section is STATS_PAGE and values.get("admin") and not raw.get("auth"):
            # Buttons that change servers must not be open to anyone who reaches the port.
            self.problem(f"{path}.admin", "needs auth: only authenticated users may change servers")
        return values

    def value(self, raw: object, typ: Any, path: str) -> Any:
        if isinstance(typ, Table):
            if typ.switch and isinstance(raw, bool):
                return {} if raw else None
            return self.nested(raw, typ.section, path)
        if isinstance(typ, TableList):
            return self.table_list(raw, typ, path)
        if isinstance(typ, BindList):
            return self.bind_list(raw, path)
        return self.scalar(raw, typ, path)

    def table_list(self, raw: object, typ: TableList, path: str) -> Any:
        if typ.keyword is not None and isinstance(raw, str):
            if raw == typ.keyword:
                return raw
            self.problem(path, f'expected "{typ.keyword}" or an array of tables, got {kind_of(raw)}'
                         + did_you_mean(raw, [typ.keyword]))
            return INVALID
        if typ.single and isinstance(raw, dict):
            return [self.table(raw, typ.section, path)]
        if isinstance(raw, bool) and raw is False and typ.keyword is not None:
            return []
        if not isinstance(raw, list):
            wanted = "a table or an array of tables" if typ.single else "an array of tables"
            self.problem(path, f"expected {wanted}, got {kind_of(raw)}")
            return INVALID
        # Invalid items stay as None so that indexes (and server ids) keep their place.
        return [self.table(item, typ.section, f"{path}[{i}]") for i, item in enumerate(raw)]

    def bind_list(self, raw: object, path: str) -> Any:
        """`bind`: plain "addr:port" strings and [bind] tables, in order. Returns
        one dict of BIND keys per address, or INVALID if any item is wrong."""
        items = [raw] if isinstance(raw, (str, dict)) else raw
        if not isinstance(items, list) or not items:
            self.problem(path, f'expected an array of addresses such as ["*:80"], got {kind_of(raw)}')
            return INVALID
        binds: list[dict[str, Any]] = []
        reasons: list[str] = []
        valid = True
        for index, item in enumerate(items):
            if isinstance(item, dict):
                item_path = f"{path}[{index}]"
                values = self.table(item, BIND, item_path)
                if values is None or "address" not in values or not self.check_bind(values, item_path):
                    valid = False
                elif not self.has_problem_under(item_path):
                    binds.append(values)
                else:
                    valid = False
                continue
            try:
                if not isinstance(item, str):
                    raise ValueError(f'expected an address "addr:port" or a table, got {kind_of(item)}')
                binds.append({"address": parse_address(item, bind=True)})
            except ValueError as exc:
                reasons.append(str(exc))
        if reasons:
            # One line for every bad plain address, as `gproxy check` always said it.
            self.problem(path, "; ".join(reasons))
        return binds if valid and not reasons else INVALID

    def check_bind(self, values: dict[str, Any], path: str) -> bool:
        """TLS keys need ssl = true, and ssl = true needs a certificate."""
        ok = True
        if values.get("ssl"):
            if not values.get("crt"):
                self.problem(f"{path}.crt", "missing: a bind with ssl = true needs a certificate")
                ok = False
        else:
            for key in _TLS_BIND_KEYS:
                if key in values:
                    self.problem(f"{path}.{key}", "only applies with ssl = true")
                    ok = False
        return ok

    def unknown_key(self, path: str, key: str, section: Section,  # type: ignore[override]
                    siblings: tuple[Section, ...]) -> None:
        if section is PROXY and TIMEOUT.get(key) is not None:
            hint = f" (did you mean timeout = {{ {key} = ... }}?)"
        elif section is PROXY and SERVER.get(key) is not None:
            hint = " (a server setting: put it in a server table or in default_server)"
        else:
            hint = did_you_mean(key, section.keys())
        self.problem(path, "unknown key" + hint)

    def allowed(self, setting: Setting, kind: str, path: str) -> bool:
        if kind == "defaults":
            if not setting.in_defaults:
                self.problem(path, "not allowed in [defaults]: write it in each proxy")
                return False
            return True
        if kind == "listen" and setting.key == "default_backend":
            self.problem(path, "not allowed in a listen section: a listen sends requests to its own servers")
            return False
        if not setting.scope & SIDES[kind]:
            where = "backend and listen" if "backend" in setting.scope else "frontend and listen"
            self.problem(path, f"not allowed in a {kind} section: it belongs in {where} sections")
            return False
        return True

    def check_proxy_values(self, values: dict[str, Any], path: str, kind: str) -> None:
        """Checks within one section (before [defaults] is folded in)."""
        if values.get("httplog") and values.get("tcplog"):
            self.problem(f"{path}.tcplog", "cannot be used together with httplog: choose one log format")
        if kind == "defaults" and values.get("balance_uri_whole") and values.get("balance", "uri") != "uri":
            self.problem(f"{path}.balance_uri_whole", 'only applies to balance = "uri"')

    # --- folding [defaults] and the rules of modes ------------------------------------

    def fold(self, proxy: _Proxy, defaults: dict[str, Any]) -> None:
        """Compute the proxy's effective values: its own over [defaults]."""
        sides = SIDES[proxy.kind]
        for key, value in defaults.items():
            setting = PROXY.get(key)
            if setting is None or not setting.scope & sides:
                continue
            if proxy.kind == "listen" and key == "default_backend":
                continue
            proxy.eff[key] = value
            proxy.inherited.add(key)
        for key, value in proxy.own.items():
            setting = PROXY.get(key)
            inherited = proxy.eff.get(key)
            if setting is not None and setting.merge and isinstance(inherited, dict) and isinstance(value, dict):
                proxy.eff[key] = {**inherited, **value}
            else:
                proxy.eff[key] = value
            proxy.inherited.discard(key)
        self.apply_log_format(proxy)
        if proxy.eff.get("mode", PROXY["mode"].default) == "tcp":
            self.apply_tcp_mode(proxy)
        if proxy.eff.get("balance_uri_whole") and proxy.eff.get("balance") != "uri":
            if "balance_uri_whole" in proxy.inherited:
                del proxy.eff["balance_uri_whole"]
            else:
                self.problem(f"{proxy.path}.balance_uri_whole", 'only applies to balance = "uri"')

    @staticmethod
    def apply_log_format(proxy: _Proxy) -> None:
        """httplog and tcplog exclude each other; the proxy's own choice beats [defaults]."""
        eff = proxy.eff
        if eff.get("httplog") and eff.get("tcplog"):
            if "httplog" in proxy.inherited and "tcplog" not in proxy.inherited:
                eff["httplog"] = False
            elif "tcplog" in proxy.inherited and "httplog" not in proxy.inherited:
                eff["tcplog"] = False

    def apply_tcp_mode(self, proxy: _Proxy) -> None:
        """HTTP features written in a tcp proxy are errors; inherited from
        [defaults] they simply do not apply (httplog becomes tcplog, as in HAProxy)."""
        for key in list(proxy.eff):
            setting = PROXY.get(key)
            if setting is None or not _is_http_feature(setting, proxy.eff[key]):
                continue
            if key in proxy.inherited:
                del proxy.eff[key]
                if key == "httplog" and "tcplog" not in proxy.own:
                    proxy.eff["tcplog"] = True
            else:
                self.problem(f"{proxy.path}.{key}", 'needs mode = "http" (this proxy is in tcp mode)')

    # --- building the value objects ---------------------------------------------

    def snmp(self, raw: object) -> SnmpConfig | None:
        """[snmp]: checked by gsuite.snmp_config, which heartbeat's loader shares."""
        config, problems = parse_snmp(raw, "snmp")
        for path, reason in problems:
            self.problem(path, reason)
        return config

    def build_global(self, values: dict[str, Any]) -> GlobalConfig:
        settings = _with_defaults(GLOBAL, values)
        sockets: list[StatsSocket] = []
        paths: dict[str, int] = {}
        for index, sock in enumerate(settings["stats_socket"] or ()):
            if not sock or "path" not in sock:
                continue
            if sock["path"] in paths:
                self.problem(f"global.stats_socket[{index}].path",
                             f'{show(sock["path"])} is already used by stats_socket[{paths[sock["path"]]}]')
            paths.setdefault(sock["path"], index)
            sockets.append(StatsSocket(**_with_defaults(STATS_SOCKET, sock)))
        return GlobalConfig(
            maxconn=settings["maxconn"],
            log=self.log_targets(settings["log"]),
            chroot=settings["chroot"],
            user=settings["user"],
            group=settings["group"],
            daemon=settings["daemon"],
            pidfile=settings["pidfile"],
            stats_sockets=tuple(sockets),
            stats_timeout=settings["stats_timeout"],
            tune=Tune(**_with_defaults(TUNE, settings["tune"])),
            node=settings["node"],
            grace=settings["grace"],
            workers=settings["workers"],
            hard_stop_after=settings["hard_stop_after"],
            state_file=settings["state_file"],
        )

    @staticmethod
    def log_targets(items: Any) -> tuple[LogTarget, ...]:
        return tuple(LogTarget(**_with_defaults(LOG_TARGET, t)) for t in items or () if t and "target" in t)

    def log_settings(self, eff: dict[str, Any], global_: GlobalConfig) -> LogSettings:
        log = eff.get("log")
        targets = global_.log if log == "global" else self.log_targets(log)
        return LogSettings(
            targets=targets,
            httplog=bool(eff.get("httplog", False)),
            tcplog=bool(eff.get("tcplog", False)),
            dontlognull=bool(eff.get("dontlognull", False)),
            log_health_checks=bool(eff.get("log_health_checks", False)),
        )

    @staticmethod
    def forwardfor(values: dict[str, Any] | None) -> ForwardFor | None:
        if values is None:
            return None
        settings = _with_defaults(FORWARDFOR, values)
        return ForwardFor(header=settings["header"], except_net=settings["except"], if_none=settings["if_none"])

    def build_binds(self, proxy: _Proxy, eff: dict[str, Any]) -> tuple[BindConfig, ...]:
        binds = []
        for index, values in enumerate(eff["bind"] or ()):
            settings = _with_defaults(BIND, values)
            if eff["mode"] == "http":
                for protocol in settings["alpn"]:
                    if protocol not in HTTP_ALPN:
                        self.problem(f"{proxy.path}.bind[{index}].alpn",
                                     f'{show(protocol)}: an HTTP frontend speaks HTTP/1.x only (offer "http/1.1")')
            binds.append(BindConfig(**settings))
        return tuple(binds)

    def build_frontend(self, proxy: _Proxy, proxy_id: int, global_: GlobalConfig) -> FrontendConfig:
        eff = _with_defaults(PROXY, proxy.eff)
        if not eff["bind"] and not self.has_problem_under(f"{proxy.path}.bind"):
            self.problem(f"{proxy.path}.bind", "missing: a frontend needs at least one address to listen on")
        binds = self.build_binds(proxy, eff)
        return FrontendConfig(
            name=proxy.name,
            id=proxy_id,
            mode=eff["mode"],
            bind=tuple(b.address for b in binds),
            binds=binds,
            hsts=eff["hsts"],
            redirect_to_https=eff["redirect_to_https"],
            max_body_size=eff["max_body_size"],
            maxconn_per_client=eff["maxconn_per_client"],
            default_backend=proxy.name if proxy.kind == "listen" else eff["default_backend"],
            maxconn=eff["maxconn"],
            timeouts=Timeouts(**_with_defaults(TIMEOUT, eff["timeout"])),
            log=self.log_settings(eff, global_),
            forwardfor=self.forwardfor(eff["forwardfor"]),
            connection_mode=eff["connection_mode"],
            is_listen=proxy.kind == "listen",
            stats=eff["stats"],
            prometheus=eff["prometheus"],
        )

    def build_backend(self, proxy: _Proxy, proxy_id: int, global_: GlobalConfig) -> BackendConfig:
        eff = _with_defaults(PROXY, proxy.eff)
        return BackendConfig(
            name=proxy.name,
            id=proxy_id,
            mode=eff["mode"],
            servers=self.build_servers(proxy, eff),
            balance=eff["balance"],
            hash_type=eff["hash_type"],
            uri_whole=eff["balance_uri_whole"],
            cookie=CookieConfig(**_with_defaults(COOKIE, eff["cookie"])) if eff["cookie"] else None,
            httpchk=HttpCheck(**_with_defaults(HTTPCHK, eff["httpchk"])) if eff["httpchk"] is not None else None,
            forwardfor=self.forwardfor(eff["forwardfor"]),
            connection_mode=eff["connection_mode"],
            retries=eff["retries"],
            redispatch=eff["redispatch"],
            allbackups=eff["allbackups"],
            fullconn=eff["fullconn"],
            timeouts=Timeouts(**_with_defaults(TIMEOUT, eff["timeout"])),
            log=self.log_settings(eff, global_),
            is_listen=proxy.kind == "listen",
        )

    def build_servers(self, proxy: _Proxy, eff: dict[str, Any]) -> tuple[ServerConfig, ...]:
        servers: list[ServerConfig] = []
        first_index: dict[str, int] = {}
        server_defaults = _with_defaults(DEFAULT_SERVER, eff["default_server"])
        for index, own in enumerate(eff["server"] or ()):
            if not own or "name" not in own:
                continue  # its problems are recorded already
            name = own["name"]
            if name in first_index:
                self.problem(f"{proxy.path}.server[{index}].name",
                             f"duplicate server name {show(name)} (also server[{first_index[name]}])")
                continue
            first_index[name] = index
            if "address" not in own:
                continue
            settings = {**server_defaults, **own}
            if not settings["ssl"]:
                for key in _TLS_SERVER_KEYS:
                    if key in own:
                        self.problem(f"{proxy.path}.server[{index}].{key}", "only applies with ssl = true")
            servers.append(ServerConfig(
                name=name,
                address=own["address"],
                id=index + 1,
                weight=settings["weight"],
                check=settings["check"],
                inter=settings["inter"],
                fastinter=settings["fastinter"],
                downinter=settings["downinter"],
                rise=settings["rise"],
                fall=settings["fall"],
                check_port=settings["port"],
                backup=settings["backup"],
                cookie=settings["cookie"],
                maxconn=settings["maxconn"],
                maxqueue=settings["maxqueue"],
                disabled=settings["disabled"],
                ssl=settings["ssl"],
                verify=settings["verify"],
                ca_file=settings["ca_file"],
                sni=settings["sni"],
                send_proxy=settings["send_proxy"],
            ))
        return tuple(servers)

    # --- between proxies ------------------------------------------------------------

    def check_routes(self, proxies: list[_Proxy], frontends: dict[str, FrontendConfig],
                     backends: dict[str, BackendConfig]) -> None:
        """Every default_backend names a backend of the same mode."""
        for proxy in proxies:
            if proxy.kind != "frontend":
                continue
            frontend = frontends[proxy.name]
            target = frontend.default_backend
            if target is None:
                continue
            origin = " (set in [defaults])" if "default_backend" in proxy.inherited else ""
            path = f"{proxy.path}.default_backend"
            backend = backends.get(target)
            if backend is None:
                self.problem(path, f"no backend named {show(target)}{origin}" + did_you_mean(target, list(backends)))
            elif backend.mode != frontend.mode:
                self.problem(path, f"backend {show(target)} is in {backend.mode} mode "
                             f"but this frontend is in {frontend.mode} mode{origin}")


def _is_http_feature(setting: Setting, value: Any) -> bool:
    """Is this effective value an HTTP-only feature turned on?"""
    if setting.key == "balance":
        return bool(value == "uri")
    if not setting.http_only or value is None or value is False:
        return False
    return not (setting.key == "connection_mode" and value == "keep-alive")
