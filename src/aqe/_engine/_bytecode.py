"""Cache the modules pytest rewrites under ``.aqe/``, and nothing else.

With ``PYTHONDONTWRITEBYTECODE`` set, pytest rewrites every test module's asserts
on every run; that is most of collection time. The user's wish is a source tree
without ``__pycache__``: a cache inside aqe's own directory keeps that promise and
still caches. pytest also rewrites every module of a plugin's distribution (one
with a ``pytest11`` entry point: hypothesis, anyio, pytest-django...), from source
on every run with bytecode off: hypothesis alone, imported by its terminal summary
after the last test, was a fifth of the coordinator's CPU on 2,000 trivial tests.
Those are cached there too.

Only the rewritten modules go there. Setting ``sys.pycache_prefix`` for a whole
stretch of the run would do it too, but Python then reads every other module's
bytecode from the prefix alone: the ``.pyc`` files pip installed for the libraries
would be ignored, and a first run would compile every library it imports from
source. So the prefix (and bytecode writing) is on only while pytest's import hook
finds, reads or writes the cached code of one of the project's test modules or
conftests, and off again before the module runs.
Tests see the interpreter as the user set it up.

The cache outlives the run, so it is keyed by content: each cached module ends with
a SHA-256 of the source it was compiled from, and one whose source differs is
compiled again. pytest before 9 checks its pyc files by the source's size and
mtime alone, and an edit that keeps both (a tool that restores time stamps, a
one-character fix within the same second) would otherwise run the old code.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
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
#: (source path, its digest) of the project module being imported now, and of the
#: one whose cached code pytest may write next (None: not a project module's).
_hashed: tuple[str, bytes] | None = None
_writing: tuple[str, bytes] | None = None
#: What ends a cached module's code, before the digest of its source.
_MARK = b"aqe-sha256:"


def _install() -> None:
    """Wrap pytest's rewriting import hook once: the cache is used for the test
    module's own code only (see the module docstring)."""
    from .._compat import assertion_rewrite as rewrite

    hook = rewrite.AssertionRewritingHook
    if getattr(hook.exec_module, "_aqe_cache", False):
        return
    original_exec = hook.exec_module
    original_read = rewrite._read_pyc
    original_write = rewrite._write_pyc_fp

    def exec_module(self: Any, module: Any) -> None:
        global _hashed, _writing
        __tracebackhide__ = True  # not in the user's traceback of a broken test module
        if _prefix is None or not _has_source(module):
            original_exec(self, module)
            return
        _saved.append((sys.dont_write_bytecode, sys.pycache_prefix))
        mine = len(_saved)
        sys.dont_write_bytecode, sys.pycache_prefix = False, _prefix
        origin = module.__spec__.origin
        digest = _digest(origin)
        _hashed = (origin, digest) if digest is not None else None
        try:
            original_exec(self, module)
        finally:
            _hashed = _writing = None
            if len(_saved) == mine:  # pytest failed before reading the cache
                _restore()

    def read_pyc(*args: Any, **kwargs: Any) -> Any:
        global _writing
        __tracebackhide__ = True
        # pytest has decided where the cache is and whether to write it: from here
        # on (its rewrite, its write, the module's own imports) the user's settings.
        ours = bool(_saved)  # (set by exec_module just before, for a project module)
        _restore()
        _writing = _hashed if ours else None
        pyc = kwargs.get("pyc", args[1] if len(args) > 1 else "")
        if ours and not _compiled_from(pyc, _hashed):
            return None  # pytest compiles it again, and writes it with its digest
        return original_read(*args, **kwargs)

    def write_pyc_fp(fp: Any, *args: Any, **kwargs: Any) -> None:
        global _writing
        original_write(fp, *args, **kwargs)
        source, _writing = _writing, None
        # Marked only if the source is still what was hashed before pytest read it.
        if source is not None and _digest(source[0]) == source[1]:
            fp.write(_MARK + source[1])

    exec_module._aqe_cache = True  # type: ignore[attr-defined]
    hook.exec_module = exec_module  # type: ignore[method-assign]
    rewrite._read_pyc = read_pyc
    rewrite._write_pyc_fp = write_pyc_fp


def _digest(path: str) -> bytes | None:
    try:
        with open(path, "rb") as stream:
            return hashlib.sha256(stream.read()).digest()
    except OSError:
        return None


def _compiled_from(pyc: Any, source: tuple[str, bytes] | None) -> bool:
    """The cached code ends with the digest of the source as it is now."""
    if source is None:
        return False
    tail = _MARK + source[1]
    try:
        with open(pyc, "rb") as stream:
            stream.seek(0, os.SEEK_END)
            stream.seek(max(0, stream.tell() - len(tail)))
            return stream.read() == tail
    except OSError:
        return False


def _has_source(module: Any) -> bool:
    """A module pytest rewrites from a file (the project's test modules and
    conftests, a plugin distribution's modules): its cache is keyed by that file."""
    origin = getattr(module.__spec__, "origin", None)
    return isinstance(origin, str) and os.path.isfile(origin)


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
