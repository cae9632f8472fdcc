"""Coverage through aqe's workers matches coverage under plain pytest.

Runs the project in ``tests/fixtures/cov_project`` (copied, since coverage writes its
data and reports beside it) with pytest-cov under ``pytest`` and under ``aqe run``,
and compares coverage.py's JSON reports line by line: forked workers, spawned ones,
the warm and cold tiers, workers that look like pytest-xdist's, and ``coverage run``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import run_python
from coverage import CoverageData

pytest.importorskip("pytest_cov")

#: Every test here starts processes (see conftest: the fast loop is -m "not e2e").
pytestmark = pytest.mark.e2e

COV_PROJECT = Path(__file__).parent / "fixtures" / "cov_project"
COV = ("--cov=covpkg", "--cov-branch", "--cov-report=json:cov.json")


def _project(tmp_path: Path, name: str = "proj") -> Path:
    root = tmp_path / name
    shutil.copytree(COV_PROJECT, root)
    (root / "state").mkdir()
    return root


def _run(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    state = {"COV_STATE": str(root / "state"), **(env or {})}
    return run_python(*args, cwd=root, env=state, drop=("COV",), timeout=180)


def _aqe(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = _run(
        root, "-m", "aqe", "run", "--no-history", "-w", "2", "--", "-p", "no:randomly", *args,
        env=env,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def _pytest(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    done = _run(root, "-m", "pytest", "-p", "no:randomly", *args, env=env)
    return done.returncode, done.stdout + done.stderr


def _figures(report: Path) -> dict[str, Any]:
    """Per file: the lines run and missed, the branches missed; and the totals."""
    data = json.loads(report.read_text())
    files = {
        name: {
            "executed": entry["executed_lines"],
            "missing": entry["missing_lines"],
            "missing_branches": entry.get("missing_branches"),
            "percent": round(entry["summary"]["percent_covered"], 2),
        }
        for name, entry in data["files"].items()
    }
    return {"files": files, "total": round(data["totals"]["percent_covered"], 2)}


def _data_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob(".coverage*"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    """pytest's figures, by how many times the tier test crashes before it passes
    (under pytest it passes at once: the state says it crashed already)."""
    figures: dict[int, dict[str, Any]] = {}
    for crashes in (0, 1, 2):
        root = _project(tmp_path_factory.mktemp("reference"))
        for n in range(crashes):
            (root / "state" / f"crashes-{n}").touch()
        code, output = _pytest(root, *COV, env={"COV_CRASHES": str(crashes)})
        assert code == 0, output
        figures[crashes] = _figures(root / "cov.json")
    return figures


def test_every_report_format_and_fail_under_match_pytest(tmp_path: Path) -> None:
    reports = (
        "--cov-report=term-missing",
        "--cov-report=xml:cov.xml",
        "--cov-report=lcov:cov.lcov",
        "--cov-report=html:html",
        "--cov-fail-under=95",
    )
    mine, theirs = _project(tmp_path, "aqe"), _project(tmp_path, "pytest")
    code, output = _aqe(mine, *COV, *reports)
    pytest_code, pytest_output = _pytest(theirs, *COV, *reports)
    assert (code, pytest_code) == (1, 1), output
    assert _figures(mine / "cov.json") == _figures(theirs / "cov.json")
    assert _figures(mine / "cov.json")["total"] < 95
    # The terminal table, line for line, and the verdict on --cov-fail-under.
    table = re.compile(r"^(?:src/covpkg/\S+|TOTAL) .*$", re.MULTILINE)
    assert table.findall(output) == table.findall(pytest_output), output
    assert len(table.findall(output)) == 6  # omitted.py left out by [tool.coverage.run]
    verdict = "FAIL Required test coverage of 95% not reached. Total coverage: "
    assert verdict in output and verdict in pytest_output
    # coverage.py's warnings judge the combined data, not the coordinator's alone.
    assert "CoverageWarning" not in output + pytest_output, output
    # Other formats: the same figures (their timestamps differ).
    stamp = re.compile(r'timestamp="\d+"|created at [^<]*|\d{4}-\d\d-\d\d \d\d:\d\d[^<"]*')
    for name in ("cov.xml", "cov.lcov"):
        texts = [stamp.sub("", (root / name).read_text()) for root in (mine, theirs)]
        assert texts[0].replace(str(mine), str(theirs)) == texts[1]
    assert (mine / "html" / "index.html").is_file()
    # Every worker's data file was combined and removed.
    assert _data_files(mine) == [".coverage"] == _data_files(theirs)


def test_spawned_workers_with_cov_in_addopts_and_parallel_data_files(
    tmp_path: Path, reference: dict[int, dict[str, Any]]
) -> None:
    # Fresh interpreters re-run pytest-cov's start, whose erase deletes every
    # ``.coverage.*`` file, those other workers already wrote too.
    root = _project(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    text = text.replace("testpaths =", f"addopts = {json.dumps(list(COV))}\ntestpaths =")
    text = text.replace("[tool.coverage.run]", "[tool.coverage.run]\nparallel = true")
    pyproject.write_text(text)
    code, output = _aqe(root, env={"AQE_START_METHOD": "spawn"})
    assert code == 0, output
    assert _figures(root / "cov.json") == reference[0], output
    assert output.count("tests coverage") == 1
    assert _data_files(root) == [".coverage"]


@pytest.mark.parametrize(("crashes", "tier"), [(1, "warm"), (2, "cold")])
def test_tests_run_again_on_the_warm_and_cold_tiers_count(
    tmp_path: Path, reference: dict[int, dict[str, Any]], crashes: int, tier: str
) -> None:
    root = _project(tmp_path)
    code, output = _aqe(root, *COV, env={"COV_CRASHES": str(crashes)})
    assert code == 0, output
    assert f"test_passes_after_crashes passed only alone ({tier} tier)" in output
    figures, expected = _figures(root / "cov.json")["files"], reference[crashes]["files"]
    # The test that crashed counts from the tier where it passed...
    assert figures["src/covpkg/tiers.py"] == expected["src/covpkg/tiers.py"], output
    # ...while lines only tests just before it reached on its dying worker (since
    # that worker last wrote its data) may be missing, never more than pytest's.
    assert figures.keys() == expected.keys()
    for name, entry in figures.items():
        assert set(entry["executed"]) <= set(expected[name]["executed"]), name
    assert _data_files(root) == [".coverage"]


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_workers_that_look_like_xdist_workers_still_count(
    tmp_path: Path, reference: dict[int, dict[str, Any]], start_method: str
) -> None:
    # ``config.workerinput`` set in each worker (from its first test on when forked;
    # before pytest_configure when spawned): pytest-cov sees an xdist worker.
    root = _project(tmp_path)
    env = {"COV_WORKERINPUT": "1", "AQE_START_METHOD": start_method}
    code, output = _aqe(root, *COV, env=env)
    assert code == 0, output
    assert _figures(root / "cov.json") == reference[0], output
    assert _data_files(root) == [".coverage"]


@pytest.mark.parametrize(
    ("parallel", "start_method"), [(False, "fork"), (True, "spawn")], ids=["plain", "p-spawn"]
)
def test_coverage_run_combines_the_workers_into_its_data_file(
    tmp_path: Path, reference: dict[int, dict[str, Any]], parallel: bool, start_method: str
) -> None:
    mine, theirs = _project(tmp_path, "aqe"), _project(tmp_path, "pytest")
    # Left by a coordinator that was killed (no such pid): deleted, never combined
    # (pytest-cov erases every .coverage.* at start; coverage run does not).
    stale = CoverageData(basename=str(mine / ".coverage.aqe-999999999-1"))
    stale.add_arcs({str(mine / "src" / "covpkg" / "shapes.py"): [(-32, 33), (33, -32)]})
    stale.close()
    run = ["-m", "coverage", "run", "--branch", "--source=covpkg", *(["-p"] if parallel else [])]
    env = {"AQE_START_METHOD": start_method}
    done = _run(mine, *run, "-m", "aqe", "run", "--no-history", "-w", "2", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _run(theirs, *run, "-m", "pytest").returncode == 0
    for root in (mine, theirs):
        if parallel:
            assert len(_data_files(root)) == 1, _data_files(root)  # one, as pytest leaves
            assert _run(root, "-m", "coverage", "combine").returncode == 0
        assert _data_files(root) == [".coverage"]
        assert _run(root, "-m", "coverage", "json", "-o", "cov.json").returncode == 0
    assert _figures(mine / "cov.json") == _figures(theirs / "cov.json")
    # pytest-cov's ``no_cover`` marker is pytest-cov's: here the test is measured.
    assert _figures(mine / "cov.json")["total"] > reference[0]["total"]
