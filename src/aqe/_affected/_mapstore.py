"""The dependency map in the history: read and write its three tables
(``dep_tests``, ``dep_shapes``, ``dep_runs``; see ``_store/_tables.py``).

Why here and not in the stores: the map is this package's data; both history stores
hold it in the same tables (one schema), and both hand out their connection inside
their own transaction and error handling (``_write``/``_guard``), so one set of
statements serves SQLite and PostgreSQL, told apart only by their placeholder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, cast


class _Connected(Protocol):
    def _write(self, action: str) -> AbstractContextManager[Any]: ...
    def _guard(self, action: str) -> AbstractContextManager[Any]: ...


@dataclass(frozen=True, slots=True)
class TestDeps:
    """What one test used when it was recorded."""

    #: Project Python files: path -> (content hash, functions it ran).
    python: Mapping[str, tuple[str, tuple[str, ...]]]
    #: Other project files it opened: path -> content hash ("" if unreadable).
    data: Mapping[str, str]

    def to_json(self) -> str:
        return json.dumps(
            {"py": {p: [h, list(f)] for p, (h, f) in self.python.items()}, "data": self.data},
            separators=(",", ":"),
            sort_keys=True,
        )

    @staticmethod
    def from_json(text: str) -> TestDeps:
        # As decoded (``[hash, [functions]]`` pairs unpack like the tuples): a map of a
        # few thousand tests is read on every --affected run, before anything else.
        raw = json.loads(text)
        return TestDeps(raw.get("py", {}), raw.get("data", {}))


@dataclass(frozen=True, slots=True)
class DepMap:
    tests: dict[str, TestDeps]
    #: The widening files' hashes when the map was last recorded.
    watched: dict[str, str]


def _mark(store: object) -> str:
    return "%s" if type(store).__module__.endswith("_postgres") else "?"


def _connected(store: object) -> _Connected:
    if not hasattr(store, "_write") or not hasattr(store, "_guard"):
        from .._exceptions import UsageError

        raise UsageError(
            f"the history store {type(store).__name__} cannot hold a dependency map "
            "(aqe's SQLite and PostgreSQL stores can)"
        )
    return cast(_Connected, store)


def save(
    store: object,
    run_id: str,
    recorded: float,
    tests: Mapping[str, TestDeps],
    shapes: Mapping[str, str],
    watched: Mapping[str, str],
) -> None:
    """Replace the map of each recorded test; keep every other test's."""
    q = _mark(store)
    with _connected(store)._write("saving the dependency map") as conn:
        rows = [(nodeid, run_id, recorded, deps.to_json()) for nodeid, deps in tests.items()]
        if rows:
            conn.cursor().executemany(
                "INSERT INTO dep_tests (nodeid, run_id, recorded, deps)"
                f" VALUES ({q}, {q}, {q}, {q})"
                " ON CONFLICT (nodeid) DO UPDATE SET run_id = excluded.run_id,"
                " recorded = excluded.recorded, deps = excluded.deps",
                rows,
            )
        if shapes:
            conn.cursor().executemany(
                f"INSERT INTO dep_shapes (hash, fingerprints) VALUES ({q}, {q})"
                " ON CONFLICT (hash) DO NOTHING",
                list(shapes.items()),
            )
        conn.execute(
            f"INSERT INTO dep_runs (run_id, recorded, watched) VALUES ({q}, {q}, {q})"
            " ON CONFLICT (run_id) DO NOTHING",
            (run_id, recorded, json.dumps(dict(watched), sort_keys=True)),
        )


def load(store: object) -> DepMap:
    with _connected(store)._guard("reading the dependency map") as conn:
        tests = {
            nodeid: TestDeps.from_json(deps)
            for nodeid, deps in conn.execute("SELECT nodeid, deps FROM dep_tests").fetchall()
        }
        last = conn.execute(
            "SELECT watched FROM dep_runs ORDER BY recorded DESC LIMIT 1"
        ).fetchone()
    return DepMap(tests, json.loads(last[0]) if last else {})


def shapes(store: object, hashes: Iterator[str] | set[str]) -> dict[str, dict[str, str]]:
    """Fingerprints of the recorded file versions asked for, by content hash."""
    wanted = list(hashes)
    found: dict[str, dict[str, str]] = {}
    q = _mark(store)
    with _connected(store)._guard("reading the dependency map") as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ", ".join([q] * len(chunk))
            for digest, text in conn.execute(
                f"SELECT hash, fingerprints FROM dep_shapes WHERE hash IN ({marks})", chunk
            ).fetchall():
                found[digest] = json.loads(text)
    return found
