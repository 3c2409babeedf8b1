"""What a bench run measured with: the machine's facts and which gproxy code ran.

Other helpers edit the repository's working tree while a bench runs;
`export_gproxy` copies gproxy's packages as committed at a git ref so that a
table can name the commit it measured.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from scoreboard import short_version

from gproxy.compiled import compiled_modules, stale_modules

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
GPROXY_PACKAGES = ("gproxy", "gsuite")  # what `gproxy run` imports


def _output(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (result.stdout + result.stderr).strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _interpreter_of(executable: Path) -> str:
    """The Python that runs a console script (its #! line), else this one."""
    try:
        first = executable.read_bytes()[:200].split(b"\n", 1)[0]
    except OSError:
        return sys.executable
    return first[2:].decode().strip() if first.startswith(b"#!") else sys.executable


def machine_facts(gproxy: str, haproxy_nbthread: int) -> dict[str, Any]:
    """The CPU, cores, kernel and versions a table was measured with."""
    interpreter = _interpreter_of(Path(gproxy))
    versions = _output([interpreter, "-c", "import platform, gevent; print(platform.python_version(), "
                        "gevent.__version__)"]).split()
    return {
        "cpu_model": _cpu_model(),
        "cpus": os.cpu_count(),
        "pinned": False,
        "kernel": platform.release(),
        "os": _output(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]) or platform.platform(),
        "python": versions[0] if len(versions) == 2 else platform.python_version(),
        "gevent": versions[1] if len(versions) == 2 else "unknown",
        "haproxy": short_version(_output(["haproxy", "-v"]), r"HAProxy version (\S+)", "HAProxy"),
        "nginx": short_version(_output(["nginx", "-v"]), r"nginx/(\S+)", "nginx"),
        "wrk": short_version(_output(["wrk", "--version"]), r"wrk (?:debian/)?(\d[\w.]*)", "wrk"),
        "haproxy_nbthread": haproxy_nbthread,
        "gproxy_workers": 1,
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout.strip()


def working_tree_source() -> str:
    """Which gproxy code the default executable runs: the repository's working tree (an editable install)."""
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", *GPROXY_PACKAGES)
    except (OSError, subprocess.CalledProcessError):
        return "the working tree (not a git checkout)"
    return f"the working tree at {commit}" + (" + uncommitted changes" if dirty else "") + ", " + _compiled_state()


def _compiled_state() -> str:
    """Whether the working tree's gproxy runs compiled (`make compile`)."""
    package = REPO / "gproxy"
    stale = stale_modules(package)
    if stale:
        return f"compiled modules older than their source: {', '.join(stale)} (run make compile)"
    modules = compiled_modules(package)
    return f"compiled ({len(modules)} modules)" if modules else "pure Python"


def export_gproxy(ref: str, dest: Path) -> tuple[str, str]:
    """gproxy's packages as committed at `ref`, copied under `dest`, and a launcher that runs them.

    Other helpers edit the working tree while the bench runs; this measures a
    commit. The launcher puts `dest` first on PYTHONPATH, so workers and
    re-executed masters load the same code. Returns (launcher, description).
    """
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    packages, launcher = dest / "lib", dest / "gproxy"
    packages.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit, *GPROXY_PACKAGES],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(packages)], input=archive, check=True)
    compiled = _compile(commit, packages)
    launcher.write_text(f"""#!{VENV_PYTHON}
import os, sys
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, ({str(packages)!r}, os.environ.get("PYTHONPATH"))))
sys.path.insert(0, {str(packages)!r})
from gproxy.cli import main
sys.exit(main())
""")
    launcher.chmod(0o755)
    return str(launcher), f"commit {commit[:9]} ({ref}, {compiled})"


def _compile(commit: str, packages: Path) -> str:
    """Compile the exported modules as `make compile` does, if that commit
    has setup.py (an older one runs as pure Python); says which it is."""
    try:
        setup = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:setup.py"],
                               capture_output=True, check=True).stdout
    except subprocess.CalledProcessError:
        return "pure Python"
    (packages / "setup.py").write_bytes(setup)
    (packages / "pyproject.toml").write_bytes(  # the packages setup.py builds for
        subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:pyproject.toml"],
                       capture_output=True, check=True).stdout)
    built = subprocess.run([str(VENV_PYTHON), "setup.py", "-q", "build_ext", "--inplace", "--parallel", "2"],
                           cwd=packages, capture_output=True, text=True)
    if built.returncode != 0:
        raise OSError(f"compiling failed: {built.stderr.strip()[-500:]}")
    return "compiled"
