"""The history store: every run and every test result, in one SQLite file.

Why SQLite from the standard library: the history must survive crashes, be
shared by concurrent ``aqe run`` invocations in one project and answer "how long
does each of these 10,000 tests usually take?" in milliseconds, without adding a
dependency. WAL mode lets readers proceed while one process writes; writers take
the lock up front (``BEGIN IMMEDIATE``) and wait up to 30 s for each other, so two
runs interleave their batches instead of failing. Results are written a batch per
transaction because a commit per test would make the store the bottleneck.

Why every public method wraps ``sqlite3`` errors: callers (and users) should see
one :class:`~aqe._exceptions.StoreError` line naming the file and a remedy, never
a driver traceback. The store is not fork-safe: open it in the coordinator only.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import cast

from aqe._model import OUTCOMES, RunRecord, TestResult
from aqe._paths import write_ignore
from aqe._store._dump import FAILURE_COLUMNS, Row, RunDump
from aqe._store._schema import open_database, store_error, translate_error
from aqe._store._tables import SQLITE, columns_by_table

__all__ = ["DurationEstimate", "HistoryRow", "HistoryStore", "RunRow", "SimilarRow"]

#: Beyond this many node ids, filter in Python instead of binding an ``IN`` list
#: (older SQLite builds allow only 999 bound parameters per statement).
_MAX_BOUND_IDS = 900

_PHASES = ("setup", "call", "teardown")

#: Terms of a failure a similarity search ranks on: its rarest in the index, leaving
#: out terms in more than _COMMON failures (they tell little and cost the most).
_QUERY_TERMS = 30
_COMMON = 2000

_RESULT_COLUMNS = (
    "run_id, nodeid, file, line, outcome, attempt, worker, when_, setup, call, teardown,"
    " duration, error_type, message, traceback, output_size, start, stop, tier, quarantined"
)

_RUN_COLUMNS = (
    'run_id, start, "end", git_commit, git_dirty, workers, exit_code, passed, failed,'
    " skipped, xfailed, xpassed, error, crashed, timeout, flaky, tail_idle, command,"
    " root, code_id"
)


@dataclass(frozen=True, slots=True)
class DurationEstimate:
    """Median seconds per phase over a test's last few non-skipped results."""

    nodeid: str
    setup: float
    call: float
    teardown: float
    total: float
    samples: int


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One attempt of one test, with its run's start and commit."""

    run_id: str
    start: float
    git_commit: str | None
    outcome: str
    attempt: int
    duration: float
    tier: str
    message: str | None


@dataclass(frozen=True, slots=True)
class SimilarRow:
    """A past failure found similar, with its BM25 relevance (higher is closer)."""

    run_id: str
    nodeid: str
    attempt: int
    cause_key: str
    cause: str
    score: float
    start: float | None
    git_commit: str | None


@dataclass(frozen=True, slots=True)
class RunRow:
    """One row of the ``runs`` table, for listings and comparisons."""

    run_id: str
    start: float
    end: float | None
    git_commit: str | None
    git_dirty: bool | None
    workers: int
    exit_code: int | None
    counts: dict[str, int]
    tail_idle: float | None
    command: list[str]
    root: str
    #: What code the run ran: ``git:<commit>`` on a clean tree, else a hash of the files.
    code_id: str | None = None


