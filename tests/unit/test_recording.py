"""How a verdict shows in pytest's reports, and where a settled result goes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import pytest

from aqe._engine._plan import Estimate
from aqe._engine._recorder import Recorder
from aqe._engine._replay import mark
from aqe._model import Outcome, RunRecord, TestResult
from aqe._verdicts import AwaitTwin, Final, Isolate, Retry, Verdict

When = Literal["setup", "call", "teardown"]


def _reports(call: Literal["passed", "failed"]) -> list[pytest.TestReport]:
    phases: list[tuple[When, Literal["passed", "failed"]]] = [
        ("setup", "passed"),
        ("call", call),
        ("teardown", "passed"),
    ]
    return [
        pytest.TestReport("t.py::a", ("t.py", 0, "a"), {}, outcome, None, when)
        for when, outcome in phases
    ]


def _marked(call: Literal["passed", "failed"], verdict: Verdict) -> list[str]:
    reports = _reports(call)
    mark(reports, verdict)
    return [report.outcome for report in reports]


def test_an_attempt_that_runs_again_shows_its_failure_as_a_rerun() -> None:
    assert _marked("failed", Retry()) == ["passed", "rerun", "passed"]
    assert _marked("failed", AwaitTwin()) == ["passed", "rerun", "passed"]


def test_an_attempt_sent_to_the_next_tier_for_memory_stands_only_if_it_stays_under() -> None:
    assert _marked("passed", Isolate(("warm",))) == ["passed", "rerun", "passed"]


def test_a_final_verdict_leaves_reports_as_they_are_but_for_quarantine_and_flaky() -> None:
    assert _marked("failed", Final("failed")) == ["passed", "failed", "passed"]
    assert _marked("failed", Final("failed", quarantined=True)) == [
        "passed",
        "quarantined",
        "passed",
    ]
    reports = _reports("passed")
    mark(reports, Final("flaky"))
    assert [getattr(report, "aqe_outcome", None) for report in reports] == ["flaky"] * 3


class Sink:
    """The run controller's side: what reached the store, batch by batch."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[str], dict[str, float]]] = []

    def estimates(self) -> tuple[Mapping[str, Estimate], Mapping[str, float]]:
        return {}, {}

    def record(self, results: Sequence[TestResult], collect_times: Mapping[str, float]) -> None:
        self.batches.append(([r.nodeid for r in results], dict(collect_times)))


def _result(nodeid: str, outcome: Outcome) -> TestResult:
    return TestResult(nodeid, "t.py", 1, outcome, {}, 0)


def test_every_result_is_counted_kept_and_handed_to_the_sink_in_batches() -> None:
    run, sink = RunRecord("r", 0.0, ["aqe"], "/proj", 2), Sink()
    recorder = Recorder(run, sink, view=None, status=None)
    recorder.record(_result("t::a", "failed"))
    recorder.record(_result("t::a", "flaky"))
    recorder.collect_times({"t.py": 0.5})
    recorder.flush()  # not due yet: batched
    assert sink.batches == []
    recorder.flush(force=True)
    recorder.flush(force=True)  # nothing new: nothing sent
    assert sink.batches == [(["t::a", "t::a"], {"t.py": 0.5})]
    assert recorder.counts == {"failed": 1, "flaky": 1}
    assert [r.outcome for r in run.results] == ["failed", "flaky"]
