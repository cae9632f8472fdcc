"""Which code objects ran, without a tracer: a four-instruction probe at the start of
each of the project's code objects (CPython 3.11's bytecode).

Why not a tracer: on 3.11 any ``sys.settrace``/``sys.setprofile`` hook (coverage.py's
C tracer, cProfile, a Python callback) puts the interpreter in tracing mode for every
instruction of every frame, and calls the hook on every call: 2x the CPU of a
call-heavy suite, measured (benchmarks/README.md, "Affected selection"). The
dependency map needs only which functions ran, so each code object gets, right after
its ``RESUME``, ``LOAD_CONST <set>; LOAD_CONST <index>; SET_ADD 1; POP_TOP``: the
index lands in one shared set whenever the function starts (a generator: whenever it
is first resumed), in any thread. Untraced code runs at full speed; the recorder
reads and empties the set between tests.

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

Position = tuple[int | None, int | None, int | None, int | None]


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
        #: index -> (filename, the lines of the code object's own instructions)
        self.sites: list[tuple[str, frozenset[int]]] = []
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
            self.sites.append((code.co_filename, _own_lines(code)))
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


def _own_lines(code: types.CodeType) -> frozenset[int]:
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
    at = next((i for i in range(0, len(raw), 2) if raw[i] == _RESUME), None)
    if at is None:
        return None
    at += 2  # right after RESUME (it has no inline cache)
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
    positions: list[Position] = list(getattr(code, "co_positions")())  # noqa: B009 (3.11+)
    if len(positions) != len(raw) // 2:
        return None
    here = positions[at // 2] if at // 2 < len(positions) else positions[-1]
    positions[at // 2 : at // 2] = [here] * units
    try:
        table = _shift_exceptions(getattr(code, "co_exceptiontable"), at // 2, units)  # noqa: B009
    except (StopIteration, ValueError):
        return None
    replace: Callable[..., types.CodeType] = code.replace
    return replace(
        co_code=raw[:at] + probe + raw[at:],
        co_consts=(*consts, ran, index),
        co_stacksize=max(code.co_stacksize, 2),
        co_linetable=_line_table(code.co_firstlineno, positions),
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


def _shift_exceptions(table: bytes, at: int, units: int) -> bytes:
    """The exception table with ``units`` code units inserted at unit ``at``."""
    values = [value for value, _ in _varints(table)]
    if len(values) % 4:
        raise ValueError("exception table")
    out = bytearray()
    for i in range(0, len(values), 4):
        start, size, target, depth_lasti = values[i : i + 4]
        end = start + size
        new_start = start + units if start >= at else start
        new_end = end + units if end > at else end
        new_target = target + units if target >= at else target
        out += _exception_varint(new_start, True)
        out += _exception_varint(new_end - new_start, False)
        out += _exception_varint(new_target, False)
        out += _exception_varint(depth_lasti, False)
    return bytes(out)


def _varint(value: int) -> list[int]:
    out = []
    while value >= 64:
        out.append(64 | (value & 63))
        value >>= 6
    out.append(value)
    return out


def _svarint(value: int) -> list[int]:
    return _varint((-value << 1) | 1 if value < 0 else value << 1)


def _line_table(firstline: int, positions: list[Position]) -> bytes:
    """3.11's location table for one position per code unit (long form or none)."""
    out: list[int] = []
    line = firstline
    i = 0
    while i < len(positions):
        here = positions[i]
        length = 1
        while length < 8 and i + length < len(positions) and positions[i + length] == here:
            length += 1
        start_line, end_line, col, end_col = here
        if start_line is None:
            out.append(0x80 | (15 << 3) | (length - 1))
        else:
            out.append(0x80 | (14 << 3) | (length - 1))
            out += _svarint(start_line - line)
            out += _varint((end_line if end_line is not None else start_line) - start_line)
            out += _varint(col + 1 if col is not None else 0)
            out += _varint(end_col + 1 if end_col is not None else 0)
            line = start_line
        i += length
    return bytes(out)
