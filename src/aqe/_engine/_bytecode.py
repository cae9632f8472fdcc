"""Cache pytest's rewritten test modules under ``.aqe/``, and nothing else.

With ``PYTHONDONTWRITEBYTECODE`` set, pytest rewrites every test module's asserts
on every run; that is most of collection time. The user's wish is a source tree
without ``__pycache__``: a cache inside aqe's own directory keeps that promise and
still caches.

Only the rewritten modules go there. Setting ``sys.pycache_prefix`` for a whole
stretch of the run would do it too, but Python then reads every other module's
bytecode from the prefix alone: the ``.pyc`` files pip installed for the libraries
would be ignored, and a first run would compile every library it imports from
source. So the prefix (and bytecode writing) is on only while pytest's import hook
finds, reads or writes the cached code of one of the project's test modules or
conftests, and off again before the module runs.
Tests see the interpreter as the user set it up.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The cache directory while caching is on (the coordinator's run, a worker's
#: collection); None otherwise.
_prefix: str | None = None
#: The directory ``cache_in`` set, kept by a forked worker for its collection.
_directory: str | None = None
#: The user's (dont_write_bytecode, pycache_prefix), to restore inside the hook.
_saved: list[tuple[bool, str | None]] = []


def _install() -> None:
    """Wrap pytest's rewriting import hook once: the cache is used for the test
    module's own code only (see the module docstring)."""
    from _pytest.assertion import rewrite

    hook = rewrite.AssertionRewritingHook
    if getattr(hook.exec_module, "_aqe_cache", False):
        return
    original_exec = hook.exec_module
    original_read = rewrite._read_pyc

    def exec_module(self: Any, module: Any) -> None:
        __tracebackhide__ = True  # not in the user's traceback of a broken test module
        if _prefix is None or not _in_project(self, module):
            original_exec(self, module)
            return
        _saved.append((sys.dont_write_bytecode, sys.pycache_prefix))
        mine = len(_saved)
        sys.dont_write_bytecode, sys.pycache_prefix = False, _prefix
        try:
            original_exec(self, module)
        finally:
            if len(_saved) == mine:  # pytest failed before reading the cache
                _restore()

    def read_pyc(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        # pytest has decided where the cache is and whether to write it: from here
        # on (its rewrite, its write, the module's own imports) the user's settings.
        _restore()
        return original_read(*args, **kwargs)

    exec_module._aqe_cache = True  # type: ignore[attr-defined]
    hook.exec_module = exec_module  # type: ignore[method-assign]
    rewrite._read_pyc = read_pyc


def _in_project(hook: Any, module: Any) -> bool:
    """Test modules and conftests of the project: plugins that pytest rewrites too
    (every module of a distribution with a pytest11 entry point) keep the cache of
    their own ``__pycache__``, as under plain pytest."""
    origin = getattr(module.__spec__, "origin", None)
    root = getattr(getattr(hook, "config", None), "rootpath", None)
    if not origin or root is None:
        return False
    path = Path(origin)
    return path.is_relative_to(root) and not {"site-packages", "dist-packages"} & set(path.parts)


def _restore() -> None:
    if _saved:
        sys.dont_write_bytecode, sys.pycache_prefix = _saved.pop()


@contextlib.contextmanager
def cache_in(directory: Path | None) -> Iterator[None]:
    """Cache rewritten test modules under ``directory`` for the duration, if the
    user turned bytecode off (otherwise pytest's own ``__pycache__`` caches)."""
    global _prefix, _directory
    if directory is None or not sys.dont_write_bytecode:
        yield
        return
    _install()
    _prefix = _directory = str(directory)
    try:
        yield
    finally:
        _prefix = _directory = None


def as_the_user_set_it() -> None:
    """From now on this process (a worker about to run tests) imports as the user
    asked; ``caching`` turns aqe's cache back on around collection."""
    global _prefix
    _prefix = None


@contextlib.contextmanager
def caching() -> Iterator[None]:
    global _prefix
    if _directory is None:
        yield
        return
    before, _prefix = _prefix, _directory
    try:
        yield
    finally:
        _prefix = before
