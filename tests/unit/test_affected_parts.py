"""The parts of --affected/--changed that need no process: fingerprints, the import
graph, the map in a real SQLite history, the workers' records merged, the choice."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from aqe._affected import _mapstore
from aqe._affected._graph import ImportGraph
from aqe._affected._merge import read_records
from aqe._affected._select import Choice
from aqe._affected._source import MODULE, changed_functions, shape_of
from aqe._store import open_history

SOURCE = textwrap.dedent(
    """\
    LIMIT = 3

    def clamp(value, top=LIMIT):
        # the lower bound
        return min(max(value, 0), top)

    class Box:
        size = 1

        def grow(self):
            def step():
                return 2
            return self.size + step()
    """
)


def _edits(after: str) -> frozenset[str]:
    before, now = shape_of(SOURCE), shape_of(after)
    assert before is not None and now is not None
    return changed_functions(before.fingerprints, now.fingerprints)


def test_lines_belong_to_the_innermost_function_and_def_lines_to_the_module() -> None:
    shape = shape_of(SOURCE)
    assert shape is not None
    assert shape.lines[5] == "clamp"
    assert shape.lines[12] == "Box.grow.step"
    assert shape.lines[13] == "Box.grow"
    assert 3 not in shape.lines and 1 not in shape.lines  # run at import: MODULE


def test_a_comment_changes_nothing_a_body_changes_its_function() -> None:
    assert _edits(SOURCE.replace("# the lower bound", "# lower")) == frozenset()
    assert _edits(SOURCE.replace("max(value, 0)", "max(value, 1)")) == {"clamp"}
    assert _edits(SOURCE.replace("return 2", "return 3")) == {"Box.grow", "Box.grow.step"}


def test_import_time_code_is_the_module_fingerprint() -> None:
    assert _edits(SOURCE.replace("LIMIT = 3", "LIMIT = 4")) == {MODULE}
    assert MODULE in _edits(SOURCE.replace("top=LIMIT", "top=2"))  # a default value
    assert MODULE in _edits(SOURCE.replace("size = 1", "size = 2"))  # a class attribute
    added = _edits(SOURCE + "\n    def shrink(self):\n        return 0\n")
    assert {"Box.shrink", MODULE} <= added  # a new method changes the class


def test_a_file_that_does_not_parse_has_no_shape() -> None:
    assert shape_of("def broken(:\n") is None


def test_import_graph_resolves_src_layouts_relative_imports_and_packages() -> None:
    sources = {
        "src/pkg/__init__.py": b"from .core import run\n",
        "src/pkg/core.py": b"from . import util\n",
        "src/pkg/util.py": b"X = 1\n",
        "src/pkg/other.py": b"import json\n",
        "tests/test_core.py": b"from pkg.core import run\n",
        "tests/test_other.py": b"import pkg.other\n",
        "tests/test_plain.py": b"import os\n",
    }
    graph = ImportGraph(sources)
    reached = graph.dependents(["src/pkg/util.py"])
    # util <- core <- pkg/__init__ <- every importer of pkg (its package runs first)
    assert {"src/pkg/core.py", "tests/test_core.py", "tests/test_other.py"} <= reached.keys()
    assert reached["tests/test_core.py"] == "src/pkg/util.py"
    assert "tests/test_plain.py" not in reached
    assert "tests/test_core.py" not in graph.dependents(["src/pkg/other.py"])


def test_the_map_round_trips_through_a_real_history(tmp_path: Path) -> None:
    deps = _mapstore.TestDeps({"src/a.py": ("h1", ("f", MODULE))}, {"data/x.json": "h2"})
    with open_history(tmp_path / "history.db") as store:
        _mapstore.save(store, "run1", 1.0, {"t.py::test": deps}, {"h1": '{"f": "x"}'}, {})
        _mapstore.save(store, "run2", 2.0, {"t.py::test": deps}, {"h1": '{"f": "x"}'}, {"a": "b"})
        loaded = _mapstore.load(store)
        assert loaded.tests["t.py::test"].to_json() == deps.to_json()
        assert loaded.watched == {"a": "b"}  # the latest recording's
        assert _mapstore.shapes(store, {"h1", "nope"}) == {"h1": {"f": "x"}}


def test_every_attempt_of_a_test_adds_to_its_dependencies(tmp_path: Path) -> None:
    lines = {
        "1.jsonl": [
            {"file": "src/a.py", "hash": "h", "shape": {"f": "1"}},
            {"t": "t.py::x", "py": {"src/a.py": ["f"]}, "data": []},
        ],
        "2.jsonl": [{"t": "t.py::x", "py": {"src/a.py": ["g"]}, "data": ["d.txt"]}],
    }
    for name, records in lines.items():
        text = "".join(json.dumps(r) + "\n" for r in records)
        (tmp_path / name).write_text(text + '{"t": "cut', encoding="utf-8")  # a killed worker
    python, data, hashes, shapes = read_records(tmp_path)
    assert python == {"t.py::x": {"src/a.py": {"f", "g"}}}
    assert data == {"t.py::x": {"d.txt"}}
    assert hashes == {"src/a.py": "h"} and set(shapes) == {"h"}


def test_a_choice_says_why_each_test_runs_and_survives_json() -> None:
    choice = Choice(
        "affected",
        "abc",
        files={"tests/test_new.py": "new test file"},
        tests={"tests/test_a.py::one": "src/a.py::f changed"},
        left_out={"tests/test_a.py::two": "no recorded dependency changed"},
        mapped={"tests/test_a.py::one", "tests/test_a.py::two"},
    )
    again = Choice.from_json(choice.to_json())
    assert again == choice
    assert again.reason("tests/test_new.py::anything") == "new test file"
    assert again.reason("tests/test_a.py::one") == "src/a.py::f changed"
    assert again.reason("tests/test_a.py::two") is None
    assert again.reason("tests/test_a.py::three") == "no dependency map yet"
    assert Choice("changed", "abc").reason("tests/test_a.py::three") is None
