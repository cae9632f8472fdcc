"""Cache compiled test modules for aqe's own imports, never for the tests' imports.

With ``PYTHONDONTWRITEBYTECODE`` set, pytest rewrites every test module's asserts
on every run; that is most of collection time. The user's wish is a source tree
without ``__pycache__``: a prefix inside aqe's own directory keeps that promise and
still caches. Tests themselves must see the interpreter as the user set it up (a
test that imports a generated module, or checks ``sys.dont_write_bytecode``), so
workers turn the cache on only while they collect.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

#: The user's (dont_write_bytecode, pycache_prefix) while the cache is on.
_user: tuple[bool, str | None] | None = None
#: The cache directory while the cache is on.
_prefix: str | None = None


@contextlib.contextmanager
def cache_in(directory: Path | None) -> Iterator[None]:
    """Write bytecode under ``directory`` for the duration, if the user turned
    bytecode off (otherwise Python's own ``__pycache__`` already caches)."""
    global _user, _prefix
    if directory is None or not sys.dont_write_bytecode:
        yield
        return
    _user = (sys.dont_write_bytecode, sys.pycache_prefix)
    _prefix = str(directory)
    sys.dont_write_bytecode = False
    sys.pycache_prefix = _prefix
    try:
        yield
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = _user
        _user = _prefix = None


def as_the_user_set_it() -> None:
    """From now on this process (a worker about to run tests) writes bytecode as
    the user asked; ``caching`` turns aqe's cache back on around collection."""
    if _user is not None:
        sys.dont_write_bytecode, sys.pycache_prefix = _user


@contextlib.contextmanager
def caching() -> Iterator[None]:
    if _user is None or _prefix is None:
        yield
        return
    before = (sys.dont_write_bytecode, sys.pycache_prefix)
    sys.dont_write_bytecode, sys.pycache_prefix = False, _prefix
    try:
        yield
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = before
