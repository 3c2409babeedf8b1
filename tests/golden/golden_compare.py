"""Comparing gproxy's runtime-API answers with HAProxy 2.6's captured ones.

The captures (haproxy-2.6/transcript.json, written by
scripts/capture_haproxy_golden.py) hold, per step, what was sent and what
HAProxy answered, ports replaced by @NAME@ tokens. `compare(step, ours)`
returns the differences (empty when gproxy's answer matches), by the step's
comparison kind:

- exact: byte for byte;
- stat_csv: header byte for byte; rows, their order and field count; every
  field empty in one iff empty in the other; values equal for the fields
  that do not depend on timing or traffic (DETERMINISTIC_STAT);
- stat_typed: the same per line (object, position, name, tags, type);
- info / info_typed / info_json: keys, their order, and the stable values;
- stat_json: rows, and per field its position, name, tags and type, and
  the stable values;
- servers_state: version and header lines, rows, stable columns;
- errors / sess: the shape of `show errors` / `show sess`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

GOLDEN_DIR = Path(__file__).resolve().parent / "haproxy-2.6"

# `show stat` fields whose value does not depend on timing or traffic.
DETERMINISTIC_STAT = frozenset({
    "pxname", "svname", "slim", "status", "weight", "act", "bck", "chkfail", "chkdown", "qlimit", "pid",
    "iid", "sid", "throttle", "tracked", "type", "rate_lim", "check_status", "check_code", "check_desc",
    "last_chk", "check_rise", "check_fall", "check_health", "agent_status", "agent_code", "agent_desc",
    "agent_rise", "agent_fall", "agent_health", "addr", "cookie", "mode", "algo", "uweight", "src_ilim",
    "hanafail", "-",
})
# `show info` keys with a value stable for the golden configuration.
DETERMINISTIC_INFO = frozenset({
    "Nbthread", "Nbproc", "Process_num", "Maxconn", "Hard_maxconn", "Memmax_MB", "PoolFailed",
    "MaxSslConns", "CurrSslConns", "CumSslConns", "Maxpipes", "PipesUsed", "PipesFree", "ConnRateLimit",
    "SessRateLimit", "SslRate", "SslRateLimit", "MaxSslRate", "SslFrontendKeyRate", "SslFrontendMaxKeyRate",
    "SslFrontendSessionReuse_pct", "SslBackendKeyRate", "SslBackendMaxKeyRate", "SslCacheLookups",
    "SslCacheMisses", "CompressBpsIn", "CompressBpsOut", "CompressBpsRateLim", "Run_queue", "Stopping",
    "Unstoppable Jobs", "ActivePeers", "ConnectedPeers", "DroppedLogs", "BusyPolling", "FailedResolutions",
    "TotalSplicdedBytesOut", "DebugCommandsIssued", "CumRecvLogs", "Memmax_bytes", "Tainted",
})
# `show servers state` columns that do not depend on timing.
VOLATILE_SERVERS_STATE = frozenset({"srv_time_since_last_change"})
EOF_MARK = "<EOF>"
TIMEOUT_MARK = "<TIMEOUT>"


def load_transcript() -> dict:
    return json.loads((GOLDEN_DIR / "transcript.json").read_text())


def steps_by_name() -> dict[str, dict]:
    return {step["name"]: step for step in load_transcript()["steps"]}


def substitute(text: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    return text


def tokenize_ports(text: str, ports: dict[str, int]) -> str:
    """Replace port numbers by their @NAME@ token, as the capture did."""
    for name, port in sorted(ports.items(), key=lambda item: -len(str(item[1]))):
        text = re.sub(r"(?<![0-9])" + str(port) + r"(?![0-9])", f"@{name}@", text)
    return text


def _body(answer: str) -> str:
    for mark in (EOF_MARK, TIMEOUT_MARK):
        if answer.endswith(mark):
            return answer[: -len(mark)]
    return answer


def _ending(answer: str) -> str:
    return EOF_MARK if answer.endswith(EOF_MARK) else TIMEOUT_MARK if answer.endswith(TIMEOUT_MARK) else ""


def compare(step: dict, ours: str, kind: str | None = None) -> list[str]:
    kind = kind or step["compare"]
    golden = step["answer"]
    problems = []
    if _ending(golden) != _ending(ours):
        problems.append(f"connection end: HAProxy {_ending(golden)!r}, gproxy {_ending(ours)!r}")
    checker = _CHECKERS[kind]
    problems += checker(_body(golden), _body(ours))
    return [f"{step['name']}: {p}" for p in problems]


def _exact(golden: str, ours: str) -> list[str]:
    return [] if golden == ours else [f"expected {golden!r}, got {ours!r}"]


def _csv_lines(text: str) -> list[str]:
    if not text.endswith("\n\n"):
        raise AssertionError(f"answer does not end with an empty line: {text[-80:]!r}")
    return text[:-1].splitlines()


def stat_csv(golden: str, ours: str) -> list[str]:
    problems: list[str] = []
    try:
        g_lines, o_lines = _csv_lines(golden), _csv_lines(ours)
    except AssertionError as exc:
        return [str(exc)]
    if not g_lines or not o_lines:
        return [f"empty answer: HAProxy {len(g_lines)} lines, gproxy {len(o_lines)}"]
    if g_lines[0] != o_lines[0]:
        return [f"header differs:\n  {g_lines[0]}\n  {o_lines[0]}"]
    names = g_lines[0][2:].split(",")[:-1]
    g_rows = [line.split(",") for line in g_lines[1:]]
    o_rows = [line.split(",") for line in o_lines[1:]]
    g_keys = [row[:2] for row in g_rows]
    o_keys = [row[:2] for row in o_rows]
    if g_keys != o_keys:
        return [f"rows differ: HAProxy {g_keys}, gproxy {o_keys}"]
    for g_row, o_row in zip(g_rows, o_rows):
        key = "/".join(g_row[:2])
        if len(o_row) != len(names) + 1 or o_row[-1] != "":
            problems.append(f"{key}: {len(o_row) - 1} fields or no trailing comma")
            continue
        # HAProxy 2.6 cuts the BACKEND line short when `up`/`no-maint` lengthen
        # its status ("UP (4/6)"): compare the fields it did print.
        truncated = len(g_row) < len(o_row)
        count = len(g_row) - 1 if truncated else len(names)
        for index in range(count):
            name = names[index]
            g_value, o_value = g_row[index], o_row[index]
            if name == "check_status":
                g_value, o_value = g_value.removeprefix("* "), o_value.removeprefix("* ")
            if (g_value == "") != (o_value == ""):
                problems.append(f"{key}.{name}: HAProxy {g_value!r}, gproxy {o_value!r} (emptiness)")
            elif name in DETERMINISTIC_STAT and g_value != o_value:
                problems.append(f"{key}.{name}: HAProxy {g_value!r}, gproxy {o_value!r}")
    return problems


def _typed_lines(text: str) -> list[tuple[str, str, str, str]]:
    out = []
    for line in text.splitlines():
        if not line:
            continue
        head, tags, type_name, value = line.split(":", 3)
        out.append((head, tags, type_name, value))
    return out


def stat_typed(golden: str, ours: str) -> list[str]:
    g, o = _typed_lines(golden), _typed_lines(ours)
    problems = []
    g_heads, o_heads = [x[0] for x in g], [x[0] for x in o]
    if g_heads != o_heads:
        missing = sorted(set(g_heads) - set(o_heads))
        extra = sorted(set(o_heads) - set(g_heads))
        return [f"typed fields differ: missing {missing[:10]}, extra {extra[:10]}"]
    for (head, g_tags, g_type, g_value), (_, o_tags, o_type, o_value) in zip(g, o):
        name = head.split(".")[4]
        if (g_tags, g_type) != (o_tags, o_type):
            problems.append(f"{head}: HAProxy {g_tags}:{g_type}, gproxy {o_tags}:{o_type}")
        if name == "check_status":
            g_value, o_value = g_value.removeprefix("* "), o_value.removeprefix("* ")
        if name in DETERMINISTIC_STAT and g_value != o_value:
            problems.append(f"{head}: HAProxy {g_value!r}, gproxy {o_value!r}")
    return problems


def _info(text: str, typed: bool) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        if not line:
            continue
        if typed:
            head, _, value = line.partition(":")
            pos, _, rest = head.partition(".")
            name = rest.rsplit(".", 1)[0]
            tags, type_name, value = value.split(":", 2)
            pairs.append((f"{pos}.{name}:{tags}:{type_name}", value))
        else:
            name, sep, value = line.partition(": ")
            pairs.append((name, value))
    return pairs


def _compare_info(golden: str, ours: str, typed: bool) -> list[str]:
    g, o = _info(golden, typed), _info(ours, typed)
    if [k for k, _ in g] != [k for k, _ in o]:
        return [f"keys differ: HAProxy {[k for k, _ in g]}, gproxy {[k for k, _ in o]}"]
    problems = []
    for (key, g_value), (_, o_value) in zip(g, o):
        name = key.split(":")[0].split(".", 1)[-1] if typed else key
        if name in DETERMINISTIC_INFO and g_value != o_value:
            problems.append(f"{name}: HAProxy {g_value!r}, gproxy {o_value!r}")
    return problems


def servers_state(golden: str, ours: str) -> list[str]:
    g, o = golden.splitlines(), ours.splitlines()
    if g[:2] != o[:2]:
        return [f"version/header differ: {g[:2]} vs {o[:2]}"]
    header = g[1][2:].split(" ")
    problems = []
    g_rows = [line.split(" ") for line in g[2:] if line]
    o_rows = [line.split(" ") for line in o[2:] if line]
    if [r[:4] for r in g_rows] != [r[:4] for r in o_rows]:
        return [f"rows differ: {[r[:4] for r in g_rows]} vs {[r[:4] for r in o_rows]}"]
    for g_row, o_row in zip(g_rows, o_rows):
        if len(g_row) != len(o_row):
            problems.append(f"{g_row[1]}/{g_row[3]}: {len(o_row)} columns, HAProxy {len(g_row)}")
            continue
        g_check_state, o_check_state = int(g_row[13]), int(o_row[13])
        racing = (g_check_state | o_check_state) & 1  # a check was running at capture time
        for name, g_value, o_value in zip(header, g_row, o_row):
            if name in VOLATILE_SERVERS_STATE or (racing and name == "srv_check_result"):
                continue
            if name == "srv_check_state":
                g_value, o_value = str(int(g_value) & ~1), str(int(o_value) & ~1)
            if g_value != o_value:
                problems.append(f"{g_row[1]}/{g_row[3]}.{name}: HAProxy {g_value!r}, gproxy {o_value!r}")
    return problems


def _json_fields(text: str, problems: list[str]) -> list[dict]:
    if not text.endswith("\n\n") or "\n" in text[:-2]:
        problems.append(f"not one JSON line and an empty line: ...{text[-40:]!r}")
    try:
        return json.loads(text)
    except ValueError as exc:
        problems.append(f"not JSON: {exc}")
        return []


def _json_key(item: dict) -> tuple:
    return (item.get("objType"), item.get("proxyId"), item.get("id"), item["field"]["pos"], item["field"]["name"],
            item["processNum"], tuple(item["tags"].items()), item["value"]["type"])


def _compare_json(golden: list, ours: list, deterministic: frozenset, where: str, problems: list[str]) -> None:
    if [_json_key(i) for i in golden] != [_json_key(i) for i in ours]:
        missing = [_json_key(i) for i in golden if _json_key(i) not in {_json_key(o) for o in ours}]
        extra = [_json_key(o) for o in ours if _json_key(o) not in {_json_key(i) for i in golden}]
        problems.append(f"{where}: fields differ: missing {missing[:5]}, extra {extra[:5]}")
        return
    for g, o in zip(golden, ours):
        name = g["field"]["name"]
        g_value, o_value = g["value"]["value"], o["value"]["value"]
        if name == "check_status":
            g_value, o_value = str(g_value).removeprefix("* "), str(o_value).removeprefix("* ")
        if name in deterministic and g_value != o_value:
            problems.append(f"{where}.{name}: HAProxy {g_value!r}, gproxy {o_value!r}")


def info_json(golden: str, ours: str) -> list[str]:
    problems: list[str] = []
    g, o = _json_fields(golden, problems), _json_fields(ours, problems)
    if not problems:
        _compare_json(g, o, DETERMINISTIC_INFO, "info", problems)
    return problems


def stat_json(golden: str, ours: str) -> list[str]:
    problems: list[str] = []
    g, o = _json_fields(golden, problems), _json_fields(ours, problems)
    if problems:
        return problems
    if len(g) != len(o):
        return [f"{len(g)} rows from HAProxy, {len(o)} from gproxy"]
    for g_row, o_row in zip(g, o):
        where = f"{g_row[0]['value']['value']}/{g_row[1]['value']['value']}" if len(g_row) > 1 else "?"
        _compare_json(g_row, o_row, DETERMINISTIC_STAT, where, problems)
    return problems


_DATE = r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\]"


def errors(golden: str, ours: str) -> list[str]:
    problems = []
    for text, who in ((golden, "HAProxy"), (ours, "gproxy")):
        if not re.match(rf"Total events captured on {_DATE} : \d+\n", text):
            problems.append(f"{who}: bad first line {text.splitlines()[:1]}")
    g_titles = re.findall(rf"^{_DATE} (.*)$", golden, re.M)
    o_titles = re.findall(rf"^{_DATE} (.*)$", ours, re.M)
    if g_titles != o_titles:
        problems.append(f"entries differ: HAProxy {g_titles}, gproxy {o_titles}")
    g_dump = [line for line in golden.splitlines() if re.match(r"  \d{5}  ", line)]
    o_dump = [line for line in ours.splitlines() if re.match(r"  \d{5}  ", line)]
    if g_dump != o_dump:
        problems.append(f"dumps differ: HAProxy {g_dump}, gproxy {o_dump}")
    return problems


def sess(golden: str, ours: str) -> list[str]:
    pattern = re.compile(r"^0x[0-9a-f]+: proto=\S+ src=\S+ fe=\S+ be=\S+ srv=\S+ ts=\d+ ")
    problems = []
    for text, who in ((golden, "HAProxy"), (ours, "gproxy")):
        lines = [line for line in text.splitlines() if line]
        if not lines or not all(pattern.match(line) for line in lines):
            problems.append(f"{who}: unexpected lines {lines}")
    if "fe=GLOBAL" not in ours:
        problems.append("gproxy does not list its own CLI connection (fe=GLOBAL)")
    return problems


def usage_shape(golden: str, ours: str) -> list[str]:
    """Help texts: same first line, every listed line a real HAProxy usage
    line, the three always-listed lines last, the empty line at the end."""
    g, o = golden.splitlines(), ours.splitlines()
    problems = []
    if g[:1] != o[:1]:
        problems.append(f"first line: HAProxy {g[:1]}, gproxy {o[:1]}")
    if g[-4:] != o[-4:]:
        problems.append(f"last lines: HAProxy {g[-4:]}, gproxy {o[-4:]}")
    known = set(full_help_lines())
    unknown = [line for line in o[1:-4] if line not in known]
    if unknown:
        problems.append(f"lines HAProxy never prints: {unknown}")
    return problems


def prompt_usage(golden: str, ours: str) -> list[str]:
    """A help text answered in interactive mode: `\n> ` before, `> ` after."""
    problems = []
    for text, who in ((golden, "HAProxy"), (ours, "gproxy")):
        if not (text.startswith("\n> ") and text.endswith("\n> ")):
            problems.append(f"{who}: not framed by prompts: {text[:10]!r}...{text[-10:]!r}")
    return problems or usage_shape(golden[3:-2], ours[3:-2])


def help_subset(golden: str, ours: str) -> list[str]:
    """`help`: HAProxy's list restricted to the commands gproxy has, same order, same bytes."""
    ours_lines = ours.splitlines()
    golden_lines = golden.splitlines()
    wanted = [line for line in golden_lines if line in set(ours_lines)]
    problems = usage_shape(golden, ours)
    if wanted != ours_lines:
        problems.append(f"order or content differs:\n{wanted}\n{ours_lines}")
    return problems


def full_help_lines() -> list[str]:
    return steps_by_name()["help"]["answer"].splitlines()


_CHECKERS = {
    "exact": _exact,
    "stat_csv": stat_csv,
    "stat_typed": stat_typed,
    "info": lambda g, o: _compare_info(g, o, typed=False),
    "info_typed": lambda g, o: _compare_info(g, o, typed=True),
    "servers_state": servers_state,
    "errors": errors,
    "sess": sess,
    "usage": usage_shape,
    "help": help_subset,
    "prompt_usage": prompt_usage,
    "info_json": info_json,
    "stat_json": stat_json,
}