class HistoryStore:
    """A connection to one history database; use as a context manager."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._prepare_directory()
        self._conn = open_database(self.path)

    @staticmethod
    def default_path(root: Path) -> Path:
        """Where a project's history lives: ``<root>/.aqe/history.db``."""
        return root / ".aqe" / "history.db"

    def _prepare_directory(self) -> None:
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            if parent.name == ".aqe":
                write_ignore(parent)  # aqe's files must never make the git tree dirty
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise store_error(
                self.path,
                f"cannot be created in {parent} ({reason})",
                "check the directory's permissions or run with --no-history",
            ) from exc

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass  # only a planner hint; closing matters more
            finally:
                conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _guard(self, action: str) -> Iterator[sqlite3.Connection]:
        """Serialise threads and turn ``sqlite3`` errors into StoreError."""
        with self._lock:
            if self._conn is None:
                raise store_error(self.path, "is closed", "open a new HistoryStore")
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise translate_error(self.path, exc, action) from exc

    @contextmanager
    def _write(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; the lock is taken up front so waits are orderly."""
        with self._guard(action) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------

    def begin_run(self, run: RunRecord) -> None:
        """Record that ``run`` started; its end and counts stay empty until finished."""
        with self._write("recording the start of a run") as conn:
            _insert_run(conn, run, "INSERT")

    def add_results(self, run_id: str, results: Sequence[TestResult]) -> None:
        """Append a batch of results in a single transaction."""
        if not results:
            return
        rows = [_result_row(run_id, result) for result in results]
        placeholders = ", ".join("?" * len(rows[0]))
        with self._write("recording test results") as conn:
            conn.executemany(
                f"INSERT INTO results ({_RESULT_COLUMNS}) VALUES ({placeholders})", rows
            )

    def add_failure_texts(
        self, run_id: str, rows: Sequence[tuple[str, int, str, str, str]]
    ) -> None:
        """Index failures for similarity search: (node id, attempt, cause key, cause, text)."""
        if not rows or not self.has_failure_index():
            return
        with self._write("indexing failures") as conn:
            conn.executemany(
                "INSERT INTO failure_text (body, run_id, nodeid, attempt, cause, label)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (text, run_id, nodeid, attempt, key, cause)
                    for nodeid, attempt, key, cause, text in rows
                ],
            )

    def has_failure_index(self) -> bool:
        with self._guard("looking for the failure index") as conn:
            return bool(
                conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'failure_vocab'").fetchone()
            )

    def similar_failures(
        self, words: Sequence[str], exclude_run: str | None, limit: int
    ) -> list[SimilarRow]:
        """Indexed failures ranked by BM25 against ``words``, best first."""
        # As the index's tokenizer cuts text: identifiers whole, other marks apart.
        terms = list(dict.fromkeys(re.findall(r"\w+", " ".join(words).lower())))[:200]
        if not terms or not self.has_failure_index():
            return []
        with self._guard("searching similar failures") as conn:
            # Rank on the rarest terms only: they tell failures apart, and a term in
            # every other failure would make the search score half the index.
            marks = ", ".join("?" * len(terms))
            counts = dict(
                conn.execute(
                    f"SELECT term, doc FROM failure_vocab WHERE term IN ({marks})", terms
                ).fetchall()
            )
            present = sorted((t for t in terms if t in counts), key=lambda t: counts[t])
            if not present:
                return []
            chosen = [t for t in present if counts[t] <= _COMMON][:_QUERY_TERMS] or present[:3]
            query = " OR ".join('"' + t.replace('"', '""') + '"' for t in chosen)
            found = conn.execute(
                "SELECT run_id, nodeid, attempt, cause, label, rank FROM failure_text"
                " WHERE failure_text MATCH ? AND run_id IS NOT ? ORDER BY rank LIMIT ?",
                (query, exclude_run, limit),
            ).fetchall()
            runs = {
                run_id: (start, commit)
                for run_id, start, commit in conn.execute(
                    "SELECT run_id, start, git_commit FROM runs WHERE run_id IN"
                    f" ({', '.join('?' * len(found))})",
                    [row[0] for row in found],
                )
            }
            rows = [(*row, *runs.get(row[0], (None, None))) for row in found]
        return [
            SimilarRow(
                run_id=str(run_id),
                nodeid=str(nodeid),
                attempt=int(attempt),
                cause_key=str(key),
                cause=str(label),
                score=round(-float(rank), 4),
                start=None if start is None else float(start),
                git_commit=commit,
            )
            for run_id, nodeid, attempt, key, label, rank, start, commit in rows
        ]

    def add_collect_times(self, run_id: str, times: Mapping[str, float]) -> None:
        """Record how many seconds collecting each file took in ``run_id``."""
        if not times:
            return
        with self._write("recording collection times") as conn:
            conn.executemany(
                "INSERT INTO collect_times (run_id, file, seconds) VALUES (?, ?, ?)",
                [(run_id, file, float(seconds)) for file, seconds in times.items()],
            )

    def finish_run(self, run: RunRecord) -> None:
        """Store the end time, exit code, outcome counts and tail idleness of ``run``."""
        counts = run.final_counts()
        tail_idle = max(run.tail_idle.values(), default=None)
        values = (
            run.end,
            run.exit_code,
            *(counts[name] for name in _COUNT_NAMES),
            tail_idle,
            run.run_id,
        )
        with self._write("recording the end of a run") as conn:
            _insert_run(conn, run, "INSERT OR IGNORE")  # in case begin_run never ran
            conn.execute(
                'UPDATE runs SET "end" = ?, exit_code = ?, passed = ?, failed = ?, skipped = ?,'
                " xfailed = ?, xpassed = ?, error = ?, crashed = ?, timeout = ?, flaky = ?,"
                " tail_idle = ? WHERE run_id = ?",
                values,
            )

    # -- moving a history (aqe history export/import) ------------------------------

    def export_runs(self) -> Iterator[RunDump]:
        """Every run, oldest first, with what was recorded under its id."""
        with self._guard("listing runs to export") as conn:
            run_ids = [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY start, rowid")]
        for run_id in run_ids:
            with self._guard("exporting a run") as conn:
                yield self._dump(conn, run_id)

    def _dump(self, conn: sqlite3.Connection, run_id: str) -> RunDump:
        def rows(table: str, columns: Sequence[str], where: str = "run_id = ?") -> list[Row]:
            names = ", ".join(SQLITE.quote(c) for c in columns)
            found = conn.execute(
                f"SELECT {names} FROM {table} WHERE {where} ORDER BY rowid", (run_id,)
            )
            return [dict(zip(columns, row, strict=True)) for row in found]

        tables = columns_by_table()
        failures = rows("failure_text", FAILURE_COLUMNS) if self._indexed(conn) else []
        return RunDump(
            run=rows("runs", tables["runs"])[0],
            results=rows("results", tables["results"]),
            collect_times=rows("collect_times", tables["collect_times"]),
            failures=failures,
        )

    def import_run(self, dump: RunDump) -> bool:
        """Add ``dump`` in one transaction unless its run id is already here (then
        nothing changes and False is returned): importing twice adds nothing twice."""
        with self._write("importing a run") as conn:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (dump.run_id,)).fetchone():
                return False
            _insert_rows(conn, "runs", [dump.run])
            _insert_rows(conn, "results", dump.results)
            _insert_rows(conn, "collect_times", dump.collect_times)
            if dump.failures and self._indexed(conn):
                _insert_rows(
                    conn, "failure_text", [{**f, "run_id": dump.run_id} for f in dump.failures]
                )
        return True

    @staticmethod
    def _indexed(conn: sqlite3.Connection) -> bool:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'failure_vocab'")
        return found.fetchone() is not None

    # -- reading ---------------------------------------------------------------------

    def estimates(
        self, nodeids: Iterable[str] | None = None, window: int = 5
    ) -> dict[str, DurationEstimate]:
        """Median phase durations over each test's last ``window`` non-skipped results.

        One query: the outer scan visits each distinct node id once (a covering
        index scan) and the correlated subquery walks that id's index entries
        newest first, stopping after ``window`` rows, so the cost tracks the
        number of tests rather than the length of the history.
        """
        wanted = None if nodeids is None else set(nodeids)
        if wanted is not None and not wanted:
            return {}
        params: list[object] = []
        ids = "SELECT DISTINCT nodeid FROM results"
        if wanted is not None and len(wanted) <= _MAX_BOUND_IDS:
            ids += f" WHERE nodeid IN ({', '.join('?' * len(wanted))})"
            params.extend(sorted(wanted))
        params.append(max(window, 1))
        query = (
            f"SELECT r.nodeid, r.setup, r.call, r.teardown, r.duration FROM ({ids}) AS d"
            " JOIN results AS r ON r.rowid IN (SELECT x.rowid FROM results AS x"
            "  WHERE x.nodeid = d.nodeid AND x.outcome != 'skipped'"
            "  ORDER BY x.rowid DESC LIMIT ?)"
        )
        samples: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
        with self._guard("estimating test durations") as conn:
            for nodeid, setup, call, teardown, duration in conn.execute(query, params):
                if wanted is None or nodeid in wanted:
                    samples[nodeid].append((setup or 0.0, call or 0.0, teardown or 0.0, duration))
        return estimates_from(samples)

    def collect_estimates(self, window: int = 5) -> dict[str, float]:
        """Median seconds to collect each file, over its last ``window`` collections."""
        query = (
            "SELECT c.file, c.seconds FROM (SELECT DISTINCT file FROM collect_times) AS d"
            " JOIN collect_times AS c ON c.rowid IN (SELECT x.rowid FROM collect_times AS x"
            "  WHERE x.file = d.file ORDER BY x.rowid DESC LIMIT ?)"
        )
        seconds: dict[str, list[float]] = defaultdict(list)
        with self._guard("estimating collection times") as conn:
            for file, value in conn.execute(query, (max(window, 1),)):
                seconds[file].append(value)
        return {file: _median(values) for file, values in seconds.items()}

    def recent_runs(self, limit: int = 20) -> list[RunRow]:
        """The latest ``limit`` runs, newest first."""
        with self._guard("listing recent runs") as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY start DESC, rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_run_row(row) for row in rows]

    def results_for_run(self, run_id: str) -> list[TestResult]:
        """Every result of ``run_id`` in the order recorded (captured output is not kept)."""
        with self._guard("reading the results of a run") as conn:
            rows = conn.execute(
                f"SELECT {_RESULT_COLUMNS} FROM results WHERE run_id = ? ORDER BY rowid",
                (run_id,),
            ).fetchall()
        return [result_from_row(row, self.path) for row in rows]

    def test_history(
        self, nodeid: str, limit: int = 20, offset: int = 0
    ) -> tuple[list[HistoryRow], int, dict[str, int]]:
        """Attempts of one test, newest first, with the number of runs that ran it and
        their final outcomes (the last attempt of each run)."""
        with self._guard("reading a test's history") as conn:
            rows = conn.execute(
                "SELECT r.run_id, u.start, u.git_commit, r.outcome, r.attempt, r.duration,"
                " r.tier, r.message FROM results AS r JOIN runs AS u ON u.run_id = r.run_id"
                " WHERE r.nodeid = ? ORDER BY u.start DESC, r.attempt DESC LIMIT ? OFFSET ?",
                (nodeid, limit, offset),
            ).fetchall()
            finals = conn.execute(
                "SELECT r.outcome FROM results AS r WHERE r.nodeid = ? AND r.attempt ="
                " (SELECT MAX(x.attempt) FROM results AS x"
                "  WHERE x.nodeid = r.nodeid AND x.run_id = r.run_id)",
                (nodeid,),
            ).fetchall()
        return history_rows(rows, finals)

    def known_nodeids(self) -> set[str]:
        """Every node id the history has a result for."""
        with self._guard("listing known tests") as conn:
            return {row[0] for row in conn.execute("SELECT DISTINCT nodeid FROM results")}

    def attempts_by_run(self, window: int) -> tuple[list[RunRow], dict[str, dict[str, list[str]]]]:
        """The last ``window`` finished runs, oldest first, and per test the outcomes
        of its attempts in each of them (``{nodeid: {run_id: [outcome, ...]}}``)."""
        with self._guard("reading recent outcomes") as conn:
            rows = conn.execute(
                f'SELECT {_RUN_COLUMNS} FROM runs WHERE "end" IS NOT NULL'
                " ORDER BY start DESC, rowid DESC LIMIT ?",
                (max(window, 1),),
            ).fetchall()
            runs = [_run_row(row) for row in reversed(rows)]
            attempts: dict[str, dict[str, list[str]]] = defaultdict(dict)
            if runs:
                marks = ", ".join("?" * len(runs))
                query = (
                    "SELECT run_id, nodeid, outcome FROM results"
                    f" WHERE run_id IN ({marks}) ORDER BY rowid"
                )
                for run_id, nodeid, outcome in conn.execute(query, [r.run_id for r in runs]):
                    attempts[nodeid].setdefault(run_id, []).append(outcome)
        return runs, dict(attempts)


#: Count columns of ``runs``, in the order the SQL above lists them.
_COUNT_NAMES = (
    "passed", "failed", "skipped", "xfailed", "xpassed", "error", "crashed", "timeout", "flaky"
)  # fmt: skip


def _median(values: list[float]) -> float:
    """``statistics.median`` without its generality: this runs 40,000 times per plan."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def _insert_run(conn: sqlite3.Connection, run: RunRecord, verb: str) -> None:
    conn.execute(
        f"{verb} INTO runs (run_id, start, git_commit, git_dirty, command, root, workers,"
        " code_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run.run_id,
            run.start,
            run.git_commit,
            None if run.git_dirty is None else int(run.git_dirty),
            json.dumps(run.command),
            run.root,
            run.workers,
            run.code_id,
        ),
    )


