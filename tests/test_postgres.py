"""The PostgreSQL history against a real server (tests/pg_cluster.py), never a mock.

Checked: the store answers as the SQLite store does for the same runs; the commands
work on a ``postgresql://`` history; four ``aqe run`` at once, some interrupted, lose
and duplicate nothing; export/import moves a history between the two and ``aqe flaky``
agrees on both; bad URLs, passwords and schemas give one line, masked, exit 3 or 4.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import HANG_GUARD, aqe_process, clean_env
from pg_cluster import PASSWORD, Cluster, cluster

import aqe
from aqe._model import RunRecord, TestResult
from aqe._store import HistoryStore, open_history
from aqe._store._postgres import SCHEMA_VERSION, PostgresStore

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PROJECT = {
    "pyproject.toml": "[tool.pytest.ini_options]\n",
    "tests/test_many.py": """
        import pytest

        @pytest.mark.parametrize("n", range(12))
        def test_quick(n):
            assert n >= 0

        def test_fails():
            raise ValueError("the widget_factory returned None for order 42")
    """,
    "tests/conftest.py": """
        import os
        import pathlib
        import time

        finished = 0

        def pytest_runtest_logfinish(nodeid, location):
            # With PG_MARK set: after the 6th test, say so and wait for the release
            # file the test writes once it has sent SIGINT to this run.
            global finished
            finished += 1
            mark = os.environ.get("PG_MARK")
            if mark and finished == 6:
                pathlib.Path(mark).touch()
                release = pathlib.Path(mark + ".release")
                deadline = time.monotonic() + 120
                while not release.exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
    """,
}


@pytest.fixture(scope="module")
def pg() -> Iterator[Cluster]:
    with cluster() as made:
        yield made


_numbers = itertools.count()


@pytest.fixture
def database(pg: Cluster) -> str:
    """A fresh database for this test; its URL (with the password)."""
    return pg.create_database(f"history_{next(_numbers)}")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dedent(text), encoding="utf-8")
    return root


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip("\n")


def _result(nodeid: str, outcome: str, attempt: int = 1, start: float = 0.0) -> TestResult:
    return TestResult(
        nodeid=nodeid,
        file=nodeid.partition("::")[0],
        line=1,
        outcome=outcome,
        phases={"setup": 0.001, "call": 0.01 * attempt, "teardown": 0.001},
        worker=0,
        attempt=attempt,
        message=None if outcome == "passed" else "AssertionError: widget broke",
        start=start,
        stop=start + 0.012,
    )


def _feed(store: PostgresStore | HistoryStore, runs: int) -> None:
    """The same runs into either store: a flaky test, a broken one, a stable one."""
    for i in range(runs):
        run = RunRecord(
            run_id=f"r{i}", start=1000.0 + i, command=["aqe", "run"], root="/p", workers=2,
            git_commit="abc", git_dirty=False, code_id="git:abc",
        )  # fmt: skip
        store.begin_run(run)
        results = [
            _result("t.py::stable", "passed", start=run.start),
            _result("t.py::broken", "failed", start=run.start),
            _result("t.py::flaky", "failed" if i % 2 else "passed", start=run.start),
        ]
        if i % 2:
            results.append(_result("t.py::flaky", "passed", attempt=2, start=run.start))
        store.add_results(run.run_id, results)
        store.add_collect_times(run.run_id, {"t.py": 0.1 + i / 100})
        store.add_failure_texts(
            run.run_id, [("t.py::broken", 1, "k1", "AssertionError", "widget_factory broke")]
        )
        run.results.extend(results)
        run.end, run.exit_code = run.start + 1, 1
        store.finish_run(run)


def test_the_postgres_store_answers_as_sqlite_does(database: str, tmp_path: Path) -> None:
    store = open_history(database)
    assert isinstance(store, PostgresStore)
    with store, HistoryStore(tmp_path / "h.db") as lite:
        _feed(store, 6)
        _feed(lite, 6)
        assert store.estimates() == lite.estimates()
        assert store.estimates(["t.py::flaky"], window=2) == lite.estimates(["t.py::flaky"], 2)
        assert store.collect_estimates(3) == lite.collect_estimates(3)
        assert store.recent_runs(4) == lite.recent_runs(4)
        assert store.results_for_run("r3") == lite.results_for_run("r3")
        assert store.test_history("t.py::flaky", 5, 1) == lite.test_history("t.py::flaky", 5, 1)
        assert store.known_nodeids() == lite.known_nodeids()
        assert store.attempts_by_run(4) == lite.attempts_by_run(4)
        found = store.similar_failures(["widget_factory", "broke"], "r5", 3)
        assert [(r.run_id, r.nodeid) for r in found] == [
            (r.run_id, r.nodeid) for r in lite.similar_failures(["widget_factory broke"], "r5", 3)
        ]
    # A second process opening the migrated database finds version 3 and changes nothing.
    with PostgresStore(database) as again:
        assert len(again.recent_runs(100)) == 6



def test_the_failure_index_keeps_no_pending_list_even_when_an_older_aqe_made_it(
    database: str,
) -> None:
    """A GIN index with ``fastupdate`` makes every search scan the entries not yet
    merged (all of a fresh history's); aqe makes it without, and turns it off (merging
    what is pending) in a database an older aqe made, once, on open."""

    def options(store: PostgresStore) -> list[str]:
        row = store._conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = 'failure_text_tsv'::regclass"
        ).fetchone()
        return list(row[0] or []) if row else []

    with PostgresStore(database) as store:
        assert "fastupdate=off" in options(store)
        store._conn.execute("ALTER INDEX failure_text_tsv SET (fastupdate = on)")
        _feed(store, 3)  # entries wait in the pending list now
    with PostgresStore(database) as store:
        assert "fastupdate=off" in options(store)
        pending = store._conn.execute(
            "SELECT gin_clean_pending_list('failure_text_tsv')"
        ).fetchone()
        assert pending == (0,)  # merged when it was turned off
        assert [r.run_id for r in store.similar_failures(["widget_factory"], None, 5)] == [
            "r0", "r1", "r2"
        ]

def test_commands_work_on_a_postgres_history(database: str, project: Path) -> None:
    history = ("--history", database)
    report = project / "report.json"
    first = aqe_process("run", "-w", "2", *history, "--json", str(report), cwd=project)
    assert first.returncode == 1, first.stderr
    assert PASSWORD not in report.read_text() and ":***@" in report.read_text()
    second = aqe_process("run", "-w", "1", cwd=project, env={"AQE_HISTORY": database})
    assert second.returncode == 1, second.stderr
    assert not (project / ".aqe" / "history.db").exists()
    outputs = [first.stdout + first.stderr, second.stdout + second.stderr]
    listed = aqe_process("history", *history, cwd=project)
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 2, listed.stdout
    for args in (
        ("flaky", "--all"),
        ("failures",),
        ("failures", "similar", "tests/test_many.py::test_fails"),
        ("quarantine", "list"),
        ("status",),
        ("list",),
    ):
        done = aqe_process(*args, cwd=project, env={"AQE_HISTORY_PATH": database})
        assert done.returncode in (0, 1), (args, done.stderr)
        assert "Traceback" not in done.stderr
        outputs.append(done.stdout + done.stderr)
    assert "ValueError" in outputs[3]  # failures: the cause
    assert "test_fails  (same cause)" in outputs[4]  # similar: the other run's failure
    assert all(PASSWORD not in text for text in outputs)
    # The Python API and the MCP tools open the same history (aqe._api, _mcp._fleet).
    assert len(aqe.history(cwd=project, history_path=database)) == 2
    causes = aqe.failure_causes(cwd=project, history_path=database).causes
    assert [c.tests for c in causes] == [("tests/test_many.py::test_fails",)]
    with psycopg.connect(database) as conn:
        commands = [row[0] for row in conn.execute("SELECT command FROM runs")]
    assert len(commands) == 2 and all(PASSWORD not in command for command in commands)


def _report(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text(encoding="utf-8"))
    return data


def test_four_writers_at_once_some_interrupted_lose_nothing(
    database: str, project: Path, tmp_path: Path
) -> None:
    reports: list[Path] = []
    for round_ in range(2):
        procs: list[tuple[subprocess.Popen[str], Path | None]] = []
        for i in range(4):
            report = tmp_path / f"r{round_}-{i}.json"
            mark = tmp_path / f"started-{round_}-{i}" if i % 2 else None
            extra = {"AQE_HISTORY_PATH": database, **({"PG_MARK": str(mark)} if mark else {})}
            proc = subprocess.Popen(
                [sys.executable, "-m", "aqe", "run", "-w", "1", "--json", str(report)],
                cwd=project, env=clean_env(extra), text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            procs.append((proc, mark))
            reports.append(report)
        try:
            for proc, mark in procs:
                if mark is None:
                    continue
                deadline = time.monotonic() + HANG_GUARD
                while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert mark.exists(), proc.communicate()
                proc.send_signal(signal.SIGINT)  # deterministic: six tests have finished
                Path(f"{mark}.release").touch()
            for proc, mark in procs:
                _out, err = proc.communicate(timeout=HANG_GUARD)
                assert proc.returncode == (2 if mark else 1), err
                assert "Traceback" not in err
        finally:
            for proc, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
    with psycopg.connect(database) as conn:
        duplicates = conn.execute(
            "SELECT count(*) FROM (SELECT run_id, nodeid, attempt FROM results"
            " GROUP BY run_id, nodeid, attempt HAVING count(*) > 1) AS d"
        ).fetchone()
        assert duplicates == (0,)
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (8,)
        for path in reports:
            report = _report(path)
            run = report["run"]
            assert isinstance(run, dict)
            tests = report["tests"]
            assert isinstance(tests, list)
            expected = sorted((t["nodeid"], t["attempt"], t["outcome"]) for t in tests)
            stored = sorted(
                conn.execute(
                    "SELECT nodeid, attempt, outcome FROM results WHERE run_id = %s",
                    (run["run_id"],),
                ).fetchall()
            )
            assert stored == [tuple(row) for row in expected]
            assert len(stored) >= 6  # an interrupted run too: six finished before SIGINT
            row = conn.execute(
                'SELECT "end" IS NOT NULL, exit_code, passed, failed FROM runs WHERE run_id = %s',
                (run["run_id"],),
            ).fetchone()
            outcomes = report["outcomes"]
            assert isinstance(outcomes, dict)
            assert row == (True, run["exit_code"], outcomes["passed"], outcomes["failed"])


def test_export_import_moves_a_history_and_flaky_agrees(
    database: str, tmp_path: Path, project: Path
) -> None:
    source = tmp_path / "source.db"
    with HistoryStore(source) as lite:
        _feed(lite, 8)
    history = ("--history",)
    exported = aqe_process("history", "export", str(tmp_path / "h.jsonl.gz"), *history,
                           str(source), cwd=project)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert "exported 8 runs" in exported.stdout
    copy = tmp_path / "copy.db"
    for target in (str(copy), database):
        for expected in ("imported 8 runs", "imported 0 runs"):  # twice: nothing added twice
            done = aqe_process("history", "import", str(tmp_path / "h.jsonl.gz"), "--history",
                               target, cwd=project)  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert expected in done.stdout and PASSWORD not in done.stdout
    verdicts = [
        aqe_process("flaky", "--all", "--json", "--history", where, cwd=project)
        for where in (str(source), str(copy), database)
    ]
    assert [v.returncode for v in verdicts] == [0, 0, 0], verdicts[2].stderr
    assert verdicts[0].stdout == verdicts[1].stdout == verdicts[2].stdout
    assert '"flaky"' in verdicts[0].stdout
    # And back: PostgreSQL to a new SQLite file, the same runs.
    back = tmp_path / "back.jsonl"
    assert aqe_process("history", "export", str(back), "--history", database,
                       cwd=project).returncode == 0  # fmt: skip
    assert len(back.read_text().splitlines()) == 9  # the header and 8 runs


@pytest.mark.parametrize(
    ("why", "exit_code", "words"),
    [
        ("password", 3, "refused the credentials"),
        ("unreachable", 3, "is not reachable"),
        ("missing", 3, "does not exist"),
        ("newer", 3, f"newer than the {SCHEMA_VERSION} this aqe knows"),
        ("malformed", 4, "is not a valid PostgreSQL URL"),
    ],
)
def test_a_bad_database_is_one_masked_line(
    pg: Cluster, database: str, project: Path, why: str, exit_code: int, words: str
) -> None:
    url = {
        "password": pg.url(database.rpartition("/")[2], password="wrong-" + PASSWORD),
        "unreachable": f"postgresql://aqe:{PASSWORD}@127.0.0.1:1/aqe",
        "missing": pg.url("no_such_db"),
        "newer": database,
        "malformed": f"postgresql://aqe:{PASSWORD}@127.0.0.1:{pg.port}/x?bogus_option=1",
    }[why]
    if why == "newer":
        PostgresStore(database).close()
        pg.sql("UPDATE aqe_schema SET version = 99", database.rpartition("/")[2])
    for args in (("run", "-w", "1", "--history", url), ("flaky", "--history", url)):
        started = time.monotonic()
        done = aqe_process(*args, cwd=project)
        took = time.monotonic() - started
        assert done.returncode == exit_code, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("aqe: error: "), done.stderr
        assert words in lines[0] and ":***@" in lines[0]
        assert PASSWORD not in done.stderr + done.stdout
        assert took < HANG_GUARD  # a guard only; connect_timeout is what bounds it


def test_credentials_from_pgpassword_or_a_pgpass_file(
    pg: Cluster, database: str, project: Path, tmp_path: Path
) -> None:
    bare = database.replace(f":{PASSWORD}@", "@")  # postgresql://aqe@127.0.0.1:PORT/db
    PostgresStore(database).close()
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg.port}:*:aqe:{PASSWORD}\n")
    pgpass.chmod(0o600)
    for env in ({"PGPASSWORD": PASSWORD}, {"PGPASSFILE": str(pgpass)}):
        done = aqe_process("history", "--history", bare, cwd=project, env=env)
        assert done.returncode == 0, done.stderr
        assert "no runs recorded yet in postgresql://aqe@127.0.0.1" in done.stdout


def test_a_server_lost_mid_run_is_one_line_and_the_reports_stand(
    pg: Cluster, database: str, project: Path, tmp_path: Path
) -> None:
    mark, report = tmp_path / "started", tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aqe", "run", "-w", "1", "--json", str(report)],
        cwd=project, env=clean_env({"AQE_HISTORY_PATH": database, "PG_MARK": str(mark)}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert mark.exists(), proc.communicate()
        pg.stop()  # six tests finished: the server goes away under the run
        Path(f"{mark}.release").touch()
        _out, err = proc.communicate(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        pg.start()
    assert proc.returncode == 3, err
    assert "Traceback" not in err and PASSWORD not in err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("aqe: error: history database postgresql://aqe:***@127.0.0.1")
    ), err
    tests = _report(report)["tests"]
    assert isinstance(tests, list) and len(tests) == 13  # the JSON report has every test
