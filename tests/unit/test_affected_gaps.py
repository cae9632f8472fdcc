"""aqe gaps' ranking on a real file, without git or a run (both stand-ins are data)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from aqe._affected import _mapstore
from aqe._affected._gaps import find_gaps, reached_from, text

SOURCE = textwrap.dedent(
    """\
    def simple(x):
        return x + 1

    def branchy(x):
        if x > 0:
            if x > 10:
                return "big"
            return "small"
        return "negative"

    class Box:
        def open(self):
            return True
    """
)


def test_gaps_group_by_function_and_rank_branches_churn_and_neighbours(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text(SOURCE, encoding="utf-8")
    (tmp_path / "quiet.py").write_text(SOURCE, encoding="utf-8")
    missing = {"mod.py": {2, 6, 7, 13}, "quiet.py": {6, 7}}
    churn = {"mod.py": 9, "quiet.py": 0}
    tests = {
        "t.py::a": _mapstore.TestDeps({"mod.py": ("h", ("branchy",))}, {}),
        "t.py::b": _mapstore.TestDeps({"mod.py": ("h", ("branchy", "simple"))}, {}),
    }
    gaps = find_gaps(tmp_path, missing, churn.__getitem__, reached_from(tests))
    ranked = [(gap.file, gap.function, gap.lines) for gap in gaps]
    assert ranked[0] == ("mod.py", "branchy", (6, 7))  # branches, churn, tested neighbours
    assert ("quiet.py", "branchy", (6, 7)) in ranked
    assert ("mod.py", "Box.open", (13,)) in ranked
    first = gaps[0]
    assert (first.branches, first.churn, first.neighbour_tests) == (2, 9, 1)
    assert text(gaps[:1]) == [
        f"{first.score:8.1f}  mod.py::branchy  lines 6-7  (2 branches, 9 commits, 1 tests nearby)"
    ]