def _result_row(run_id: str, result: TestResult) -> tuple[object, ...]:
    phases = result.phases
    return (
        run_id,
        result.nodeid,
        result.file,
        result.line,
        result.outcome,
        result.attempt,
        result.worker,
        result.when,
        *(phases.get(name) for name in _PHASES),
        result.duration,
        result.error_type,
        result.message,
        result.traceback,
        result.output_size,
        result.start,
        result.stop,
        result.tier,
        int(result.quarantined),
    )


def _run_row(row: tuple[object, ...]) -> RunRow:
    (run_id, start, end, commit, dirty, workers, exit_code, *rest) = row
    counts = {
        name: int(cast(int, value or 0)) for name, value in zip(_COUNT_NAMES, rest[:9], strict=True)
    }
    tail_idle, command, root, code_id = rest[9:]
    return RunRow(
        run_id=str(run_id),
        start=cast(float, start),
        end=cast("float | None", end),
        git_commit=cast("str | None", commit),
        git_dirty=None if dirty is None else bool(dirty),
        workers=cast(int, workers),
        exit_code=cast("int | None", exit_code),
        counts=counts,
        tail_idle=cast("float | None", tail_idle),
        command=[str(part) for part in json.loads(cast(str, command))],
        root=str(root),
        code_id=cast("str | None", code_id),
    )


