"""Flaky or broken from history, and the quarantine: verdicts and the commands."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import aqe_process

from aqe._knowledge._flaky import analyse
from aqe._model import RunRecord, TestResult
from aqe._store import HistoryStore, RunRow

# -- verdicts from made-up histories (milliseconds) -----------------------------------


def _runs(*codes: str) -> list[RunRow]:
    return [
        RunRow(
            run_id=f"r{i}",
            start=float(i),
            end=float(i) + 1,
            git_commit=code.removeprefix("git:") if code.startswith("git:") else None,
            git_dirty=False if code.startswith("git:") else True,
            workers=1,
            exit_code=0,
            counts={},
            tail_idle=None,
            command=["aqe"],
            root="/p",
            code_id=code or None,
        )
        for i, code in enumerate(codes)
    ]


def _history(runs: list[RunRow], **tests: str) -> dict[str, dict[str, list[str]]]:
    """Outcomes per test as letters per run: p passed, f failed, r failed then passed
    on a retry, - not run."""
    letters = {"p": ["passed"], "f": ["failed"], "r": ["failed", "flaky"]}
    return {
        name: {run.run_id: letters[c] for run, c in zip(runs, spec, strict=True) if c != "-"}
        for name, spec in tests.items()
    }


def _labels(runs: list[RunRow], **tests: str) -> dict[str, str]:
    return {v.nodeid: v.label for v in analyse(runs, _history(runs, **tests))}


def test_mixed_results_on_the_same_commit_are_flaky_and_scored() -> None:
    runs = _runs(*["git:a"] * 10)
    verdicts = {v.nodeid: v for v in analyse(runs, _history(runs, t="ppfpppfppp", ok="p" * 10))}
    assert verdicts["t"].label == "flaky" and verdicts["t"].score == 0.2
    assert verdicts["t"].same_code_mixed == 1
    assert verdicts["ok"].label == "stable" and verdicts["ok"].score == 0.0


def test_a_regression_at_a_commit_is_broken_never_flaky() -> None:
    runs = _runs("git:a", "git:a", "git:a", "git:b", "git:b", "git:b")
    verdict = analyse(runs, _history(runs, t="pppfff"))[0]
    assert verdict.label == "broken" and verdict.broken_since == "b"
    assert verdict.score == 1.0  # it fails on every run of the current code


def test_a_fixed_bug_is_stable_and_a_test_that_never_passed_is_broken() -> None:
    runs = _runs("git:a", "git:a", "git:b", "git:b")
    assert _labels(runs, fixed="ffpp", never="ffff") == {"fixed": "stable", "never": "broken"}


def test_the_score_agrees_with_the_label() -> None:
    # 0 stable, strictly between 0 and 1 flaky, 1 broken: never 0.00 beside "broken".
    runs = _runs(*["git:a"] * 5)
    verdicts = {
        v.nodeid: v
        for v in analyse(
            runs, _history(runs, always="fffff", ok="ppppp", odd="pfpfp", late="pppff")
        )
    }
    assert {n: (v.label, v.score) for n, v in verdicts.items()} == {
        "always": ("broken", 1.0),
        "ok": ("stable", 0.0),
        "odd": ("flaky", 0.4),
        "late": ("flaky", 0.4),  # the same commit: a change of code cannot explain it
    }
    assert verdicts["always"].broken_since is None  # it never passed in the window


def test_a_pass_on_retry_is_flaky_even_when_every_run_had_new_code() -> None:
    runs = _runs("git:a", "git:b", "git:c", "git:d")
    verdict = analyse(runs, _history(runs, t="pprp"))[0]
    assert verdict.label == "flaky" and verdict.retried == 1
    assert verdict.score == 0.5  # one failed and one passed attempt on the evidence run


def test_runs_without_a_shared_code_identity_are_no_evidence() -> None:
    runs = _runs("", "", "", "")  # dirty trees that could not be hashed: all different
    assert _labels(runs, t="pfpf") == {"t": "broken"}


def test_an_outage_run_is_not_evidence_of_flakiness() -> None:
    runs = _runs(*["git:a"] * 4)
    tests = {f"t{i}": "ppfp" for i in range(8)}  # run 2: every test failed at once
    tests["solo"] = "pppp"
    labels = _labels(runs, **tests)
    assert set(labels.values()) == {"stable"}


# -- the commands on real runs ----------------------------------------------------------

PROJECT = {
    "pyproject.toml": "[tool.pytest.ini_options]\n",
    "test_x.py": """\
import os
from pathlib import Path

STATE = Path(os.environ["FLAKY_STATE"])


