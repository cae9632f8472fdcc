"""History export/import on SQLite, the schema rendered for both dialects, and masked
URLs: no process, no server (tests/test_postgres.py has the PostgreSQL side)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from aqe._exceptions import UsageError
from aqe._model import RunRecord, TestResult
from aqe._runner import masked_argument
from aqe._store import HistoryStore, _schema, _tables, masked, open_existing
from aqe._store._dump import read_dumps, write_dumps


def _run(store: HistoryStore, run_id: str, outcome: str) -> None:
    run = RunRecord(run_id=run_id, start=float(len(run_id)), command=["aqe"], root="/p", workers=1)
    store.begin_run(run)
    result = TestResult(
        nodeid="t.py::a", file="t.py", line=1, outcome=outcome, phases={"call": 0.5},
        worker=0, message=None if outcome == "passed" else "boom", start=1.0, stop=1.5,
    )  # fmt: skip
    store.add_results(run_id, [result])
    store.add_failure_texts(run_id, [("t.py::a", 1, "k", "Boom", "boom widget")])
    store.add_collect_times(run_id, {"t.py": 0.25})
    run.results.append(result)
    run.end, run.exit_code = run.start + 1, 0
    store.finish_run(run)


def test_export_then_import_twice_adds_each_run_once(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "a.db") as source:
        _run(source, "r1", "passed")
        _run(source, "r22", "failed")
        assert write_dumps(tmp_path / "h.jsonl.gz", source.export_runs()) == 2
        expected = source.results_for_run("r22"), source.recent_runs()
    with gzip.open(tmp_path / "h.jsonl.gz", "rt") as lines:
        header = json.loads(next(lines))
    assert header == {"format": "aqe-history", "version": 1, "schema": _schema.SCHEMA_VERSION}
    with HistoryStore(tmp_path / "b.db") as target:
        _run(target, "r333", "passed")  # a run of its own: import merges
        added = [target.import_run(d) for d in read_dumps(tmp_path / "h.jsonl.gz")]
        again = [target.import_run(d) for d in read_dumps(tmp_path / "h.jsonl.gz")]
        assert added == [True, True] and again == [False, False]
        assert (target.results_for_run("r22"), target.recent_runs()[1:]) == expected
        assert [r.run_id for r in target.similar_failures(["widget"], None, 5)] == [
            "r333", "r1", "r22"
        ]  # fmt: skip


def test_a_file_that_is_not_an_export_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "something else"}\n')
    with pytest.raises(UsageError, match="is not an aqe history export"):
        list(read_dumps(bad))
    bad.write_text('{"format": "aqe-history", "version": 99}\n')
    with pytest.raises(UsageError, match="newer than the 1 this aqe reads"):
        list(read_dumps(bad))
    bad.write_text('{"format": "aqe-history", "version": 1}\n{"run": {"nope": 1}}\n')
    with pytest.raises(UsageError, match=r"bad.jsonl:2 .*unknown column 'nope'"):
        list(read_dumps(bad))


def test_one_schema_definition_renders_both_dialects() -> None:
    assert _schema.MIGRATIONS == tuple(_tables.render(s, _tables.SQLITE) for s in _tables.STEPS)
    assert _schema.MIGRATIONS[1][0] == "ALTER TABLE runs ADD COLUMN crashed INTEGER"
    postgres = [_tables.render(s, _tables.POSTGRES) for s in _tables.STEPS]
    assert len(postgres) == _schema.SCHEMA_VERSION == 4
    assert postgres[0][0].startswith("CREATE TABLE runs (seq BIGINT GENERATED ALWAYS AS IDENTITY")
    assert '"end" DOUBLE PRECISION' in postgres[0][0]


def test_passwords_are_masked_and_missing_files_are_not_created(tmp_path: Path) -> None:
    assert masked("postgresql://me:hunter2@db:5432/aqe") == "postgresql://me:***@db:5432/aqe"
    assert masked("postgresql://db/aqe?user=me&password=hunter2") == (
        "postgresql://db/aqe?user=me&password=***"
    )
    assert masked("postgresql://db/aqe") == "postgresql://db/aqe"
    assert masked(tmp_path / "h.db") == str(tmp_path / "h.db")
    assert open_existing(tmp_path / "h.db") is None and not (tmp_path / "h.db").exists()
    # The command a run records (history, reports) never holds the password either.
    assert [masked_argument(a) for a in ("--history=postgresql://me:pw@db/h", "-k", "x")] == [
        "--history=postgresql://me:***@db/h", "-k", "x"
    ]  # fmt: skip
