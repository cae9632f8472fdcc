"""The typed knowledge and status results, and their one conversion to JSON
(milliseconds: no store, no process)."""

from __future__ import annotations

import json
from pathlib import Path

from aqe._engine._status import FailureBrief, Snapshot, StatusFile, WorkerState, read_snapshot
from aqe._knowledge._commands import FlakyReport, cluster_lines, flaky_lines, group_failures
from aqe._knowledge._flaky import FlakyVerdict, Moment
from aqe._knowledge._reports import (
    Cause,
    FailureCauses,
    FailureExample,
    SimilarFailure,
    SimilarFailures,
)


def _verdict(nodeid: str, label: str, score: float) -> FlakyVerdict:
    return FlakyVerdict(
        nodeid=nodeid, label=label, score=score, runs=4, passed=2, failed=2,  # type: ignore[arg-type]
        retried=1, same_code_mixed=1, flip_rate=0.67, entropy=1.0, broken_since=None,
        last_outcome="failed",
        timeline=(Moment("r1", 0.0, "abc", "failed", 1, 0),),
    )  # fmt: skip


def test_flaky_report_json_and_lines_read_the_same_verdicts() -> None:
    report = FlakyReport(window_runs=4, tests=(_verdict("t::a", "flaky", 0.5),))
    data = report.to_json()
    assert list(data) == ["schema", "version", "window_runs", "tests"]
    assert data["schema"] == "aqe-flaky"
    (entry,) = data["tests"]  # type: ignore[misc]
    assert "timeline" not in entry and entry["score"] == 0.5
    full = report.tests[0].to_json(timeline=True)
    assert full["timeline"] == [
        {
            "run_id": "r1", "start": "1970-01-01T00:00:00+00:00", "git_commit": "abc",
            "outcome": "failed", "failed_attempts": 1, "passed_attempts": 0,
        }
    ]  # fmt: skip
    assert flaky_lines(report)[-1].startswith("1 flaky, 0 broken in the last 4 runs")
    assert flaky_lines(FlakyReport(3, ())) == ["no flaky or broken tests in the last 3 runs"]


def test_failure_causes_json_keeps_the_documented_shape() -> None:
    cause = Cause(
        key="k1", cause="total()", count=2, error_types=("AssertionError",),
        tests=("t::a", "t::b"), example=FailureExample("t::a", "assert 3 == 4", "tb"),
        also=("tax()",),
    )  # fmt: skip
    report = FailureCauses(run_id="r1", failures=2, causes=(cause,))
    data = json.loads(json.dumps(report.to_json()))
    assert list(data) == ["schema", "version", "run_id", "failures", "clusters"]
    assert data["clusters"] == [
        {
            "key": "k1", "cause": "total()", "count": 2, "error_types": ["AssertionError"],
            "tests": ["t::a", "t::b"],
            "example": {"nodeid": "t::a", "message": "assert 3 == 4", "traceback": "tb"},
            "also": ["tax()"],
        }
    ]  # fmt: skip
    lines = cluster_lines(report)
    assert lines[0] == "run r1: 2 failures in 1 causes, largest first"
    assert "      with tax(): they broke together before" in lines


def test_grouping_returns_frozen_causes() -> None:
    raised = (
        "    def lookup():\n>       raise KeyError('x')\nE       KeyError: 'x'\n\n"
        "shop/core.py:3: KeyError"
    )
    entries = [
        {"nodeid": f"t::{n}", "outcome": "failed", "error_type": "KeyError", "traceback": raised}
        for n in ("a", "b")
    ]
    (cause,) = group_failures(entries, None)
    assert cause.tests == ("t::a", "t::b") and cause.count == 2 and cause.also == ()
    assert cause.example.nodeid == "t::a" and cause.error_types == ("KeyError",)


def test_similar_failures_json() -> None:
    row = SimilarFailure("r0", "t::a", 1, "total()", True, 3.5, None, "abc")
    data = SimilarFailures("r1", "t::a", "total()", (row,)).to_json()
    assert list(data) == ["schema", "version", "run_id", "nodeid", "cause", "similar"]
    assert data["similar"] == [
        {
            "run_id": "r0", "nodeid": "t::a", "attempt": 1, "cause": "total()",
            "same_cause": True, "score": 3.5, "start": None, "git_commit": "abc",
        }
    ]  # fmt: skip


def test_a_status_snapshot_reads_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    assert read_snapshot(path) is None
    StatusFile(str(path), "r1").write(
        state="running", done=1, attempts=2, known=5, collecting=False, eta=3.14159,
        counts={"passed": 1, "failed": 1}, outcomes={"passed": 1},
        workers=[WorkerState(0, 11, "hot", "t::a", 1.006)],
        failures=[FailureBrief("t::b", "failed", "boom")],
    )  # fmt: skip
    raw = json.loads(path.read_text())
    assert list(raw) == [
        "version", "run_id", "pid", "state", "updated", "done", "attempts", "known",
        "collecting", "eta_seconds", "counts", "outcomes", "workers", "failures",
    ]  # fmt: skip
    snapshot = read_snapshot(path)
    assert snapshot is not None and snapshot.to_json() == raw
    assert snapshot.eta_seconds == 3.14 and snapshot.workers[0].busy_for == 1.01
    assert snapshot.failures == (FailureBrief("t::b", "failed", "boom"),)


def test_an_odd_snapshot_reads_as_empty_fields() -> None:
    snapshot = Snapshot.from_json({"done": "x", "workers": [1, {"pid": 7}], "counts": []})
    assert (snapshot.done, snapshot.counts, snapshot.failures) == (0, {}, ())
    assert [w.pid for w in snapshot.workers] == [7]
