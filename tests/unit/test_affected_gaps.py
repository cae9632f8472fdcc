"""aqe gaps' ranking on a real file, without git or a run (both stand-ins are data)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

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


def test_the_mcp_gap_list_is_bounded_and_says_when_coverage_is_missing(tmp_path: Path) -> None:
    import coverage
    import pytest
    from mcp.server.mcpserver.exceptions import ToolError

    from aqe._affected import _gaps
    from aqe._mcp._fleet import Fleet
    from aqe._mcp._runs import RunRequest
    from aqe._mcp._tools_affected import list_gaps

    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (root / "mod.py").write_text(SOURCE, encoding="utf-8")
    fleet = Fleet(root, budget=20_000, session_idle=60.0)
    with pytest.raises(ToolError, match="no coverage data"):
        list_gaps(fleet)
    data = coverage.CoverageData(basename=str(root / ".coverage"))
    data.add_lines({str(root / "mod.py"): [1, 2, 4, 5, 9, 11, 12]})
    data.write()
    original = _gaps.git_churn
    _gaps.git_churn = lambda _root: lambda _path: 0  # no git here: no process in a unit test
    try:
        found, text = list_gaps(fleet, "mod.py", limit=1)
    finally:
        _gaps.git_churn = original
    assert [(g.file, g.function, g.lines) for g in found.gaps] == [("mod.py", "branchy", [6, 7, 8])]
    assert text == "1 gaps; top: mod.py::branchy"
    argv = RunRequest(affected="abc123").argv(root, "r1")
    assert "--affected=abc123" in argv


def test_partial_branches_are_gaps_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line that ran but never went one of its ways: coverage.py's branch data, measured
    here in-process on a real call."""
    import coverage

    from aqe._affected import _gaps

    if coverage.Coverage.current() is not None:
        pytest.skip("coverage.py is measuring this run already")
    (tmp_path / "branchmod.py").write_text(SOURCE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    cov = coverage.Coverage(
        data_file=str(tmp_path / ".coverage"), branch=True, source=[str(tmp_path)]
    )
    cov.start()
    try:
        import branchmod

        assert branchmod.branchy(5) == "small"  # x > 0 true, x > 10 false: two ways untaken
    finally:
        cov.stop()
        sys.modules.pop("branchmod", None)
    cov.save()
    lines, partial = _gaps.measured_gaps(tmp_path)
    assert lines["branchmod.py"] == {2, 7, 9, 13}
    assert partial["branchmod.py"] == {(5, 9), (6, 7)}
    gaps = find_gaps(tmp_path, lines, lambda _path: 0, None, partial)
    branchy = next(gap for gap in gaps if gap.function == "branchy")
    assert (branchy.lines, branchy.missed_branches) == ((7, 9), ((5, 9), (6, 7)))
    assert gaps[0] is branchy  # two lines and two untaken ways, in the branchiest function
    assert "lines 7,9, branches 5->9,6->7 never taken" in text([branchy])[0]
    assert branchy.to_json()["missed_branches"] == [[5, 9], [6, 7]]
