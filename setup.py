"""gproxy's modules compiled with Cython: the same source, run as C.

pyproject.toml holds the project; this file adds the extension modules.
Compiling is optional: without Cython or a C compiler, or if one module
fails to build, that module runs as pure Python (the same code).
`make compile` builds them in place (setup.py build_ext --inplace).
"""
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
# gproxy's worker and the code it runs per connection and per request; the
# packages below gproxy/ (configuration, runtime API, stats page, demo) are
# read once or on demand and stay pure Python.
COMPILED = sorted(str(path.relative_to(HERE)) for pattern in ("gproxy/*.py", "gproxy/protocol/*.py")
                  for path in HERE.glob(pattern) if path.name not in ("__init__.py", "__main__.py"))


def extension_modules() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    # annotation_typing off: type hints stay hints (Cython would otherwise
    # make a `float` local a C double, which refuses None), so the compiled
    # modules keep the exact semantics of their source.
    modules = cythonize(COMPILED, compiler_directives={"language_level": 3, "annotation_typing": False},
                        quiet=True, nthreads=2)
    for module in modules:
        module.optional = True  # a module that does not build stays pure Python
    return modules


setup(ext_modules=extension_modules(), options={"build_ext": {"parallel": 2}})
