"""The rates mode's memory between runs: one small JSON file per socket and user.

The file lives in /var/tmp, which every user can write to, so it is opened
without following symlinks, must be a regular file owned by the plugin's
user, and is read and rewritten under an exclusive lock (Nagios may run two
checks of the same service at once after a reload).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat

STATE_DIR = "/var/tmp"
MAX_STATE_BYTES = 4 * 1024 * 1024  # thousands of backends' counters; anything larger is not ours


class StateFileError(Exception):
    """The state file cannot be used; the message names it and says why."""


def default_path(key: str, uid: int, prefix: str = "check_gproxy") -> str:
    """`/var/tmp/check_gproxy-<uid>-<hash of key>.json`: one file per source, filters and user."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(STATE_DIR, f"{prefix}-{uid}-{digest}.json")


def exchange(path: str, document: object) -> object | None:
    """Return the saved document (None if absent or unreadable JSON) and save `document`."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StateFileError(f"state file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StateFileError(f"state file {path}: not a regular file")
        if info.st_uid != os.geteuid():
            raise StateFileError(f"state file {path}: owned by uid {info.st_uid}, not by this user")
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, MAX_STATE_BYTES + 1)
        try:
            previous = json.loads(raw) if raw and len(raw) <= MAX_STATE_BYTES else None
        except ValueError:
            previous = None  # damaged (a crash mid-write, a disk full): start over
        data = json.dumps(document, separators=(",", ":")).encode()
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        return previous
    except OSError as exc:
        raise StateFileError(f"state file {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
