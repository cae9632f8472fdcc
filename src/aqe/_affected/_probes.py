"""Which code objects ran, without a tracer: a four-instruction probe at the start of
each of the project's code objects (CPython 3.11's bytecode).

Why not a tracer: on 3.11 any ``sys.settrace``/``sys.setprofile`` hook (coverage.py's
C tracer, cProfile, a Python callback) puts the interpreter in tracing mode for every
instruction of every frame, and calls the hook on every call: 2x the CPU of a
call-heavy suite, measured (benchmarks/README.md, "Affected selection"). The
dependency map needs only which functions ran, so each code object starts with
``LOAD_CONST <set>; LOAD_CONST <index>; SET_ADD 1; POP_TOP``: the index lands in one
shared set whenever the function is called (a generator: when it is created), in any
thread. Untraced code runs at full speed; the recorder reads and empties the set
between tests. The probe goes before the code's ``RESUME``, where the interpreter
never traces (coverage.py and debuggers see the code as before) and where a
"no location" entry in front of the location table and a shift of the exception
table are all the bookkeeping it needs.

Code objects are instrumented when a module is imported (``Finder``, a meta path
entry in front of the path finder) and, for what was imported before recording
began, by replacing ``__code__`` on every live function of the project's files (one
``gc`` sweep per worker). Nested code objects (inner functions, lambdas,
comprehensions, class bodies) are instrumented with their parent.

Only for CPython 3.11 (``supported()``); the recorder falls back to coverage.py
elsewhere. Instrumented code is never written to ``.pyc`` files (``exec_module``
instruments the code the normal loader returns).
"""

from __future__ import annotations

import dis
import gc
import importlib.machinery
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

_RESUME = dis.opmap.get("RESUME", -1)
_LOAD_CONST = dis.opmap["LOAD_CONST"]
_SET_ADD = dis.opmap["SET_ADD"]
_POP_TOP = dis.opmap["POP_TOP"]
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]


def supported() -> bool:
    """Bytecode layout this module knows: CPython 3.11."""
    return sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11)


class _Ran(set):  # type: ignore[type-arg]
    """The probes' set: hashed by identity, as a constant of code objects that are
    hashed (a code object's hash covers its constants)."""

    __hash__ = object.__hash__  # type: ignore[assignment]


class Probes:
    """The shared set, the code objects instrumented so far, and their index."""

    def __init__(self, wanted: Callable[[str], bool]) -> None:
        self.ran: set[int] = _Ran()
        self.wanted = wanted
        #: index -> (filename, the original code object: ``lines_of`` it for its lines)
        self.sites: list[tuple[str, types.CodeType]] = []
        #: id(code) -> (code, its instrumented version); ids of both are kept
        self._done: dict[int, tuple[types.CodeType, types.CodeType]] = {}

    def take(self) -> set[int]:
        """The indices that ran since the last call; the set starts empty again."""
        taken = set(self.ran)
        self.ran.clear()
        return taken

    def instrument(self, code: types.CodeType) -> types.CodeType:
        """``code`` with a probe (and its nested code objects too); unchanged when its
        file is not the project's or its layout is not understood."""
        done = self._done.get(id(code))
        if done is not None:
            return done[1]
        if not self.wanted(code.co_filename):
            return code
        consts = tuple(
            self.instrument(c) if isinstance(c, types.CodeType) else c for c in code.co_consts
        )
        index = len(self.sites)
        new = _with_probe(code, consts, self.ran, index)
        if new is None:
            new = code.replace(co_consts=consts) if consts != code.co_consts else code
        else:
            self.sites.append((code.co_filename, code))
        self._done[id(code)] = (code, new)
        self._done[id(new)] = (new, new)
        return new

    def sweep(self) -> int:
        """Instrument every live function of the project's files; how many."""
        count = 0
        for obj in gc.get_objects():
            if isinstance(obj, types.FunctionType):
                code = obj.__code__
                done = self._done.get(id(code))
                if done is not None and done[1] is code:
                    continue
                if not self.wanted(code.co_filename):
                    continue
                new = self.instrument(code)
                if new is not code:
                    try:
                        obj.__code__ = new
                    except (TypeError, ValueError):  # a closure changed shape: leave it
                        continue
                    count += 1
        return count


