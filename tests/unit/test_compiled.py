"""gproxy.compiled: which modules import compiled, and which compiled ones
are older than their source (what `make compile` rebuilds)."""
import importlib.machinery
import os

from gproxy.compiled import compiled_modules, stale_modules

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _package(tmp_path):
    package = tmp_path / "pkg"
    (package / "protocol").mkdir(parents=True)
    for name in ("pkg/fast.py", "pkg/protocol/parse.py", "pkg/pure.py"):
        (tmp_path / name).write_text("x = 1\n")
    for name in ("pkg/fast", "pkg/protocol/parse"):
        (tmp_path / (name + SUFFIX)).write_bytes(b"")
    return package


def test_compiled_modules_are_named_by_their_dotted_path(tmp_path):
    assert compiled_modules(_package(tmp_path)) == ["pkg.fast", "pkg.protocol.parse"]


def test_a_source_edited_after_its_compile_is_stale(tmp_path):
    package = _package(tmp_path)
    assert stale_modules(package) == []
    source = package / "protocol" / "parse.py"
    later = os.stat(package / ("protocol/parse" + SUFFIX)).st_mtime + 10
    os.utime(source, (later, later))
    assert stale_modules(package) == ["pkg/protocol/parse.py"]


def test_an_extension_without_its_source_is_not_ours(tmp_path):
    package = _package(tmp_path)
    (package / "fast.py").unlink()
    assert compiled_modules(package) == ["pkg.protocol.parse"]
