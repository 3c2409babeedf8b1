"""Which of gproxy's modules run compiled (Cython, built by setup.py), and
which compiled ones are older than their source.

An extension module beside its .py wins the import, so after an edit a
module left uncompiled would silently run the old code: `make compile`
rebuilds, and the test suite and `gproxy run` refuse or warn meanwhile.
"""
from __future__ import annotations

import importlib.machinery
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
EXTENSION_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)


def _extensions(root: Path) -> list[tuple[Path, Path]]:
    """(extension, source) of every compiled module under `root`."""
    found = []
    for suffix in EXTENSION_SUFFIXES:
        for extension in root.rglob("*" + suffix):
            source = extension.with_name(extension.name[:-len(suffix)] + ".py")
            if source.exists():
                found.append((extension, source))
    return found


def compiled_modules(root: Path = PACKAGE_DIR) -> list[str]:
    """Dotted names of the modules that import compiled."""
    base = root.parent
    return sorted(".".join(source.relative_to(base).with_suffix("").parts) for _, source in _extensions(root))


def stale_modules(root: Path = PACKAGE_DIR) -> list[str]:
    """Sources edited since their module was compiled (their edit is not what runs)."""
    base = root.parent
    return sorted(str(source.relative_to(base)) for extension, source in _extensions(root)
                  if source.stat().st_mtime > extension.stat().st_mtime)
