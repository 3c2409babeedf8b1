"""Copies the project's OCF agents into an OCF root, for Pacemaker or any
other cluster manager (`heartbeat agents install [--ocf-root DIR]`).

heartbeat itself needs no installation: its runner finds the provider
`gproxy` in the package (heartbeat/agents/gproxy/*). This puts the same files
at OCF_ROOT/resource.d/gproxy/TYPE, mode 0755, each replaced atomically (a
temporary file renamed over the old one, so a cluster running the agent
never sees half a file).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from heartbeat.errors import AgentError
from heartbeat.lrm.runner import BUILTIN_PROVIDER, DEFAULT_OCF_ROOT, agents_dir

AGENT_MODE = 0o755  # ocf-tester checks that `nobody` can run meta-data


def shipped_agents() -> list[Path]:
    """The agent executables in the package, sorted by name."""
    provider_dir = agents_dir() / BUILTIN_PROVIDER
    return sorted(p for p in provider_dir.iterdir() if p.is_file() and not p.name.startswith("."))


def install_agents(ocf_root: str = DEFAULT_OCF_ROOT) -> list[str]:
    """Install every shipped agent under OCF_ROOT/resource.d/gproxy/; return
    the installed paths. AgentError (with the OS reason) if that fails."""
    target_dir = Path(ocf_root) / "resource.d" / BUILTIN_PROVIDER
    installed: list[str] = []
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        for source in shipped_agents():
            target = target_dir / source.name
            fd, tmp = tempfile.mkstemp(prefix=f".{source.name}.", dir=target_dir)
            try:
                with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                    shutil.copyfileobj(src, out)
                os.chmod(tmp, AGENT_MODE)
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise
            installed.append(str(target))
    except OSError as exc:
        raise AgentError(f"cannot install the agents into {target_dir}: {exc.strerror or exc}") from exc
    return installed
