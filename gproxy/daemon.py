"""Process-level chores of `gproxy run`: the background fork, the pid file,
privileges (chroot, user, group), systemd's readiness protocol and the
parent-death signal.

Who does what: the master binds every socket as the user who started it
(root, for port 80), then forks to the background and writes the pid file;
it keeps its privileges, since a reload may bind new ports and an upgrade
re-executes the program. Each worker chroots and drops to `user`/`group`
once it holds its sockets, before it handles any traffic.
`check_privileges()` runs in the master first so a configuration that asks
for what cannot be done is refused with one line, never a failed worker.

sd_notify is written here (a datagram to $NOTIFY_SOCKET): no dependency.
"""

from __future__ import annotations

import ctypes
import grp
import os
import pwd
import signal
import socket
from dataclasses import dataclass
from typing import Mapping

from gproxy.config.model import GlobalConfig
from gproxy.errors import GproxyError

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"


class PrivilegeError(GproxyError):
    """`chroot`, `user` or `group` cannot be applied: the reason, in one line."""


class PidfileError(GproxyError):
    """The pid file cannot be written or read."""


# -- the background fork --------------------------------------------------------------------------

def daemonize() -> int:
    """Detach from the terminal: fork, new session, fork again (so the daemon
    can never reacquire a terminal), cwd /, standard streams on /dev/null.

    The original process waits for the daemon's word on a pipe, whose write
    end this returns: READY ("R") makes it exit 0, "E<reason>" or silence
    prints the reason and exits 1. So `gproxy run` with `daemon = true`
    returns once gproxy serves, and fails when it could not (init scripts
    get a true exit status)."""
    read_end, write_end = os.pipe()
    if os.fork() > 0:
        os.close(write_end)
        os._exit(_await_daemon(read_end))
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    return write_end


def _await_daemon(fd: int) -> int:
    try:
        data = os.read(fd, 512)
    except OSError:
        data = b""
    if data.startswith(b"R"):
        return 0
    reason = data[1:].decode("utf-8", "replace") if data.startswith(b"E") else "the daemon exited"
    os.write(2, f"gproxy: did not start: {reason} (the syslog has the details)\n".encode())
    return 1


# -- the pid file -----------------------------------------------------------------------------------

def write_pidfile(path: str, pid: int) -> None:
    """Write `pid` atomically (a reader never sees an empty file)."""
    temp = f"{path}.{pid}.tmp"
    try:
        with open(temp, "w", encoding="ascii") as handle:
            handle.write(f"{pid}\n")
        os.rename(temp, path)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise PidfileError(f"pid file {path}: {exc.strerror or exc}") from None


def read_pidfile(path: str) -> int | None:
    """The pid in `path`; None when the file is missing or holds no pid."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read(64).strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PidfileError(f"pid file {path}: {exc.strerror or exc}") from None
    return int(text) if text.isdigit() and int(text) > 0 else None


def remove_pidfile(path: str, pid: int) -> None:
    """Remove `path` if it still names `pid` (after an upgrade it names the new master)."""
    try:
        if read_pidfile(path) == pid:
            os.unlink(path)
    except (OSError, PidfileError):
        pass


# -- privileges -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Credentials:
    """What a worker becomes: None keeps the current id."""

    uid: int | None
    gid: int | None
    groups: tuple[int, ...] | None  # supplementary groups (the user's, or just gid)
    user_name: str | None


def _user(user: int | str) -> pwd.struct_passwd | int:
    try:
        if isinstance(user, int) or str(user).isdigit():
            try:
                return pwd.getpwuid(int(user))
            except KeyError:
                return int(user)  # a bare uid with no passwd entry is allowed, as in HAProxy
        return pwd.getpwnam(str(user))
    except KeyError:
        raise PrivilegeError(f"global.user: unknown user {user!r}") from None


def _group(group: int | str) -> int:
    if isinstance(group, int) or str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        raise PrivilegeError(f"global.group: unknown group {group!r}") from None


def resolve_credentials(user: int | str | None, group: int | str | None) -> Credentials:
    """Names or ids to ids; unknown names raise PrivilegeError."""
    uid = gid = None
    name = None
    if user is not None:
        entry = _user(user)
        if isinstance(entry, int):
            uid = entry
        else:
            uid, gid, name = entry.pw_uid, entry.pw_gid, entry.pw_name
    if group is not None:
        gid = _group(group)
    groups: tuple[int, ...] | None = None
    if name is not None and gid is not None:
        groups = tuple(sorted({gid, *os.getgrouplist(name, gid)}))
    elif gid is not None:
        groups = (gid,)
    return Credentials(uid, gid, groups, name)


def check_privileges(g: GlobalConfig, euid: int | None = None) -> Credentials:
    """Refuse, with the reason, what a worker could not do: an unknown user or
    group, a missing chroot directory, or any of them without root (unless it
    changes nothing: the current user and group are accepted)."""
    creds = resolve_credentials(g.user, g.group)
    euid = os.geteuid() if euid is None else euid
    if g.chroot is not None and not os.path.isdir(g.chroot):
        raise PrivilegeError(f"global.chroot: {g.chroot} is not a directory")
    if euid == 0:
        return creds
    wanted = []
    if g.chroot is not None:
        wanted.append("chroot")
    if creds.uid is not None and creds.uid != euid:
        wanted.append(f"user {g.user}")
    if creds.gid is not None and creds.gid != os.getegid():
        wanted.append(f"group {g.group}")
    if wanted:
        raise PrivilegeError(f"{' and '.join(wanted)} need root: gproxy runs as uid {euid}; "
                             "start it as root or remove global.chroot/user/group")
    return creds


def drop_privileges(g: GlobalConfig) -> None:
    """In a worker, once its sockets are open: chroot, then group, then user
    (the group first: a process that is no longer root cannot change it)."""
    creds = check_privileges(g)
    if os.geteuid() != 0:
        return  # nothing to change (check_privileges accepted it)
    if g.chroot is not None:
        os.chroot(g.chroot)
        os.chdir("/")
    if creds.groups is not None:
        os.setgroups(list(creds.groups))
    if creds.gid is not None:
        os.setresgid(creds.gid, creds.gid, creds.gid)
    if creds.uid is not None:
        os.setresuid(creds.uid, creds.uid, creds.uid)
        if creds.uid != 0:
            try:
                os.setuid(0)
            except PermissionError:
                pass  # expected: root cannot be regained
            else:
                raise PrivilegeError("privileges could be regained after dropping them")


# -- the parent-death signal ------------------------------------------------------------------------

def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send `sig` when the parent dies (cleared by a uid change:
    call it after drop_privileges). False where prctl is missing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# -- systemd ----------------------------------------------------------------------------------------

def sd_notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` ("READY=1", "RELOADING=1", "MAINPID=...") to systemd;
    False when not started by systemd (no $NOTIFY_SOCKET) or on failure."""
    env = os.environ if environ is None else environ
    address = env.get(NOTIFY_SOCKET_ENV, "")
    if not address or address[0] not in "/@":
        return False
    if address[0] == "@":
        address = "\0" + address[1:]  # an abstract socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
        return True
    except OSError:
        return False  # systemd went away: nothing to tell, and never a reason to fail
