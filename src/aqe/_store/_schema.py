"""Opening the history database: pragmas, versioned migrations, error wording.

Why versioned migrations: the database outlives any one aqe release, and a user
who upgrades aqe must keep their duration history (it drives scheduling). The
schema version lives in ``PRAGMA user_version``; ``MIGRATIONS[i]`` upgrades a
database from version ``i`` to ``i + 1`` and every pending step runs in one
transaction, so a crash mid-upgrade leaves the old schema intact. A database
stamped with a version newer than this code is refused rather than guessed at,
because an older aqe writing rows into a newer layout would corrupt it silently.

Why opening is more than ``sqlite3.connect``: WAL lets concurrent ``aqe run``
processes read while one writes, and the schema must be checked before any row
is touched, so that a foreign or damaged file is refused instead of "repaired".

Why the error helpers live here too: every failure must reach the user as a
single line naming the file and a remedy, whether it comes from opening,
migrating or a later query, so the translation from ``sqlite3`` errors to
:class:`~aqe._exceptions.StoreError` is shared by the whole package.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from aqe._exceptions import StoreError
from aqe._store import _tables

__all__ = [
    "BUSY_TIMEOUT_S",
    "MIGRATIONS",
    "REQUIRED_COLUMNS",
    "SCHEMA_VERSION",
    "check_shape",
    "migrate",
    "open_database",
    "store_error",
    "translate_error",
]

#: How long a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 30.0

#: What the user can always do when the store is unusable.
_ESCAPE = "run with --no-history"

#: ``MIGRATIONS[i]`` holds the statements that take version ``i`` to ``i + 1``, rendered
#: from the one schema definition (``_tables.STEPS``) that PostgreSQL renders too.
MIGRATIONS: tuple[tuple[str, ...], ...] = tuple(
    _tables.render(step, _tables.SQLITE) for step in _tables.STEPS
)

SCHEMA_VERSION = len(MIGRATIONS)

#: Columns the code reads and writes; a database lacking any of them is not ours.
REQUIRED_COLUMNS: dict[str, frozenset[str]] = {
    table: frozenset(columns) for table, columns in _tables.columns_by_table().items()
}


def store_error(path: Path | str, problem: str, remedy: str) -> StoreError:
    """Build the one-line error: ``history database <path> <problem>; <remedy>``."""
    text = f"history database {path} {problem}; {remedy}"
    return StoreError(" ".join(text.split()))


def translate_error(path: Path, exc: sqlite3.Error, action: str) -> StoreError:
    """Turn an ``sqlite3`` error raised while doing ``action`` into a StoreError."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    lowered = detail.lower()
    if "not a database" in lowered or "malformed" in lowered:
        return store_error(
            path,
            f"is not a valid SQLite database ({detail})",
            f"move it aside or {_ESCAPE}",
        )
    if "locked" in lowered or "busy" in lowered:
        return store_error(
            path,
            f"stayed locked by another process while {action} ({detail})",
            f"wait for the other aqe run to finish or {_ESCAPE}",
        )
    if "unable to open" in lowered or "readonly" in lowered or "i/o error" in lowered:
        return store_error(
            path,
            f"cannot be opened or written ({detail})",
            f"make sure it is a readable and writable file, not a directory, or {_ESCAPE}",
        )
    if "disk is full" in lowered:
        return store_error(path, f"cannot be written ({detail})", f"free disk space or {_ESCAPE}")
    return store_error(path, f"failed while {action} ({detail})", f"move it aside or {_ESCAPE}")


def _user_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def _refuse_future(path: Path, version: int, known: int) -> StoreError:
    return store_error(
        path,
        f"has schema version {version}, newer than the {known} this aqe knows"
        " (it was written by a newer aqe)",
        f"upgrade aqe, move the file aside or {_ESCAPE}",
    )


def migrate(
    conn: sqlite3.Connection,
    path: Path,
    migrations: Sequence[Sequence[str]] = MIGRATIONS,
) -> int:
    """Bring the database up to ``len(migrations)``; return the final version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so that the
    explicit transaction here is the only one. The version is read again once the
    write lock is held: a second process may have migrated in the meantime.
    """
    target = len(migrations)
    version = _user_version(conn)
    if version > target:
        raise _refuse_future(path, version, target)
    if version == target:
        return version
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)
        if version > target:
            raise _refuse_future(path, version, target)
        if version == 0 and _has_tables(conn):
            raise store_error(
                path,
                "is not an aqe history database (it holds other tables and no schema version)",
                f"point aqe at another file, move it aside or {_ESCAPE}",
            )
        for step in range(version, target):
            for statement in migrations[step]:
                conn.execute(statement)
        # PRAGMA arguments cannot be bound; ``target`` is an int we computed.
        conn.execute(f"PRAGMA user_version = {int(target)}")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return target


def _has_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%'"
        " ESCAPE '\\'"
    ).fetchone()
    return int(row[0]) > 0


def check_shape(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database whose tables lack the columns this code uses."""
    for table, required in REQUIRED_COLUMNS.items():
        present = {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}
        if not present:
            problem = f"is not an aqe history database (table {table!r} is missing)"
        elif missing := sorted(required - present):
            problem = f"is not an aqe history database (table {table!r} lacks {', '.join(missing)})"
        else:
            continue
        raise store_error(path, problem, f"move it aside or {_ESCAPE}")


def open_database(path: Path) -> sqlite3.Connection:
    """Connect in autocommit mode with WAL, a 30 s busy timeout and NORMAL sync,
    migrate to the current schema and verify its shape; close again on failure.

    The connection may be shared between threads: its owner must serialise use.
    """
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,  # autocommit; transactions are explicit
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, path)
        check_shape(conn, path)
        _failure_index(conn)
    except sqlite3.Error as exc:
        if conn is not None:
            conn.close()
        raise translate_error(path, exc, "opening it") from exc
    except BaseException:
        if conn is not None:
            conn.close()
        raise
    return conn


#: Full-text index of failures (SQLite's FTS5, BM25 ranking) for "similar failures".
FAILURE_INDEX = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS failure_text USING fts5("
    "body, run_id UNINDEXED, nodeid UNINDEXED, attempt UNINDEXED, cause UNINDEXED,"
    " label UNINDEXED, tokenize = \"unicode61 tokenchars '_'\")",  # identifiers stay whole
    # Per-term document counts, so a query can keep its rarest (most telling) terms.
    "CREATE VIRTUAL TABLE IF NOT EXISTS failure_vocab USING fts5vocab(failure_text, 'row')",
)


def _failure_index(conn: sqlite3.Connection) -> None:
    """Create the failure index where SQLite has FTS5 (every build Python ships does);
    without it, similar-failure search is unavailable and everything else works."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'failure_vocab'").fetchone():
        return
    try:
        for statement in FAILURE_INDEX:
            conn.execute(statement)
    except sqlite3.OperationalError as exc:
        if "fts5" not in str(exc).lower() and "locked" not in str(exc).lower():
            raise


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying: when two processes open a new file at once, SQLite
    reports the losing switch as busy immediately, without the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.002
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
