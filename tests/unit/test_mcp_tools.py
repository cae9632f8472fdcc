"""The MCP tools as plain functions: no server, no child process (milliseconds).

Runs are real ``RunHandle`` objects over directories holding what an ``aqe run``
child writes (a JSON report from ``build_json_report``, a snapshot from
``StatusFile``); the history is a real SQLite store.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from mcp.server.mcpserver.exceptions import ToolError

from aqe._engine._status import StatusFile, WorkerState, first_failures
from aqe._mcp._fleet import Fleet
from aqe._mcp._runs import RunHandle, RunRequest
from aqe._mcp._tools_failures import get_failure, list_failures
from aqe._mcp._tools_fleet import fleet_status
from aqe._mcp._tools_history import flaky_tests, test_history
from aqe._mcp._tools_runs import run_info, set_defaults, summary
from aqe._model import RunRecord, TestResult
from aqe._reporting.json_report import write_json_report
from aqe._store import HistoryStore

ASSERTION = """\
    def test_total():
>       assert total([1, 2]) == 4
E       assert 3 == 4
E        +  where 3 = total([1, 2])

tests/test_shop.py:4: AssertionError"""


def _result(nodeid: str, outcome: str, attempt: int = 1, **more: object) -> TestResult:
    return TestResult(
        nodeid=nodeid,
        file=nodeid.split("::")[0],
        line=3,
        outcome=outcome,  # type: ignore[arg-type]
        phases={"setup": 0.001, "call": 0.01, "teardown": 0.001},
        worker=0,
        attempt=attempt,
        **more,  # type: ignore[arg-type]
    )


RESULTS = [
    _result("tests/test_shop.py::test_ok", "passed"),
    _result(
        "tests/test_shop.py::test_total",
        "failed",
        when="call",
        error_type="AssertionError",
        message="assert 3 == 4",
        traceback=ASSERTION,
    ),
    _result("tests/test_shop.py::test_net", "failed", error_type="OSError", message="down"),
    _result("tests/test_shop.py::test_net", "flaky", attempt=2),
]


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (root / "tests" / "test_shop.py").write_text("def test_total():\n    assert 3 == 4\n")
    return Fleet(root, budget=20_000, session_idle=60.0)


def _finished(fleet: Fleet, results: list[TestResult], run_id: str = "r1") -> RunHandle:
    handle = RunHandle(run_id, RunRequest(), "default", fleet.root / ".aqe" / "runs" / run_id)
    handle.directory.mkdir(parents=True)
    run = RunRecord(run_id, 1.0, ["aqe", "run"], str(fleet.root), 1, end=2.0, exit_code=1)
    run.results.extend(results)
    write_json_report(run, handle.directory / "report.json")
    handle.state, handle.exit_code, handle.started, handle.ended = "finished", 1, 1.0, 2.0
    return handle


def test_list_failures_gives_final_failures_with_their_cause_and_attempts(fleet: Fleet) -> None:
    result, text = list_failures(fleet, _finished(fleet, RESULTS))
    assert result.total == 1 and not result.truncated
    (failure,) = result.failures
    assert (failure.nodeid, failure.failure_class, failure.attempts) == (
        "tests/test_shop.py::test_total",
        "assertion",
        1,
    )
    (cause,) = result.causes
    assert failure.cause_key == cause.key and cause.count == 1
    assert text == "1 failing tests in run r1, 1 causes"


def test_get_failure_digests_the_last_attempt(fleet: Fleet) -> None:
    handle = _finished(fleet, RESULTS)
    detail, text = get_failure(fleet, handle, "tests/test_shop.py::test_total")
    assert detail.failure_class == "assertion" and detail.when == "call"
    assert "assert total([1, 2]) == 4" in (detail.untrusted.assertion or "")
    assert [a.outcome for a in detail.attempts] == ["failed"]
    assert text == "failed (assertion): tests/test_shop.py::test_total"
    retried, _ = get_failure(fleet, handle, "tests/test_shop.py::test_net")
    assert [a.outcome for a in retried.attempts] == ["failed", "flaky"]
    with pytest.raises(ToolError, match="has no test"):
        get_failure(fleet, handle, "tests/test_shop.py::nothing")


def test_a_run_that_is_not_finished_has_no_failures_to_list(fleet: Fleet) -> None:
    handle = RunHandle("r2", RunRequest(), "default", fleet.root / "r2")
    with pytest.raises(ToolError, match="is queued; wait with get_run"):
        list_failures(fleet, handle)


def test_run_info_reads_the_live_snapshot_then_the_report(fleet: Fleet) -> None:
    handle = RunHandle("r3", RunRequest(workers=2), "default", fleet.root / "r3")
    handle.directory.mkdir()
    handle.state, handle.started = "running", 1.0
    info = run_info(fleet, handle)
    assert info.collecting and info.done == 0 and info.known is None
    final = {"tests/test_shop.py::test_total": "failed"}
    StatusFile(str(handle.directory / "status.json"), "r3").write(
        state="running", done=1, attempts=2, known=3, collecting=False, eta=1.234,
        counts={"failed": 1}, outcomes={"failed": 1},
        workers=[WorkerState(1, 4242, "hot", "tests/test_shop.py::test_ok", 0.5)],
        failures=first_failures(RESULTS, final),
    )  # fmt: skip
    info = run_info(fleet, handle)
    assert (info.done, info.attempts, info.known, info.collecting) == (1, 2, 3, False)
    assert info.eta_estimate_seconds == 1.23 and info.request == {"workers": 2}
    assert [f.nodeid for f in info.first_failures] == ["tests/test_shop.py::test_total"]
    assert info.hint.startswith("still running")
    done = _finished(fleet, RESULTS, "r4")
    info = run_info(fleet, done)
    assert info.outcomes == {"passed": 1, "failed": 1, "flaky": 1}
    assert (info.done, info.attempts, info.exit_code) == (3, 4, 1)
    assert summary(info) == "run r4 finished: 3/3 tests, 1 failed, 1 passed, 1 flaky; exit code 1"


def test_set_defaults_are_the_sessions(fleet: Fleet) -> None:
    session = fleet.sessions.get("s")
    defaults, text = set_defaults(session, workers=3, timeout_seconds=9.0)
    assert (session.defaults.workers, session.defaults.retries, session.defaults.timeout) == (
        3,
        None,
        9.0,
    )
    assert defaults.workers == 3 and text.startswith("defaults set")


def test_fleet_status_when_idle(fleet: Fleet) -> None:
    fleet.sessions.get("s")
    status, text = fleet_status(fleet)
    assert status.active_run is None and status.workers == [] and status.sessions == 1
    assert text.endswith(": idle")


def _history(root: Path, outcomes: list[str]) -> None:
    with HistoryStore(root / ".aqe" / "history.db") as store:
        for i, outcome in enumerate(outcomes):
            run = RunRecord(f"h{i}", 100.0 + i, ["aqe"], str(root), 1, code_id="git:abc")
            store.begin_run(run)
            run.results.append(_result("tests/test_shop.py::test_net", outcome))
            store.add_results(run.run_id, run.results)
            run.end, run.exit_code = 101.0 + i, 0
            store.finish_run(run)


def test_history_tools_read_the_store_and_a_project_without_one(fleet: Fleet) -> None:
    empty, text = test_history(fleet, "tests/test_shop.py::test_net")
    assert empty.runs_seen == 0 and empty.entries == [] and text.endswith("never run")
    flaky, _ = flaky_tests(fleet)
    assert flaky.window_runs == 0 and flaky.tests == []
    _history(fleet.root, ["passed", "failed", "passed", "failed"])
    past, text = test_history(fleet, "tests/test_shop.py::test_net", limit=3)
    assert [e.run_id for e in past.entries] == ["h3", "h2", "h1"]
    assert past.truncated and past.next_cursor == "3" and past.runs_seen == 4
    assert past.counts == {"passed": 2, "failed": 2}
    flaky, text = flaky_tests(fleet)
    (entry,) = flaky.tests
    assert (entry.label, entry.same_code_mixed, entry.quarantined) == ("flaky", 1, False)
    assert text == "1 flaky in the last 4 runs"


def test_the_server_registers_every_area(fleet: Fleet) -> None:
    from aqe._mcp._server import build_server

    server, _ = build_server(fleet.root)
    names = [tool.name for tool in anyio.run(server.list_tools)]
    assert sorted(names) == sorted(
        [
            "list_tests", "run_tests", "get_run", "cancel_run", "set_defaults",
            "list_failures", "get_failure", "similar_failures", "test_history",
            "flaky_tests", "fleet_status", "generate_tests", "get_generated_text",
            "run_affected", "list_gaps",
            "generate_api_tests",
        ]
    )  # fmt: skip


def test_a_file_that_failed_to_collect_is_a_failure_and_passing_output_is_dropped(
    fleet: Fleet,
) -> None:
    broken = "tests/test_broken.py"
    text = "ImportError while importing test module\nE   ModuleNotFoundError: No module named 'x'"
    handle = _finished(fleet, [_result("tests/test_shop.py::test_ok", "passed", stdout="noise")])
    run = RunRecord("r5", 1.0, ["aqe"], str(fleet.root), 1, end=2.0, exit_code=2)
    run.results.extend([_result("tests/test_shop.py::test_ok", "passed", stdout="noise")])
    run.collection_errors.append((broken, text))
    write_json_report(run, handle.directory / "report.json")
    report = handle.report()
    assert report is not None and report.tests[0]["stdout"] == ""
    result, _ = list_failures(fleet, handle)
    (failure,) = result.failures
    assert (failure.nodeid, failure.failure_class, failure.error_type) == (
        broken,
        "import",
        "ModuleNotFoundError",
    )
    detail, _ = get_failure(fleet, handle, broken)
    assert detail.when == "collect" and detail.untrusted.message == "No module named 'x'"


def test_a_generated_file_reads_back_in_pages(fleet: Fleet) -> None:
    from aqe._mcp._generate import Generated, _results, get_generated_text

    found = Generated(
        module="shop", written=False, out=str(fleet.root / "tests" / "test_gen.py"),
        out_relative="tests/test_gen.py", tests=40, properties=3, line_percent=90.0,
        branch_percent=80.0, dropped=(("test_x", "failed under seed 2"),),
        text="".join(f"def test_{i}():\n    assert {i} == {i}\n\n" for i in range(2000)),
    )  # fmt: skip
    (_results(fleet.root) / "0123456789ab.json").write_text(json.dumps(found.to_json()))
    text, offset, pages = "", 0, 0
    while True:
        page, summary_line = get_generated_text(fleet, "0123456789ab", offset)
        assert len(page.model_dump_json()) < fleet.budget and summary_line.startswith("characters")
        assert (page.tests, page.dropped_total, page.out) == (40, 1, "tests/test_gen.py")
        text, pages = text + page.text, pages + 1
        if page.next_offset is None:
            break
        offset = page.next_offset
    assert text == found.text and pages > 1
    with pytest.raises(ToolError, match="expired or unknown"):
        get_generated_text(fleet, "ba9876543210")
    with pytest.raises(ToolError, match="is not one this server returned"):
        get_generated_text(fleet, "../../etc/pa")