class _Loader(importlib.machinery.SourceFileLoader):
    """The path finder's source loader, executing the instrumented code."""

    probes: Probes

    def exec_module(self, module: types.ModuleType) -> None:
        code = self.get_code(module.__name__)
        if code is None:
            raise ImportError(f"cannot load {module.__name__}")
        exec(self.probes.instrument(code), module.__dict__)


class Finder:
    """A ``sys.meta_path`` entry: the project's source modules load instrumented."""

    def __init__(self, probes: Probes) -> None:
        self.probes = probes
        loader = type("_ProbedLoader", (_Loader,), {"probes": probes})
        self.loader: type[_Loader] = loader

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if (
            spec is None
            or type(spec.loader) is not importlib.machinery.SourceFileLoader
            or not spec.origin
            or not self.probes.wanted(spec.origin)
        ):
            return None
        spec.loader = self.loader(fullname, spec.origin)
        return spec

    def install(self) -> None:
        """In front of the path finder, behind hooks that rewrite (pytest's assertions)."""
        for at, finder in enumerate(sys.meta_path):
            if finder is importlib.machinery.PathFinder:
                sys.meta_path.insert(at, self)
                return
        sys.meta_path.append(self)


# -- the bytecode ------------------------------------------------------------------------


def lines_of(code: types.CodeType) -> frozenset[int]:
    """The lines of the body (the ``def`` line is the enclosing scope's), or the first
    line of a one-line body."""
    lines = {line for _, _, line in code.co_lines() if line}  # a module starts at line 0
    if code.co_name != "<module>" and len(lines) > 1:
        lines.discard(code.co_firstlineno)
    return frozenset(lines or {code.co_firstlineno})


def _arg(op: int, arg: int) -> list[int]:
    out: list[int] = []
    shift = 24
    while shift:
        if arg >> shift:
            out += [_EXTENDED_ARG, (arg >> shift) & 0xFF]
        shift -= 8
    return [*out, op, arg & 0xFF]


def _with_probe(
    code: types.CodeType, consts: tuple[Any, ...], ran: set[int], index: int
) -> types.CodeType | None:
    raw = code.co_code
    if not any(raw[i] == _RESUME for i in range(0, len(raw), 2)):
        return None
    first = len(consts)
    probe = bytes(
        [
            *_arg(_LOAD_CONST, first),
            *_arg(_LOAD_CONST, first + 1),
            *_arg(_SET_ADD, 1),
            *_arg(_POP_TOP, 0),
        ]
    )
    units = len(probe) // 2
    try:
        table = _shift_exceptions(getattr(code, "co_exceptiontable"), units)  # noqa: B009
    except (StopIteration, ValueError):
        return None
    none = b"".join(
        bytes([0x80 | (15 << 3) | (min(8, units - done) - 1)]) for done in range(0, units, 8)
    )  # "no location" entries: they leave the line numbers that follow as they were
    replace: Callable[..., types.CodeType] = code.replace
    return replace(
        co_code=probe + raw,
        co_consts=(*consts, ran, index),
        co_stacksize=max(code.co_stacksize, 2),
        co_linetable=none + code.co_linetable,
        co_exceptiontable=table,
    )


def _varints(data: bytes) -> Iterator[tuple[int, bool]]:
    """(value, starts an entry) for the exception table's big-endian 6-bit varints."""
    it = iter(data)
    for byte in it:
        start = bool(byte & 0x80)
        value = byte & 63
        while byte & 64:
            byte = next(it)
            value = (value << 6) | (byte & 63)
        yield value, start


def _exception_varint(value: int, start: bool) -> bytes:
    chunks = [value & 63]
    value >>= 6
    while value:
        chunks.append(value & 63)
        value >>= 6
    chunks.reverse()
    out = [c | 64 for c in chunks[:-1]] + [chunks[-1]]
    if start:
        out[0] |= 0x80
    return bytes(out)


def _shift_exceptions(table: bytes, units: int) -> bytes:
    """The exception table with ``units`` code units inserted in front."""
    values = [value for value, _ in _varints(table)]
    if len(values) % 4:
        raise ValueError("exception table")
    out = bytearray()
    for i in range(0, len(values), 4):
        start, size, target, depth_lasti = values[i : i + 4]
        out += _exception_varint(start + units, True)
        out += _exception_varint(size, False)
        out += _exception_varint(target + units, False)
        out += _exception_varint(depth_lasti, False)
    return bytes(out)
