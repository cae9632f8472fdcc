"""The history in PostgreSQL: one database that every developer, CI job and node writes to.

Why PostgreSQL next to SQLite: a file on one disk cannot be shared by machines. The
tables, columns and migrations are SQLite's (rendered from ``_tables.STEPS``), plus a
``seq`` column standing in for SQLite's ``rowid`` (newest-first estimates need insertion
order) and an ``aqe_schema`` row holding the version that SQLite keeps in
``PRAGMA user_version``. Migrations run in one transaction under an advisory lock, so
many processes opening a new database at once migrate it exactly once.

Why each batch is one transaction and a run row is inserted ``ON CONFLICT DO NOTHING``:
concurrent writers then never see or leave half a batch, an interrupted run keeps every
batch it committed, and a run is recorded once however its start and finish arrive.

Credentials come from the URL, ``PG*`` variables or ``~/.pgpass`` (libpq reads them);
every message names the database by its URL with the password masked, and fails within
:data:`CONNECT_TIMEOUT_S` rather than hanging on an unreachable host.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aqe._exceptions import StoreError, UsageError
from aqe._model import RunRecord, TestResult
from aqe._store._dump import FAILURE_COLUMNS, Row, RunDump
from aqe._store._schema import store_error
from aqe._store._select import masked
from aqe._store._sqlite import (
    _COMMON,
    _COUNT_NAMES,
    _QUERY_TERMS,
    _RESULT_COLUMNS,
    _RUN_COLUMNS,
    DurationEstimate,
    HistoryRow,
    RunRow,
    SimilarRow,
    _median,
    _result_row,
    _run_row,
    estimates_from,
    history_rows,
    result_from_row,
)
from aqe._store._tables import POSTGRES, STEPS, columns_by_table, render

if TYPE_CHECKING:
    import psycopg

__all__ = ["CONNECT_TIMEOUT_S", "PostgresStore"]

#: Seconds to wait for the server before saying it is unreachable (unless the URL says).
CONNECT_TIMEOUT_S = 5

SCHEMA_VERSION = len(STEPS)

#: Migrations take this advisory lock (any constant unlikely to clash: "aqe" in ASCII).
_LOCK_KEY = 0x617165

_ESCAPE = "run with --no-history"

#: The failure index: the text, its ``simple`` (no stemming, no stop words) vector, and
#: per-term document counts so that a query ranks on its rarest terms, as SQLite's does.
#: The GIN index without ``fastupdate``: with it, new entries wait in a pending list that
#: every search scans in full until a vacuum merges it (10 ms a search at 5,000 failures
#: against 0.1 ms), and a history is searched right after the run that wrote it.
_FAILURE_INDEX = (
    "CREATE TABLE IF NOT EXISTS failure_text (seq BIGINT GENERATED ALWAYS AS IDENTITY,"
    " run_id TEXT NOT NULL, nodeid TEXT NOT NULL, attempt BIGINT NOT NULL,"
    " cause TEXT NOT NULL, label TEXT NOT NULL, body TEXT NOT NULL,"
    " tsv TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED)",
    "CREATE INDEX IF NOT EXISTS failure_text_tsv ON failure_text USING GIN (tsv)"
    " WITH (fastupdate = off)",
    "CREATE INDEX IF NOT EXISTS failure_text_run_id ON failure_text (run_id)",
    "CREATE TABLE IF NOT EXISTS failure_vocab (term TEXT PRIMARY KEY, doc BIGINT NOT NULL)",
)


#: The similar-failure search, one statement (one round trip), prepared on the server
#: (a long-lived process such as the MCP server plans it once). The terms are chosen as
#: the SQLite store chooses them: the rarest, leaving out those in more than _COMMON
#: failures unless nothing else is left (then the three rarest).
SIMILAR_SQL = (
    "WITH present AS (SELECT v.term, row_number() OVER (ORDER BY v.doc, v.term)"
    "  AS rn, v.doc <= %(common)s AS rare FROM failure_vocab AS v WHERE v.term ="
    "  ANY(tsvector_to_array(to_tsvector('simple', %(text)s)))),"
    " chosen AS (SELECT term FROM present WHERE rn <= CASE WHEN"
    "  (SELECT count(*) FROM present WHERE rare) > 0"
    "  THEN LEAST(%(most)s, (SELECT count(*) FROM present WHERE rare)) ELSE 3 END),"
    # Each term quoted by plainto_tsquery itself, joined with OR.
    " q AS (SELECT string_agg(plainto_tsquery('simple', term)::text, ' | ')"
    "  ::tsquery AS query FROM chosen)"
    # The best ``limit`` first (the GIN index finds the matches), then their
    # runs: not a run lookup for every match.
    " SELECT b.run_id, b.nodeid, b.attempt, b.cause, b.label, b.score, u.start,"
    " u.git_commit FROM q CROSS JOIN LATERAL (SELECT f.seq, f.run_id, f.nodeid,"
    "  f.attempt, f.cause, f.label, ts_rank(f.tsv, q.query) AS score"
    "  FROM failure_text AS f WHERE f.tsv @@ q.query"
    "  AND f.run_id IS DISTINCT FROM %(exclude)s"
    "  ORDER BY score DESC, f.seq LIMIT %(limit)s) AS b"
    " LEFT JOIN runs AS u ON u.run_id = b.run_id"
    " WHERE q.query IS NOT NULL ORDER BY b.score DESC, b.seq"
)


class PostgresStore:
    """A connection to one PostgreSQL history database; use as a context manager."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.location = masked(url)
        self._secret = urlsplit(url).password if "://" in url else None
        self._lock = threading.Lock()
        self._conn = self._connect()
        try:
            self._migrate()
        except BaseException:
            self._conn.close()
            raise

    # -- connecting ------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            import psycopg
        except ImportError:
            raise StoreError(
                f"history database {self.location} needs psycopg;"
                " pip install 'aqe[postgres]' or run with --no-history"
            ) from None
        options: dict[str, Any] = {"autocommit": True, "application_name": "aqe"}
        if "connect_timeout" not in self.url:
            options["connect_timeout"] = CONNECT_TIMEOUT_S
        try:
            return psycopg.connect(self.url, **options)
        except psycopg.ProgrammingError as exc:  # a malformed URL or option
            raise UsageError(
                f"history URL {self.location} is not a valid PostgreSQL URL"
                f" ({self._clean(exc)}); fix history_path / --history"
            ) from None
        except psycopg.Error as exc:
            raise self._connect_error(exc) from None

    def _clean(self, exc: BaseException) -> str:
        """The first line of a driver error, the password masked if it appears."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return text.replace(self.url, self.location)

    def _connect_error(self, exc: BaseException) -> StoreError:
        detail = self._clean(exc)
        lowered = detail.lower()
        if "password" in lowered or "authentication" in lowered:
            problem = f"refused the credentials ({detail})"
            remedy = "check the user and password in the URL, PGPASSWORD or ~/.pgpass"
        elif "does not exist" in lowered:
            problem = f"does not exist ({detail})"
            remedy = "create it (createdb) or fix the URL"
        else:
            problem = f"is not reachable ({detail})"
            remedy = "check the host and port and that the server runs"
        return store_error(self.location, problem, f"{remedy}, or {_ESCAPE}")

    def _migrate(self) -> None:
        """Bring the tables to :data:`SCHEMA_VERSION` (once, under an advisory lock)."""
        with self._guard("opening it") as conn:
            if self._version(conn) == SCHEMA_VERSION:
                self._tune_index(conn)
                return
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                conn.execute("CREATE TABLE IF NOT EXISTS aqe_schema (version INTEGER NOT NULL)")
                version = self._version(conn) or 0
                if version == 0:
                    self._refuse_foreign(conn)
                for step in range(version, SCHEMA_VERSION):
                    for statement in render(STEPS[step], POSTGRES):
                        conn.execute(statement)
                conn.execute("DELETE FROM aqe_schema")
                conn.execute("INSERT INTO aqe_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
                for statement in _FAILURE_INDEX:
                    conn.execute(statement)

    def _tune_index(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        """A database made before the index lost ``fastupdate``: turn it off and merge
        its pending list (once, under the migrations' lock)."""
        row = conn.execute(
            "SELECT reloptions FROM pg_class WHERE oid = to_regclass('failure_text_tsv')"
        ).fetchone()
        if row is None or "fastupdate=off" in (row[0] or []):
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute("ALTER INDEX failure_text_tsv SET (fastupdate = off)")
            conn.execute("SELECT gin_clean_pending_list('failure_text_tsv')")

    def _version(self, conn: psycopg.Connection[tuple[Any, ...]]) -> int | None:
        """The stamped schema version; None before the first migration."""
        if conn.execute("SELECT to_regclass('aqe_schema')").fetchone() in (None, (None,)):
            return None
        row = conn.execute("SELECT max(version) FROM aqe_schema").fetchone()
        version = None if row is None or row[0] is None else int(row[0])
        if version is not None and version > SCHEMA_VERSION:
            raise store_error(
                self.location,
                f"has schema version {version}, newer than the {SCHEMA_VERSION} this aqe knows"
                " (it was written by a newer aqe)",
                f"upgrade aqe, use another database or {_ESCAPE}",
            )
        return version

    def _refuse_foreign(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        if conn.execute("SELECT to_regclass('runs')").fetchone() not in (None, (None,)):
            raise store_error(
                self.location,
                "is not an aqe history database (it has a 'runs' table and no schema version)",
                f"point aqe at another database or schema, or {_ESCAPE}",
            )

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is not None:
            conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _guard(self, action: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """Serialise threads and turn driver errors into one StoreError line."""
        import psycopg

        with self._lock:
            if self._conn is None:
                raise store_error(self.location, "is closed", "open a new store")
            try:
                yield self._conn
            except psycopg.Error as exc:
                if isinstance(exc, psycopg.OperationalError) and self._conn.broken:
                    raise self._connect_error(exc) from None
                raise store_error(
                    self.location, f"failed while {action} ({self._clean(exc)})", _ESCAPE
                ) from None

    @contextmanager
    def _write(self, action: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """One transaction: committed whole or not at all."""
        with self._guard(action) as conn, conn.transaction():
            yield conn

    # -- writing ---------------------------------------------------------------------

    def begin_run(self, run: RunRecord) -> None:
        with self._write("recording the start of a run") as conn:
            _insert_run(conn, run)

    def add_results(self, run_id: str, results: Sequence[TestResult]) -> None:
        if not results:
            return
        rows = [_result_row(run_id, result) for result in results]
        marks = ", ".join(["%s"] * len(rows[0]))
        with self._write("recording test results") as conn, conn.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO results ({_RESULT_COLUMNS}) VALUES ({marks})",
                rows,
            )

    def add_failure_texts(
        self, run_id: str, rows: Sequence[tuple[str, int, str, str, str]]
    ) -> None:
        if not rows:
            return
        failures: list[Row] = [
            {"nodeid": n, "attempt": a, "cause": k, "label": c, "body": t} for n, a, k, c, t in rows
        ]
        with self._write("indexing failures") as conn:
            _index_failures(conn, run_id, failures)

    def add_collect_times(self, run_id: str, times: Mapping[str, float]) -> None:
        if not times:
            return
        with self._write("recording collection times") as conn, conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO collect_times (run_id, file, seconds) VALUES (%s, %s, %s)",
                [(run_id, file, float(seconds)) for file, seconds in times.items()],
            )

    def finish_run(self, run: RunRecord) -> None:
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
            _insert_run(conn, run)  # in case begin_run never ran
            conn.execute(
                'UPDATE runs SET "end" = %s, exit_code = %s, passed = %s, failed = %s,'
                " skipped = %s, xfailed = %s, xpassed = %s, error = %s, crashed = %s,"
                " timeout = %s, flaky = %s, tail_idle = %s WHERE run_id = %s",
                values,
            )

    # -- reading ---------------------------------------------------------------------

    def estimates(
        self, nodeids: Iterable[str] | None = None, window: int = 5
    ) -> dict[str, DurationEstimate]:
        """Median phase durations over each test's last ``window`` non-skipped results."""
        wanted = None if nodeids is None else sorted(set(nodeids))
        if wanted is not None and not wanted:
            return {}
        where = "" if wanted is None else " AND nodeid = ANY(%s)"
        params: list[object] = [] if wanted is None else [wanted]
        query = (
            "SELECT nodeid, setup, call, teardown, duration FROM (SELECT nodeid, setup, call,"
            " teardown, duration, row_number() OVER (PARTITION BY nodeid ORDER BY seq DESC)"
            f" AS n FROM results WHERE outcome != 'skipped'{where}) AS r WHERE n <= %s"
        )
        samples: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
        with self._guard("estimating test durations") as conn:
            for nodeid, setup, call, teardown, duration in conn.execute(
                query,
                [*params, max(window, 1)],
            ):
                samples[nodeid].append((setup or 0.0, call or 0.0, teardown or 0.0, duration))
        return estimates_from(samples)

    def collect_estimates(self, window: int = 5) -> dict[str, float]:
        query = (
            "SELECT file, seconds FROM (SELECT file, seconds, row_number() OVER"
            " (PARTITION BY file ORDER BY seq DESC) AS n FROM collect_times) AS c"
            " WHERE n <= %s"
        )
        seconds: dict[str, list[float]] = defaultdict(list)
        with self._guard("estimating collection times") as conn:
            for file, value in conn.execute(query, (max(window, 1),)):
                seconds[file].append(value)
        return {file: _median(values) for file, values in seconds.items()}

    def recent_runs(self, limit: int = 20) -> list[RunRow]:
        with self._guard("listing recent runs") as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY start DESC, seq DESC LIMIT %s",
                (limit,),
            ).fetchall()
        return [_run_row(row) for row in rows]

    def results_for_run(self, run_id: str) -> list[TestResult]:
        with self._guard("reading the results of a run") as conn:
            rows = conn.execute(
                f"SELECT {_RESULT_COLUMNS} FROM results WHERE run_id = %s ORDER BY seq",
                (run_id,),
            ).fetchall()
        return [result_from_row(row, self.location) for row in rows]

    def test_history(
        self, nodeid: str, limit: int = 20, offset: int = 0
    ) -> tuple[list[HistoryRow], int, dict[str, int]]:
        with self._guard("reading a test's history") as conn:
            rows = conn.execute(
                "SELECT r.run_id, u.start, u.git_commit, r.outcome, r.attempt, r.duration,"
                " r.tier, r.message FROM results AS r JOIN runs AS u ON u.run_id = r.run_id"
                " WHERE r.nodeid = %s ORDER BY u.start DESC, r.attempt DESC LIMIT %s OFFSET %s",
                (nodeid, limit, offset),
            ).fetchall()
            finals = conn.execute(
                "SELECT r.outcome FROM results AS r WHERE r.nodeid = %s AND r.attempt ="
                " (SELECT MAX(x.attempt) FROM results AS x"
                "  WHERE x.nodeid = r.nodeid AND x.run_id = r.run_id)",
                (nodeid,),
            ).fetchall()
        return history_rows(rows, finals)

    def known_nodeids(self) -> set[str]:
        with self._guard("listing known tests") as conn:
            return {row[0] for row in conn.execute("SELECT DISTINCT nodeid FROM results")}

    def attempts_by_run(self, window: int) -> tuple[list[RunRow], dict[str, dict[str, list[str]]]]:
        with self._guard("reading recent outcomes") as conn:
            rows = conn.execute(
                f'SELECT {_RUN_COLUMNS} FROM runs WHERE "end" IS NOT NULL'
                " ORDER BY start DESC, seq DESC LIMIT %s",
                (max(window, 1),),
            ).fetchall()
            runs = [_run_row(row) for row in reversed(rows)]
            attempts: dict[str, dict[str, list[str]]] = defaultdict(dict)
            if runs:
                found = conn.execute(
                    "SELECT run_id, nodeid, outcome FROM results WHERE run_id = ANY(%s)"
                    " ORDER BY seq",
                    ([r.run_id for r in runs],),
                )
                for run_id, nodeid, outcome in found:
                    attempts[nodeid].setdefault(run_id, []).append(outcome)
        return runs, dict(attempts)

    def has_failure_index(self) -> bool:
        return True  # made with the schema; PostgreSQL's full-text search is built in

    def similar_failures(
        self, words: Sequence[str], exclude_run: str | None, limit: int
    ) -> list[SimilarRow]:
        """Indexed failures ranked by ``ts_rank`` on the query's rarest terms, best first."""
        text = " ".join(words)
        if not text.strip():
            return []
        with self._guard("searching similar failures") as conn:
            found = conn.execute(
                SIMILAR_SQL,
                {
                    "common": _COMMON,
                    "text": text,
                    "most": _QUERY_TERMS,
                    "exclude": exclude_run,
                    "limit": limit,
                },
                prepare=True,
            ).fetchall()
        return [
            SimilarRow(
                run_id=str(run_id),
                nodeid=str(nodeid),
                attempt=int(attempt),
                cause_key=str(key),
                cause=str(label),
                score=round(float(score), 4),
                start=None if start is None else float(start),
                git_commit=commit,
            )
            for run_id, nodeid, attempt, key, label, score, start, commit in found
        ]

    # -- moving a history (aqe history export/import) ------------------------------

    def export_runs(self) -> Iterator[RunDump]:
        with self._guard("listing runs to export") as conn:
            run_ids = [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY start, seq")]
        tables = columns_by_table()
        for run_id in run_ids:
            with self._guard("exporting a run") as conn:
                yield RunDump(
                    run=_rows(conn, "runs", tables["runs"], run_id)[0],
                    results=_rows(conn, "results", tables["results"], run_id),
                    collect_times=_rows(conn, "collect_times", tables["collect_times"], run_id),
                    failures=_rows(conn, "failure_text", FAILURE_COLUMNS, run_id),
                )

    def import_run(self, dump: RunDump) -> bool:
        """Add ``dump`` in one transaction unless its run is already here."""
        with self._write("importing a run") as conn:
            if not _insert_rows(conn, "runs", [dump.run], " ON CONFLICT (run_id) DO NOTHING"):
                return False
            _insert_rows(conn, "results", dump.results)
            _insert_rows(conn, "collect_times", dump.collect_times)
            _index_failures(conn, dump.run_id, dump.failures)
        return True


def _rows(
    conn: psycopg.Connection[tuple[Any, ...]], table: str, columns: Sequence[str], run_id: str
) -> list[Row]:
    """A table's rows of one run, in insertion order, keyed by column."""
    names = ", ".join(POSTGRES.quote(c) for c in columns)
    found = conn.execute(f"SELECT {names} FROM {table} WHERE run_id = %s ORDER BY seq", (run_id,))
    return [dict(zip(columns, row, strict=True)) for row in found]


def _insert_run(conn: psycopg.Connection[tuple[Any, ...]], run: RunRecord) -> None:
    conn.execute(
        "INSERT INTO runs (run_id, start, git_commit, git_dirty, command, root, workers,"
        " code_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING",
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


def _insert_rows(
    conn: psycopg.Connection[tuple[Any, ...]], table: str, rows: Sequence[Row], tail: str = ""
) -> int:
    """Insert ``rows`` (dicts keyed by column); return how many went in."""
    if not rows:
        return 0
    columns = list(rows[0])
    names = ", ".join(POSTGRES.quote(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    statement = f"INSERT INTO {table} ({names}) VALUES ({marks}){tail}"
    values = [[row[c] for c in columns] for row in rows]
    if len(values) == 1:  # rowcount of one statement is exact (0 when a conflict skipped it)
        return max(conn.execute(statement, values[0]).rowcount, 0)
    with conn.cursor() as cursor:
        cursor.executemany(statement, values)
    return len(values)


def _index_failures(
    conn: psycopg.Connection[tuple[Any, ...]], run_id: str, rows: Sequence[Row]
) -> None:
    """Add failures to the index and their terms to the vocabulary, in sorted order so
    that concurrent writers lock vocabulary rows in one order and never deadlock."""
    if not rows:
        return
    _insert_rows(conn, "failure_text", [{**row, "run_id": run_id} for row in rows])
    conn.execute(
        "INSERT INTO failure_vocab (term, doc) SELECT term, count(*) FROM"
        " (SELECT DISTINCT b.n, t.term FROM unnest(%s::text[]) WITH ORDINALITY AS b(body, n),"
        "  unnest(tsvector_to_array(to_tsvector('simple', b.body))) AS t(term)) AS d"
        " GROUP BY term ORDER BY term"
        " ON CONFLICT (term) DO UPDATE SET doc = failure_vocab.doc + excluded.doc",
        ([str(row["body"]) for row in rows],),
    )
