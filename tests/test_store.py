"""Tests for the SQLite history store, against real database files under tmp_path."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from aqe._exceptions import StoreError
from aqe._model import Outcome, RunRecord, TestResult
from aqe._store import DurationEstimate, HistoryStore, RunRow, _schema


def make_result(
    nodeid: str,
    outcome: Outcome = "passed",
    *,
    call: float = 0.1,
    setup: float | None = 0.01,
    **extra: Any,
) -> TestResult:
    phases = {"call": call} if setup is None else {"setup": setup, "call": call}
    return TestResult(
        nodeid=nodeid,
        file=nodeid.split("::")[0],
        line=1,
        outcome=outcome,
        phases=phases,
        worker=0,
        **extra,
    )


def make_run(run_id: str, start: float = 1000.0, **extra: Any) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        start=start,
        command=["aqe", "run", "tests"],
        root="/project",
        workers=4,
        **extra,
    )


def raw(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, isolation_level=None))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return HistoryStore.default_path(tmp_path)


@pytest.fixture
def store(db_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(db_path) as opened:
        yield opened


def test_round_trip_of_runs_and_results(db_path: Path) -> None:
    run = make_run("r1", git_commit="abc123", git_dirty=True)
    results = [
        make_result("tests/test_a.py::test_ok", stdout="hello", start=1.0, stop=2.0),
        dataclasses.replace(
            make_result("tests/test_a.py::test_bad", "failed", setup=None, call=0.5),
            line=None,
            worker=3,
            attempt=2,
            when="call",
            error_type="AssertionError",
            message="assert 1 == 2",
            traceback="Traceback...\n  line",
        ),
        make_result("tests/test_b.py::test_skip", "skipped", when="setup"),
    ]
    with HistoryStore(db_path) as store:
        store.begin_run(run)
        (started,) = store.recent_runs()
        assert started.end is None and started.exit_code is None
        assert started.counts == dict.fromkeys(started.counts, 0)
        store.add_results("r1", results)
        store.add_collect_times("r1", {"tests/test_a.py": 0.25})
        run.results.extend(results)
        run.end, run.exit_code, run.tail_idle = 1010.0, 1, {0: 0.5, 1: 2.5}
        store.finish_run(run)

    with HistoryStore(db_path) as store:  # survives closing and reopening
        (row,) = store.recent_runs()
        assert row == RunRow(
            run_id="r1",
            start=1000.0,
            end=1010.0,
            git_commit="abc123",
            git_dirty=True,
            workers=4,
            exit_code=1,
            counts={
                "passed": 1,
                "failed": 1,
                "skipped": 1,
                "xfailed": 0,
                "xpassed": 0,
                "error": 0,
                "crashed": 0,
                "timeout": 0,
                "flaky": 0,
            },
            tail_idle=2.5,
            command=["aqe", "run", "tests"],
            root="/project",
        )
        # Captured output is not stored, only its size.
        assert store.results_for_run("r1") == [dataclasses.replace(r, stdout="") for r in results]
        assert store.results_for_run("nope") == []
        assert store.collect_estimates() == {"tests/test_a.py": 0.25}
    with raw(db_path) as conn:
        assert conn.execute("SELECT output_size FROM results ORDER BY rowid").fetchall() == [
            (5,),
            (0,),
            (0,),
        ]


def test_finish_run_without_begin_still_records_the_run(store: HistoryStore) -> None:
    run = make_run("late", end=1001.0, exit_code=0)
    store.finish_run(run)
    (row,) = store.recent_runs()
    assert (row.run_id, row.end, row.exit_code, row.git_dirty, row.tail_idle) == (
        "late",
        1001.0,
        0,
        None,
        None,
    )


def test_recent_runs_newest_first_with_limit(store: HistoryStore) -> None:
    for run_id, start in [("a", 1.0), ("b", 3.0), ("c", 2.0)]:
        store.begin_run(make_run(run_id, start))
    assert [row.run_id for row in store.recent_runs()] == ["b", "c", "a"]
    assert [row.run_id for row in store.recent_runs(limit=2)] == ["b", "c"]


def test_add_results_uses_one_transaction_per_batch(store: HistoryStore) -> None:
    statements: list[str] = []
    assert store._conn is not None
    store._conn.set_trace_callback(statements.append)
    store.add_results("r", [make_result(f"t.py::test_{i}") for i in range(200)])
    store._conn.set_trace_callback(None)
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]
    assert len(store.results_for_run("r")) == 200


def test_estimates_are_medians_over_window_ignoring_skipped(store: HistoryStore) -> None:
    for i, call in enumerate([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]):
        store.add_results(
            f"r{i}",
            [
                make_result("t.py::a", call=call, setup=call / 10),
                make_result("t.py::a", "skipped", call=100.0),  # newer but skipped
                make_result("t.py::only_skipped", "skipped"),
                make_result("t.py::no_setup", "failed", call=2.0, setup=None),
            ],
        )
    estimates = store.estimates()
    assert set(estimates) == {"t.py::a", "t.py::no_setup"}
    a = estimates["t.py::a"]
    assert (a.nodeid, a.call, a.teardown, a.samples) == ("t.py::a", 5.0, 0.0, 5)
    assert a.setup == pytest.approx(0.5)
    assert a.total == pytest.approx(5.5)
    assert store.estimates(window=3)["t.py::a"].call == 6.0
    assert store.estimates(window=2)["t.py::a"].call == 6.5
    assert estimates["t.py::no_setup"] == DurationEstimate("t.py::no_setup", 0.0, 2.0, 0.0, 2.0, 5)

    assert set(store.estimates(["t.py::a", "t.py::missing"])) == {"t.py::a"}
    many = [f"t.py::other_{i}" for i in range(2000)] + ["t.py::no_setup"]
    assert set(store.estimates(many)) == {"t.py::no_setup"}
    assert store.estimates([]) == {}


def test_collect_estimates_median_over_window(store: HistoryStore) -> None:
    for i, seconds in enumerate([1.0, 2.0, 3.0, 10.0, 20.0, 30.0]):
        store.add_collect_times(f"r{i}", {"t.py": seconds, "u.py": 0.5})
    assert store.collect_estimates() == {"t.py": 10.0, "u.py": 0.5}
    assert store.collect_estimates(window=2) == {"t.py": 25.0, "u.py": 0.5}


def test_open_sets_wal_and_pragmas(store: HistoryStore, db_path: Path) -> None:
    conn = store._conn
    assert conn is not None
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 30_000
    with raw(db_path) as other:  # WAL is a property of the file, not the connection
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_gitignore_written_only_in_dot_aqe(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "project" / ".aqe" / "history.db"):
        pass
    assert (tmp_path / "project" / ".aqe" / ".gitignore").read_text() == "*\n!quarantine.toml\n"
    with HistoryStore(tmp_path / "elsewhere" / "nested" / "h.db"):
        pass
    assert not (tmp_path / "elsewhere" / "nested" / ".gitignore").exists()


def test_migrates_an_empty_file_from_version_zero(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"")
    with HistoryStore(db_path) as store:
        assert store.recent_runs() == []
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (_schema.SCHEMA_VERSION,)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert {"runs", "results", "collect_times", "results_nodeid", "results_run_id"} <= tables


def test_migrations_apply_in_order_and_roll_back_on_failure(db_path: Path) -> None:
    with HistoryStore(db_path) as store:
        store.begin_run(make_run("r1"))
    v1 = _schema.SCHEMA_VERSION
    failing = (*_schema.MIGRATIONS, ("ALTER TABLE runs ADD COLUMN x TEXT",), ("SELECT nope",))
    ordered = (
        *_schema.MIGRATIONS,
        ("ALTER TABLE runs ADD COLUMN note TEXT",),
        ("UPDATE runs SET note = 'step ' || (SELECT count(*) FROM runs)",),
    )
    with raw(db_path) as conn:
        with pytest.raises(sqlite3.OperationalError):
            _schema.migrate(conn, db_path, failing)
        assert conn.execute("PRAGMA user_version").fetchone() == (v1,)
        assert "x" not in {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
        assert _schema.migrate(conn, db_path, ordered) == v1 + 2
        assert conn.execute("SELECT note FROM runs").fetchall() == [("step 1",)]
        assert _schema.migrate(conn, db_path, ordered) == v1 + 2  # idempotent


def test_refuses_a_database_from_a_newer_aqe(db_path: Path) -> None:
    with HistoryStore(db_path):
        pass
    with raw(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError) as info:
        HistoryStore(db_path)
    message = str(info.value)
    assert str(db_path) in message and "99" in message and "newer" in message
    assert "\n" not in message


def _random_bytes(path: Path) -> Path:
    path.write_bytes(os.urandom(8192))
    return path


def _truncated(path: Path) -> Path:
    with HistoryStore(path) as store:
        for batch in range(10):
            store.add_results("r", [make_result(f"t.py::{batch}_{i}") for i in range(100)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make_bad", "expected"),
    [
        (_random_bytes, "not a valid SQLite database"),
        (_truncated, "not a valid SQLite database"),
        (_directory, "cannot be opened"),
    ],
    ids=["random-bytes", "truncated", "directory"],
)
def test_unusable_file_raises_one_line_store_error(
    tmp_path: Path, make_bad: Any, expected: str
) -> None:
    path = make_bad(tmp_path / "history.db")
    with pytest.raises(StoreError) as info:
        with HistoryStore(path) as store:  # a damaged file may only fail on first read
            store.estimates()
            store.recent_runs()
    message = str(info.value)
    assert message.startswith(f"history database {path} ")
    assert expected in message and "--no-history" in message
    assert "\n" not in message
    assert not isinstance(info.value.__cause__, StoreError)


def test_foreign_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with raw(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreError, match="not an aqe history database"):
        HistoryStore(path)
    with raw(path) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("customers",)]


def test_wrong_shape_at_known_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "shape.db"
    with raw(path) as conn:
        conn.execute("CREATE TABLE runs (x)")
        conn.execute(f"PRAGMA user_version = {_schema.SCHEMA_VERSION}")
    with pytest.raises(StoreError, match=r"table 'runs' lacks .*run_id") as info:
        HistoryStore(path)
    assert str(path) in str(info.value)


def test_sqlite_errors_in_methods_become_store_errors(store: HistoryStore) -> None:
    store.begin_run(make_run("dup"))
    with pytest.raises(StoreError, match=r"recording the start of a run .*UNIQUE"):
        store.begin_run(make_run("dup"))
    assert len(store.recent_runs()) == 1  # the failed transaction was rolled back
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        store.recent_runs()


BATCHES, BATCH_SIZE = 20, 50


def _write_run(path: str, run_id: str, barrier: Any) -> None:
    """Child process body: one whole run written in batches, like a coordinator."""
    with HistoryStore(Path(path)) as store:
        run = make_run(run_id)
        store.begin_run(run)
        barrier.wait(timeout=30)  # both processes now write at the same time
        for batch in range(BATCHES):
            results = [make_result(f"t.py::test_{batch}_{i}") for i in range(BATCH_SIZE)]
            store.add_results(run_id, results)
            run.results.extend(results)
        store.finish_run(run)


@pytest.mark.e2e
def test_two_processes_write_concurrently(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_write_run, args=(str(db_path), run_id, barrier), daemon=True)
        for run_id in ("left", "right")
    ]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join()
    assert [proc.exitcode for proc in procs] == [0, 0]
    with HistoryStore(db_path) as store:
        for run_id in ("left", "right"):
            assert len(store.results_for_run(run_id)) == BATCHES * BATCH_SIZE
        counts = {row.run_id: row.counts["passed"] for row in store.recent_runs()}
        assert counts == {"left": BATCHES * BATCH_SIZE, "right": BATCHES * BATCH_SIZE}
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_a_history_from_the_first_schema_keeps_its_runs_after_upgrade(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        _schema.migrate(conn, db_path, _schema.MIGRATIONS[:1])
        conn.execute(
            "INSERT INTO runs (run_id, start, command, root, workers, passed, failed)"
            " VALUES ('old', 1.0, '[\"aqe\"]', '/p', 2, 5, 1)"
        )
    with HistoryStore(db_path) as store:
        (row,) = store.recent_runs()
        store.finish_run(make_run("new", start=2.0, results=[make_result("t", "timeout")]))
        newest = store.recent_runs()[0]
    assert (row.run_id, row.counts["passed"], row.counts["timeout"]) == ("old", 5, 0)
    assert (newest.run_id, newest.counts["timeout"]) == ("new", 1)