def result_from_row(row: Sequence[object], location: Path | str) -> TestResult:
    """A ``results`` row (``_RESULT_COLUMNS`` order) as a TestResult; ``location``
    names the database in the error about an unknown outcome."""
    (_, nodeid, file, line, outcome, attempt, worker, when, *phase_values) = row[:11]
    error_type, message, traceback, _size, start, stop, tier, quarantined = row[12:]
    if outcome not in OUTCOMES:
        raise store_error(
            location,
            f"holds an unknown outcome {outcome!r} for {nodeid}",
            "move it aside or run with --no-history",
        )
    return TestResult(
        nodeid=str(nodeid),
        file=str(file),
        line=cast("int | None", line),
        outcome=outcome,
        phases={
            name: float(cast(float, value))
            for name, value in zip(_PHASES, phase_values, strict=True)
            if value is not None
        },
        worker=cast(int, worker),
        attempt=cast(int, attempt),
        when=cast("str | None", when),
        error_type=cast("str | None", error_type),
        message=cast("str | None", message),
        traceback=cast("str | None", traceback),
        start=cast(float, start),
        stop=cast(float, stop),
        tier=str(tier or "hot"),
        quarantined=bool(quarantined),
    )


def _insert_rows(conn: sqlite3.Connection, table: str, rows: Sequence[Row]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    names = ", ".join(SQLITE.quote(c) for c in columns)
    marks = ", ".join("?" * len(columns))
    conn.executemany(
        f"INSERT INTO {table} ({names}) VALUES ({marks})", [[r[c] for c in columns] for r in rows]
    )


def estimates_from(
    samples: Mapping[str, list[tuple[float, float, float, float]]],
) -> dict[str, DurationEstimate]:
    """Median (setup, call, teardown, total) of each test's samples."""
    return {
        nodeid: DurationEstimate(
            nodeid=nodeid,
            setup=_median([row[0] for row in rows]),
            call=_median([row[1] for row in rows]),
            teardown=_median([row[2] for row in rows]),
            total=_median([row[3] for row in rows]),
            samples=len(rows),
        )
        for nodeid, rows in samples.items()
    }


def history_rows(
    rows: Sequence[Sequence[object]], finals: Sequence[Sequence[object]]
) -> tuple[list[HistoryRow], int, dict[str, int]]:
    """``test_history``'s answer from its two queries' rows (attempts; final outcomes)."""
    counts: dict[str, int] = {}
    for (outcome,) in finals:
        counts[str(outcome)] = counts.get(str(outcome), 0) + 1
    entries = [
        HistoryRow(
            run_id=str(run_id),
            start=float(cast(float, start)),
            git_commit=cast("str | None", commit),
            outcome=str(outcome),
            attempt=int(cast(int, attempt)),
            duration=float(cast(float, duration)),
            tier=str(tier or "hot"),
            message=cast("str | None", message),
        )
        for run_id, start, commit, outcome, attempt, duration, tier, message in rows
    ]
    return entries, len(finals), counts
