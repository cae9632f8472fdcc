"""The 3.11 bytecode probes: every kind of code object reports that it ran, and the
instrumented code behaves (results, exceptions, line numbers) as the original."""

from __future__ import annotations

import asyncio
import importlib
import sys
import textwrap
import threading
import traceback
import types
from pathlib import Path
from typing import Any

import pytest

from aqe._affected import _probes

pytestmark = pytest.mark.skipif(not _probes.supported(), reason="CPython 3.11 bytecode only")

SOURCE = textwrap.dedent(
    """
    import functools
    TABLE = [i * 2 for i in range(3)]
    class Shape:
        sides = 4
        def area(self, a=1):
            try:
                return a / 0
            except ZeroDivisionError:
                return "z"
            finally:
                pass
        @property
        def name(self): return "square"
    def count(n):
        for i in range(n):
            yield i
        try:
            raise KeyError(1)
        except KeyError as e:
            yield str(e)
    async def later(x):
        await asyncio.sleep(0)
        return x + 1
    def adder(k):
        def add(z):
            return z + k
        return add
    def twice(f):
        @functools.wraps(f)
        def wrapper(*a): return f(*a) * 2
        return wrapper
    @twice
    def same(x): return x
    def spin():
        s = 0
        while True:
            s += 1
            if s > 5:
                break
        return s
    def in_thread():
        out = []
        t = threading.Thread(target=lambda: out.append(adder(1)(2)))
        t.start()
        t.join()
        return out
    def broken():
        return undefined_name
    def unused():
        return 0
    """
)
FILE = "/project/shapes.py"


def _load(probes: _probes.Probes) -> dict[str, Any]:
    code = probes.instrument(compile(SOURCE, FILE, "exec"))
    namespace: dict[str, Any] = {"asyncio": asyncio, "threading": threading}
    exec(code, namespace)
    return namespace


def _ran(probes: _probes.Probes) -> set[int]:
    """First lines of the code objects that ran (one per probe)."""
    return {min(_probes.lines_of(probes.sites[i][1])) for i in probes.take()}


def test_each_kind_of_code_object_reports_that_it_ran() -> None:
    probes = _probes.Probes(lambda f: f == FILE)
    ns = _load(probes)
    assert _ran(probes) >= {2, 3, 5}  # module, the comprehension, the class body
    shape = ns["Shape"]()
    assert (shape.area(), shape.name) == ("z", "square")
    assert _ran(probes) == {7, 14}
    assert list(ns["count"](2)) == [0, 1, "1"]
    assert asyncio.run(ns["later"](1)) == 2
    assert _ran(probes) == {16, 23}
    assert (ns["adder"](1)(2), ns["same"](4), ns["spin"]()) == (3, 8, 6)
    assert _ran(probes) == {26, 27, 31, 34, 36}  # adder, add, wrapper, same, spin
    assert ns["in_thread"]() == [3]
    assert _ran(probes) == {26, 27, 43, 44}  # the thread's lambda and what it called


def test_a_generator_reports_when_called() -> None:
    probes = _probes.Probes(lambda f: f == FILE)
    ns = _load(probes)
    probes.take()
    made = ns["count"](1)
    assert _ran(probes) == {16}
    assert next(made) == 0
    assert probes.take() == set()


def test_instrumented_code_keeps_line_numbers_and_hashes() -> None:
    probes = _probes.Probes(lambda f: f == FILE)
    ns = _load(probes)
    with pytest.raises(NameError) as caught:
        ns["broken"]()
    assert traceback.extract_tb(caught.value.__traceback__)[-1].lineno == 49
    code = ns["spin"].__code__
    original = compile(SOURCE, FILE, "exec")
    spin = next(c for c in original.co_consts if getattr(c, "co_name", "") == "spin")
    lines = [line for _, _, line in code.co_lines()]
    assert lines[0] is None  # the probe: no location, before RESUME
    assert lines[1:] == [line for _, _, line in spin.co_lines()]
    assert list(code.co_positions())[4:] == list(spin.co_positions())
    assert isinstance(hash(code), int)


def test_other_files_are_left_alone() -> None:
    probes = _probes.Probes(lambda f: False)
    code = compile(SOURCE, FILE, "exec")
    assert probes.instrument(code) is code
    assert probes.sites == []


def test_live_functions_and_imports_are_instrumented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "probed_early.py").write_text("def early():\n    return 1\n")
    (tmp_path / "probed_late.py").write_text("X = 1\ndef late():\n    return X\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    early = importlib.import_module("probed_early")
    probes = _probes.Probes(lambda f: f.startswith(str(tmp_path)))
    finder = _probes.Finder(probes)
    finder.install()
    try:
        assert probes.sweep() == 1
        assert early.early() == 1
        assert _ran(probes) == {2}
        late = importlib.import_module("probed_late")
        assert _ran(probes) == {1}  # its module-level code ran at import
        assert late.late() == 1
        assert _ran(probes) == {3}
        assert late.__spec__ is not None
        assert isinstance(late.__spec__.loader, _probes._Loader)
    finally:
        sys.meta_path.remove(finder)
        for name in ("probed_early", "probed_late"):
            sys.modules.pop(name, None)


def test_a_real_module_runs_the_same_instrumented() -> None:
    """The standard library's textwrap, every code object probed, against the original."""
    import textwrap as original

    assert original.__spec__ is not None and original.__spec__.origin is not None
    path = original.__spec__.origin
    probes = _probes.Probes(lambda f: f == path)
    code = probes.instrument(compile(Path(path).read_text(), path, "exec"))
    probed = types.ModuleType("probed_textwrap")
    exec(code, probed.__dict__)
    text = "The quick brown fox jumps over the lazy dog. " * 20
    for width in (7, 20, 61):
        assert probed.wrap(text, width) == original.wrap(text, width)
        assert probed.fill(text, width, max_lines=3) == original.fill(text, width, max_lines=3)
    assert probed.dedent("  a\n   b\n") == original.dedent("  a\n   b\n")
    assert len(probes.take()) > 5
