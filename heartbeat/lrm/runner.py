"""Runs one resource agent action as a subprocess (Pacemaker's execd, one call).

`run_action()` finds the agent (`agent_path()`), builds its environment
(`build_environment()`, pure), runs it in its own process group with a
timeout, and turns what happened into an `ActionResult` with an OCF code.
It never raises for an agent's failure: a missing agent is OCF 5, an agent
that cannot be executed 4 or 1, a hung one is killed (SIGTERM, then SIGKILL
to its whole process group) and reported with `timed_out=True`.

Output goes to unlinked temporary files rather than pipes: an agent that
starts a daemon which inherits stdout would otherwise hold the pipe open
and make every start look hung. Only a bounded tail is kept.

gevent-friendly: the wait for the agent's exit is a gevent wait on a pidfd
(Linux >= 5.3; elsewhere a cooperative poll), so other greenlets
(heartbeats, recurring monitors) keep running while an agent works. It is
not gevent.subprocess's SIGCHLD watcher on purpose: in a process that is not
monkey-patched, that watcher reaps every child (waitpid(-1)) and stdlib
`subprocess` callers elsewhere in the process then read exit status 0.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Mapping

import subprocess

import gevent
from gevent.socket import wait_read

from heartbeat.errors import AgentError
from heartbeat.lrm.codes import (ACTIONS, LSB_ACTION_NAMES, OcfRc, Recovery, as_ocf, describe, is_failure,
                                 lsb_to_ocf, recovery)
from heartbeat.model import AgentSpec, ResourceConfig

DEFAULT_OCF_ROOT = "/usr/lib/ocf"
LSB_INIT_DIR = "/etc/init.d"
# The provider whose agents ship inside this package: found without installation.
BUILTIN_PROVIDER = "gproxy"
# heartbeat/agents is itself a "resource.d" root: agents/<provider>/<type>.
# Resolved from __file__ so that editable installs find the source tree's copy.
AGENTS_DIR = Path(__file__).resolve().parent.parent / "agents"

OCF_RA_VERSION_MAJOR = "1"  # the API version we speak (reference 2.3)
OCF_RA_VERSION_MINOR = "0"
EXIT_REASON_PREFIX = "ocf-exit-reason:"  # what ocf_exit_reason prints on stderr

OUTPUT_LIMIT = 4096  # characters of agent output kept in an ActionResult
OUTPUT_LINES = 20  # ... and at most this many lines of it
KILL_GRACE_MS = 2000  # a timed-out agent gets this long between SIGTERM and SIGKILL
POLL_MIN_S, POLL_MAX_S = 0.005, 0.1  # exit polling without pidfd: quick at first, then backing off
# Agents call ip, arping, ...: a daemon started with a minimal PATH still finds them.
STANDARD_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")  # provider/type/script: no path tricks
_META_NAME_RE = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class ActionResult:
    """The outcome of one agent action, already in OCF terms."""

    resource: str
    action: str  # start | stop | monitor | probe | reload | validate-all | meta-data
    rc: int  # an OcfRc (LSB codes are mapped); a timeout reports ERR_GENERIC
    timed_out: bool
    duration_ms: int
    output: str  # the last lines of stdout then stderr, bounded by OUTPUT_LIMIT
    reason: str  # "ok", "not running", "timed out after 20000ms", "exit 1: <why>"
    interval_ms: int = 0  # 0 but for a recurring monitor (fail counts are per op and interval)

    @property
    def ok(self) -> bool:
        """Succeeded, or (for a probe) answered "not running"."""
        return not is_failure(self.action, self.rc, self.timed_out)

    @property
    def recovery(self) -> Recovery:
        return recovery(self.rc, self.timed_out)

    @property
    def op_key(self) -> str:
        """Pacemaker's operation key, as used in fail-count names: `monitor_10000`."""
        return f"{self.action}_{self.interval_ms}"


# ---- finding the agent -------------------------------------------------------

def agents_dir() -> Path:
    """The package's own resource.d root (agents/<provider>/<type>)."""
    return AGENTS_DIR


def _check_name(kind: str, name: str | None) -> str:
    if not name or not _NAME_RE.match(name):
        raise AgentError(f"invalid agent {kind} {name!r}")
    return name


