"""What a dead worker's death is blamed on, time limits, and the run's closing lines."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from aqe._engine import _summary
from aqe._engine._blame import BatchCrash, Crash, FileCrash, blame, not_found
from aqe._engine._deadlines import STACKS_WAIT, Deadlines
from aqe._engine._pool import WorkerConn
from aqe._model import Outcome, TestResult

#: Above any pid Linux hands out: a kill aimed at it reaches no process.
NO_PID = 1 << 30


@pytest.fixture
def conn() -> Iterator[WorkerConn]:
    left, right = socket.socketpair()
    with left, right:
        yield WorkerConn(worker=1, pid=NO_PID, sock=left, busy_since=0.0)


def test_a_death_under_a_test_blames_that_test_with_its_output(conn: WorkerConn) -> None:
    conn.failure = "Traceback ...\nSystemExit: 3"
    found = blame(conn, "t.py::test_a", "exited with code 3", "", ("out", "err"))
    assert isinstance(found, Crash)
    assert (found.nodeid, found.outcome, found.error_type) == (
        "t.py::test_a",
        "crashed",
        "WorkerCrashed",
    )
    assert found.message.endswith("exited with code 3 while running this test: SystemExit: 3")
    assert found.retry and found.output == ("out", "err")
    text = found.text()
    assert "Last lines of its stdout:\nout" in text and "Last lines of its stderr:\nerr" in text
    result = found.result()
    assert (result.outcome, result.stdout, result.worker) == ("crashed", "out", 1)


def test_a_timed_out_test_is_blamed_with_its_stacks_unless_it_had_finished(
    conn: WorkerConn,
) -> None:
    conn.timed_out = ("t.py::test_slow", 2.0, 2.3)
    found = blame(conn, "t.py::test_slow", "was killed by SIGKILL", "Thread 1:\n  File x", ("", ""))
    assert isinstance(found, Crash)
    assert (found.outcome, found.error_type, found.seconds) == ("timeout", "Timeout", 2.3)
    assert found.message.startswith("Timeout: still running after 2s; aqe killed worker 1")
    assert "Stacks of the worker's threads" in found.detail
    assert blame(conn, "t.py::test_next", "was killed", "", ("", "")) is None


def test_a_worker_stopped_on_purpose_or_importing_blames_nothing(conn: WorkerConn) -> None:
    conn.killed = True
    assert blame(conn, "t.py::test_a", "was killed", "", ("", "")) is None
    conn.killed, conn.importing = False, True
    assert blame(conn, "t.py::test_a", "was killed", "", ("", "")) is None
    conn.importing = False
    assert blame(conn, None, "exited", "", ("", "")) is None


def test_a_death_while_collecting_blames_the_file_or_splits_the_batch(conn: WorkerConn) -> None:
    conn.collecting = (4,)
    conn.failure = "boom"
    assert blame(conn, None, "was killed by SIGSEGV", "", ("", "")) == FileCrash(
        4, f"worker 1 (pid {NO_PID}) was killed by SIGSEGV while collecting this file:\nboom"
    )
    conn.collecting = (4, 5)
    assert blame(conn, None, "was killed", "", ("", "")) == BatchCrash((4, 5))


def test_a_test_not_found_is_an_error_that_never_runs_again() -> None:
    found = not_found(2, "t.py::test_gone")
    assert (found.outcome, found.error_type, found.retry) == ("error", "NotCollected", False)
    assert "worker 2 collected t.py to run it" in found.message


def test_limits_a_marker_wins_zero_means_none_and_pytest_timeout_gets_grace() -> None:
    deadlines = Deadlines(timeout=10.0, marker_grace=1.0)
    deadlines.own.update({"t::own": 2.0, "t::none": 0.0})
    assert deadlines.limit("t::own") == 3.0
    assert deadlines.limit("t::none") is None
    assert deadlines.limit("t::other") == 10.0


def test_a_test_past_its_limit_is_asked_for_stacks_then_killed(conn: WorkerConn) -> None:
    deadlines = Deadlines(timeout=1.0)

    def state(now: float, collecting: tuple[int, ...] = ()) -> tuple[object, object]:
        conn.collecting = collecting
        deadlines.check(conn, "t::a", now)
        return conn.timed_out, conn.kill_at

    assert state(0.5) == (None, None)
    assert state(5.0, collecting=(0,)) == (None, None)  # the file's time is not the test's
    assert state(5.0) == (("t::a", 1.0, 5.0), 5.0 + STACKS_WAIT)
    # killed (no such process here): nothing more to wait for
    assert state(5.0 + STACKS_WAIT) == (("t::a", 1.0, 5.0), None)


def _result(nodeid: str, tier: str, outcome: Outcome = "passed", message: str = "") -> TestResult:
    return TestResult(nodeid, "t.py", 1, outcome, {"call": 0.1}, 0, tier=tier, message=message)


def test_accounting_says_what_did_not_run_and_why() -> None:
    assert _summary.accounting(5, 0, 5, False) == "aqe: collected 5 tests, ran 5"
    assert _summary.accounting(5, 2, 3, True) == (
        "aqe: collected 5 tests (2 deselected), ran 3; 2 did not run (the run stopped early)"
    )
    results = [_result("a", "hot"), _result("b", "hot", "failed", "not run: no worker")]
    assert _summary.ran_ids(results) == {"a"}


def test_quarantine_lists_ten_and_counts_the_rest() -> None:
    assert _summary.quarantine([]) == []
    line = _summary.quarantine([f"t{i}" for i in range(12)])[0]
    assert line.startswith("aqe: 12 quarantined tests failed") and line.endswith("and 2 more")


def test_isolation_lines_only_when_a_test_ran_alone() -> None:
    assert _summary.isolation([_result("a", "hot")], [], {}) == []
    results = [_result("a", "hot", "failed"), _result("a", "warm", "flaky")]
    lines = _summary.isolation(results, [("a", "warm")], {"b": [("hot", 300.0)]})
    assert lines[0].startswith("aqe: tiers: hot 1 tests")
    assert lines[1] == (
        "aqe: a passed only alone (warm tier): it may depend on state other tests leave behind"
    )
    assert "b went past the memory limit only among other tests (300 MB hot)" in lines[2]