def test_flaky():
    # Fails on every second run, whatever the code: flaky by construction.
    count = int(STATE.read_text()) if STATE.exists() else 0
    STATE.write_text(str(count + 1))
    assert count % 2 == 0


def test_stable():
    pass


def test_regression():
    assert not Path("BROKEN").exists()
""",
}


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    for name, text in PROJECT.items():
        (root / name).write_text(text)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "start")
    return root


def _aqe(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return aqe_process(*args, cwd=root, env={"FLAKY_STATE": str(root.parent / "state")}, timeout=60)


@pytest.mark.e2e
def test_aqe_flaky_tells_flaky_from_broken_on_real_runs(project: Path) -> None:
    for _ in range(4):
        _aqe(project, "run", "-w", "1")
    (project / "BROKEN").write_text("")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "break it")
    for _ in range(2):
        _aqe(project, "run", "-w", "1")
    result = _aqe(project, "flaky", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["schema"] == "aqe-flaky" and report["window_runs"] == 6
    labels = {t["nodeid"]: t["label"] for t in report["tests"]}
    assert labels == {"test_x.py::test_flaky": "flaky", "test_x.py::test_regression": "broken"}
    flaky = report["tests"][0]
    assert flaky["score"] == 0.5 and flaky["same_code_mixed"] == 2
    text = _aqe(project, "flaky").stdout
    assert "1 flaky, 1 broken in the last 6 runs" in text
    timeline = _aqe(project, "flaky", "test_x.py::test_regression").stdout.splitlines()
    assert timeline[0].startswith("test_x.py::test_regression: broken")
    assert len(timeline) == 7 and timeline[-1].endswith("failed  (1 failed attempts)")
    missing = _aqe(project, "flaky", "test_x.py::nope")
    assert missing.returncode == 4 and "test_x.py::nope" in missing.stderr


@pytest.mark.e2e
def test_the_reading_commands_take_the_history_a_run_was_given(project: Path) -> None:
    elsewhere = project.parent / "ci-history.db"
    for _ in range(4):  # test_flaky fails in runs 2 and 4
        _aqe(project, "run", "-w", "1", "--history", str(elsewhere))
    assert not (project / ".aqe" / "history.db").exists()
    runs = _aqe(project, "history", "--history", str(elsewhere)).stdout.splitlines()
    assert len(runs) == 4
    flaky = json.loads(_aqe(project, "flaky", "--json", "--history", str(elsewhere)).stdout)
    assert flaky["window_runs"] == 4
    failures = _aqe(project, "failures", "--json", "--history", str(elsewhere))
    assert json.loads(failures.stdout)["failures"] == 1, failures.stderr
    for args in (
        ("failures", "--history", str(elsewhere), "similar", "test_x.py::test_flaky"),
        ("failures", "similar", "test_x.py::test_flaky", "--history", str(elsewhere)),
    ):
        similar = _aqe(project, *args)
        assert similar.returncode == 0 and "test_x.py::test_flaky" in similar.stdout, args
    missing = _aqe(project, "flaky", "--history", str(project / "nope.db"))
    assert missing.returncode == 4
    assert (
        missing.stderr.strip()
        == f"aqe: error: no history yet at {project / 'nope.db'}: run aqe run first"
    )


@pytest.mark.e2e
def test_a_quarantined_failure_is_recorded_shown_apart_and_does_not_fail_the_run(
    project: Path, tmp_path: Path
) -> None:
    (project / "BROKEN").write_text("")
    added = _aqe(project, "quarantine", "add", "test_x.py::test_regression", "--reason", "bug 12")
    assert added.returncode == 0 and "quarantined test_x.py::test_regression" in added.stdout
    toml = (project / ".aqe" / "quarantine.toml").read_text()
    assert 'id = "test_x.py::test_regression"' in toml and 'reason = "bug 12"' in toml
    # The file is the one thing in .aqe that git sees: the team shares it.
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".aqe/quarantine.toml" in status and "history" not in status

    report, junit = tmp_path / "r.json", tmp_path / "r.xml"
    run = _aqe(project, "run", "-w", "1", "-x", "--json", str(report), "--junit-xml", str(junit))
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert "1 quarantined" in lines[-1] and "failed" not in lines[-1]
    assert any("1 quarantined tests failed" in line for line in lines)
    entry = next(t for t in json.loads(report.read_text())["tests"] if "regression" in t["nodeid"])
    assert entry["outcome"] == "failed" and entry["quarantined"] is True
    case = next(c for c in ET.parse(junit).iter("testcase") if c.get("name") == "test_regression")
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("type") == "aqe.quarantined"
    assert case.find("failure") is None

    listed = _aqe(project, "quarantine", "list", "--json")
    tests = json.loads(listed.stdout)["tests"]
    assert [(t["nodeid"], t["reason"], t["passing_streak"]) for t in tests] == [
        ("test_x.py::test_regression", "bug 12", 0)
    ]
    removed = _aqe(project, "quarantine", "remove", "test_x.py::test_regression")
    assert removed.returncode == 0
    assert _aqe(project, "run", "-w", "1").returncode == 1
    assert _aqe(project, "quarantine", "remove", "test_x.py::nope").returncode == 4


@pytest.mark.e2e
def test_a_quarantined_test_that_keeps_passing_is_proposed_for_release(project: Path) -> None:
    with (project / "pyproject.toml").open("a") as stream:
        stream.write("[tool.aqe]\nquarantine_release_runs = 2\n")
    _aqe(project, "quarantine", "add", "test_x.py::test_stable")
    for _ in range(2):
        _aqe(project, "run", "-w", "1", "-k", "stable")
    text = _aqe(project, "quarantine", "list").stdout
    assert "passed 2 runs in a row: propose release" in text


@pytest.mark.e2e
def test_auto_quarantine_takes_tests_past_the_bar_and_never_a_broken_one(project: Path) -> None:
    with (project / "pyproject.toml").open("a") as stream:
        stream.write("[tool.aqe]\nquarantine_min_runs = 4\nquarantine_threshold = 0.3\n")
    (project / "BROKEN").write_text("")  # broken from the start, on every run
    for _ in range(3):
        run = _aqe(project, "run", "-w", "1", "--auto-quarantine")
        assert "quarantined" not in run.stdout.splitlines()[-1]  # too few runs yet
    run = _aqe(project, "run", "-w", "1", "--auto-quarantine")
    assert "aqe: quarantined 1 flaky tests" in run.stdout
    tests = json.loads(_aqe(project, "quarantine", "list", "--json").stdout)["tests"]
    assert [t["nodeid"] for t in tests] == ["test_x.py::test_flaky"]
    assert tests[0]["by"] == "aqe --auto-quarantine" and "same code" in tests[0]["reason"]


@pytest.mark.e2e
def test_a_broken_quarantine_file_is_one_clear_error(project: Path) -> None:
    (project / ".aqe").mkdir(exist_ok=True)
    (project / ".aqe" / "quarantine.toml").write_text("[[test]]\nreason = 'no id'\n")
    result = _aqe(project, "run")
    assert result.returncode == 4
    assert "quarantine.toml" in result.stderr and "entry 1 has no string 'id'" in result.stderr
    assert "Traceback" not in result.stderr


def test_mass_failures_that_persist_on_new_code_are_a_regression_not_an_outage() -> None:
    runs = _runs("git:a", "git:a", "git:b", "git:b")
    tests = {f"t{i}": "ppff" for i in range(8)}  # a commit that breaks most tests
    labels = _labels(runs, **tests)
    assert set(labels.values()) == {"broken"}


@pytest.mark.e2e
def test_aqe_flaky_on_a_stored_history_scores_an_always_failing_test_one(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    path = tmp_path / "history.db"
    with HistoryStore(path) as store:
        for number in range(5):
            run = RunRecord(
                f"r{number}",
                1000.0 + number,
                ["aqe", "run"],
                str(root),
                1,
                end=1000.5 + number,
                git_commit="a" * 40,
                git_dirty=False,
                code_id="git:" + "a" * 40,
                exit_code=1,
            )
            store.begin_run(run)
            run.results = [
                TestResult(f"test_x.py::{name}", "test_x.py", 1, outcome, {"call": 0.1}, 0)
                for name, outcome in (("test_always", "failed"), ("test_ok", "passed"))
            ]
            store.add_results(run.run_id, run.results)
            store.finish_run(run)
    result = _aqe(root, "flaky", "--json", "--history", str(path))
    assert result.returncode == 0, result.stderr
    (always,) = json.loads(result.stdout)["tests"]
    assert (always["nodeid"], always["label"], always["score"]) == (
        "test_x.py::test_always", "broken", 1.0
    )  # fmt: skip
    assert (always["failed"], always["runs"], always["broken_since"]) == (5, 5, None)
    text = _aqe(root, "flaky", "--history", str(path)).stdout.splitlines()
    assert text[1].startswith("broken    1.00    5    0    5")
    assert text[1].endswith("test_x.py::test_always  (failed in every run)")
    helped = _aqe(root, "flaky", "--help").stdout
    assert "1.00 broken" in helped and "0.00 stable" in helped, helped