def agent_path(spec: AgentSpec, ocf_root: str | None = None, *, lsb_dir: str | None = None) -> str:
    """The executable for `spec`: an OCF agent of the built-in provider comes
    from the package first, then `$OCF_ROOT/resource.d/PROVIDER/TYPE`; an LSB
    script is /etc/init.d/NAME. AgentError if none is there and executable."""
    name = _check_name("type", spec.type)
    if spec.standard == "lsb":
        candidates = [os.path.join(lsb_dir or LSB_INIT_DIR, name)]
    elif spec.standard == "ocf":
        provider = _check_name("provider", spec.provider)
        candidates = []
        if provider == BUILTIN_PROVIDER:
            candidates.append(str(agents_dir() / provider / name))
        candidates.append(os.path.join(ocf_root or DEFAULT_OCF_ROOT, "resource.d", provider, name))
    else:
        raise AgentError(f"unknown agent standard {spec.standard!r}")
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise AgentError(f"{spec}: no executable agent at {' or '.join(candidates)}")


# ---- the environment (pure) --------------------------------------------------

def agent_verb(spec: AgentSpec, action: str) -> str | None:
    """The argument the agent gets: OCF probes are `monitor`; LSB scripts only
    know start, stop and status (and maybe force-reload). None: unsupported."""
    if action not in ACTIONS:
        return None
    if spec.standard == "lsb":
        return LSB_ACTION_NAMES.get(action)
    return "monitor" if action == "probe" else action


def _base_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The daemon's environment minus any OCF variables of its own, with the
    standard sbin/bin directories on PATH."""
    env = {k: v for k, v in environ.items() if not k.startswith(("OCF_", "__OCF_"))}
    path = [p for p in env.get("PATH", "").split(":") if p]
    path += [p for p in STANDARD_PATH if p not in path]
    env["PATH"] = ":".join(path)
    return env


def meta_variable(name: str) -> str:
    """`OCF_RESKEY_CRM_meta_<name>` with every non-identifier character as `_`."""
    return "OCF_RESKEY_CRM_meta_" + _META_NAME_RE.sub("_", name)


def build_environment(resource: ResourceConfig, action: str, timeout_ms: int, interval_ms: int = 0,
                      ocf_root: str | None = None, environ: Mapping[str, str] | None = None,
                      extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The agent's environment (reference 2.3). LSB scripts get no OCF
    variables (they take no parameters). `environ` defaults to os.environ."""
    env = _base_environment(os.environ if environ is None else environ)
    spec = resource.agent
    if spec.standard == "ocf":
        root = ocf_root or DEFAULT_OCF_ROOT
        env.update({
            "OCF_ROOT": root,
            "OCF_FUNCTIONS_DIR": os.path.join(root, "lib", "heartbeat"),
            "OCF_RA_VERSION_MAJOR": OCF_RA_VERSION_MAJOR,
            "OCF_RA_VERSION_MINOR": OCF_RA_VERSION_MINOR,
            "OCF_RESOURCE_INSTANCE": resource.id,
            "OCF_RESOURCE_TYPE": spec.type,
            "OCF_RESOURCE_PROVIDER": spec.provider or "",
            # A probe is a monitor with interval 0: that is how agents tell (ocf_is_probe).
            meta_variable("timeout"): str(timeout_ms),
            meta_variable("interval"): "0" if action == "probe" else str(interval_ms),
        })
        for name, value in resource.params:
            env[f"OCF_RESKEY_{name}"] = value
    if extra_env:
        env.update(extra_env)
    return env


# ---- running it ----------------------------------------------------------------

def _tail(handle: IO[bytes], limit: int) -> list[str]:
    """The last lines of a temporary output file, at most `limit` characters."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(max(0, size - limit))
    lines = handle.read().decode("utf-8", "replace").splitlines()
    if size > limit and lines:
        lines = lines[1:]  # the first one is cut
    return [line.rstrip() for line in lines if line.strip()]


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # the whole group is gone already
    except PermissionError:
        pass  # not ours any more (a setuid helper): nothing we can do


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd here (old kernel or not Linux), or already reaped
        return None


def _wait_exit(proc: subprocess.Popen[bytes], pidfd: int | None, timeout_s: float) -> bool:
    """Wait cooperatively until the agent exits, at most `timeout_s`; True if
    it did (it is then reaped). A pidfd becomes readable when its process exits."""
    if pidfd is not None:
        try:
            wait_read(pidfd, timeout=timeout_s)
        except TimeoutError:
            return False
        proc.wait()
        return True
    deadline = time.monotonic() + timeout_s
    delay = POLL_MIN_S
    while proc.poll() is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        gevent.sleep(min(delay, left))
        delay = min(delay * 2, POLL_MAX_S)
    return True


def _terminate(proc: subprocess.Popen[bytes], pidfd: int | None) -> None:
    """SIGTERM the agent's process group, give it KILL_GRACE_MS, then SIGKILL
    what is left of the group (children that ignored TERM included)."""
    _signal_group(proc.pid, signal.SIGTERM)
    _wait_exit(proc, pidfd, KILL_GRACE_MS / 1000)
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _exec_failure_rc(exc: OSError) -> OcfRc:
    if exc.errno == errno.ENOENT:
        return OcfRc.ERR_INSTALLED
    if exc.errno in (errno.EACCES, errno.EPERM):
        return OcfRc.ERR_PERM
    return OcfRc.ERR_GENERIC


def _reason(action: str, rc: int, raw_rc: int, timed_out: bool, timeout_ms: int,
            stdout: list[str], stderr: list[str], lsb: bool) -> str:
    if timed_out:
        return f"timed out after {timeout_ms}ms"
    if rc == OcfRc.SUCCESS:
        return "ok"
    if rc == OcfRc.NOT_RUNNING and action in ("monitor", "probe"):
        return "not running"
    reasons = [line[len(EXIT_REASON_PREFIX):].strip() for line in stderr if line.startswith(EXIT_REASON_PREFIX)]
    known = describe(rc) if isinstance(as_ocf(rc), OcfRc) else "no reason given"
    detail = reasons[-1] if reasons else (stderr or stdout or [known])[-1]
    raw = f" (LSB exit {raw_rc})" if lsb and raw_rc != rc else ""
    return f"exit {rc}: {detail}{raw}"


def run_action(resource: ResourceConfig, action: str, timeout_ms: int, interval_ms: int = 0,
               ocf_root: str | None = None, extra_env: dict[str, str] | None = None, *,
               lsb_dir: str | None = None, output_limit: int = OUTPUT_LIMIT) -> ActionResult:
    """Run `action` of `resource`'s agent and report it; never raises for an
    agent's failure. `probe` runs `monitor` with interval 0."""
    started = time.monotonic()
    spec = resource.agent
    reported_interval = 0 if action == "probe" else interval_ms

    def result(rc: int, reason: str, timed_out: bool = False, output: str = "") -> ActionResult:
        duration = int((time.monotonic() - started) * 1000)
        return ActionResult(resource.id, action, as_ocf(rc), timed_out, duration, output, reason,
                            reported_interval)

    verb = agent_verb(spec, action)
    if verb is None:
        return result(OcfRc.ERR_UNIMPLEMENTED, f"exit 3: {spec.standard} agents have no {action!r} action")
    try:
        path = agent_path(spec, ocf_root, lsb_dir=lsb_dir)
    except AgentError as exc:
        return result(OcfRc.ERR_INSTALLED, f"exit 5: {exc}")
    env = build_environment(resource, action, timeout_ms, interval_ms, ocf_root, extra_env=extra_env)

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen([path, verb], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    env=env, cwd="/", start_new_session=True)
        except OSError as exc:
            return result(_exec_failure_rc(exc), f"exit {_exec_failure_rc(exc)}: cannot run {path}: "
                                                 f"{exc.strerror}")
        pidfd = _open_pidfd(proc.pid)
        try:
            timed_out = not _wait_exit(proc, pidfd, timeout_ms / 1000)
            if timed_out:
                _terminate(proc, pidfd)
        except BaseException:
            # Our greenlet is being killed (shutdown): leave no agent behind.
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            if pidfd is not None:
                os.close(pidfd)
        raw_rc = proc.returncode
        stdout, stderr = _tail(out, output_limit), _tail(err, output_limit)

    lsb = spec.standard == "lsb"
    if timed_out:
        rc: int = OcfRc.ERR_GENERIC
    elif raw_rc < 0:  # killed by a signal it did not handle: a crash
        rc = OcfRc.ERR_GENERIC
    elif lsb:
        rc = lsb_to_ocf(action, raw_rc)
    else:
        rc = raw_rc
    # meta-data is wanted whole (pass a larger output_limit); the rest is for humans.
    lines = stdout if action == "meta-data" else (stdout + stderr)[-OUTPUT_LINES:]
    output = "\n".join(lines)[-output_limit:]
    reason = _reason(action, rc, raw_rc, timed_out, timeout_ms, stdout, stderr, lsb)
    if raw_rc < 0 and not timed_out:
        reason = f"exit {rc}: killed by signal {-raw_rc}"
    return result(rc, reason, timed_out, output)
