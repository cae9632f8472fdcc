"""The history's schema, defined once and rendered for each database's dialect.

Why one definition: SQLite and PostgreSQL hold the same history and move it between
them (``aqe history export/import``), so they must agree on every table, column and
migration step; writing the DDL twice would let them drift. Each step of
:data:`STEPS` takes schema version ``i`` to ``i + 1`` and is append-only, like the
migrations it renders to: never edit a released step.

The dialects differ only in spelling: column types, quoting, and the row order that
SQLite keeps in its implicit ``rowid`` and PostgreSQL in an explicit ``seq`` column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "POSTGRES",
    "SQLITE",
    "STEPS",
    "AddColumn",
    "Column",
    "Dialect",
    "Index",
    "Table",
    "columns_by_table",
    "render",
]


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its kind is ``text``, ``real`` or ``integer``."""

    name: str
    kind: str
    not_null: bool = False
    primary_key: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    table: str
    column: str


@dataclass(frozen=True, slots=True)
class AddColumn:
    table: str
    column: Column


Operation = Table | Index | AddColumn


def _c(spec: str) -> tuple[Column, ...]:
    """``"name kind[!] ..."``: ``!`` marks NOT NULL, ``*`` the primary key."""
    columns = []
    for item in spec.split():
        name, kind = item.split(":")
        columns.append(
            Column(name, kind.rstrip("!*"), not_null="!" in kind, primary_key="*" in kind)
        )
    return tuple(columns)


_V1: tuple[Operation, ...] = (
    Table(
        "runs",
        _c(
            "run_id:text* start:real! end:real git_commit:text git_dirty:integer"
            " command:text! root:text! workers:integer! exit_code:integer passed:integer"
            " failed:integer skipped:integer xfailed:integer xpassed:integer error:integer"
            " tail_idle:real"
        ),
    ),
    Table(
        "results",
        _c(
            "run_id:text! nodeid:text! file:text! line:integer outcome:text! attempt:integer!"
            " worker:integer! when_:text setup:real call:real teardown:real duration:real!"
            " error_type:text message:text traceback:text output_size:integer! start:real!"
            " stop:real!"
        ),
    ),
    Index("results_nodeid", "results", "nodeid"),
    Index("results_run_id", "results", "run_id"),
    Table("collect_times", _c("run_id:text! file:text! seconds:real!")),
    Index("collect_times_file", "collect_times", "file"),
)

_V2: tuple[Operation, ...] = (
    # Outcomes added with worker timeouts and crash attribution.
    AddColumn("runs", Column("crashed", "integer")),
    AddColumn("runs", Column("timeout", "integer")),
    AddColumn("runs", Column("flaky", "integer")),
    AddColumn("results", Column("tier", "text")),
)

_V3: tuple[Operation, ...] = (
    # What code a run ran (flakiness needs "same code"), and quarantined results.
    AddColumn("runs", Column("code_id", "text")),
    AddColumn("results", Column("quarantined", "integer")),
)

_V4: tuple[Operation, ...] = (
    # The dependency map (``aqe run --record-deps``, docs/affected.md): per test, the
    # project files (content hash, functions run) and data files it used, as JSON;
    # each recorded Python file's function fingerprints by content hash; and the
    # configuration, lock and conftest files' hashes when a run recorded.
    Table("dep_tests", _c("nodeid:text* run_id:text! recorded:real! deps:text!")),
    Table("dep_shapes", _c("hash:text* fingerprints:text!")),
    Table("dep_runs", _c("run_id:text* recorded:real! watched:text!")),
)

#: ``STEPS[i]`` takes the schema from version ``i`` to ``i + 1``. Append; never edit.
STEPS: tuple[tuple[Operation, ...], ...] = (_V1, _V2, _V3, _V4)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database spells the schema."""

    name: str
    types: Mapping[str, str]
    #: Column names that must be quoted (reserved words).
    reserved: frozenset[str]
    #: A column added first to every table to keep insertion order (None: implicit).
    order_column: str | None

    def quote(self, name: str) -> str:
        return f'"{name}"' if name in self.reserved else name

    def column(self, column: Column) -> str:
        text = f"{self.quote(column.name)} {self.types[column.kind]}"
        if column.primary_key:
            text += " PRIMARY KEY"
        elif column.not_null:
            text += " NOT NULL"
        return text


SQLITE = Dialect(
    name="sqlite",
    types={"text": "TEXT", "real": "REAL", "integer": "INTEGER"},
    reserved=frozenset({"end"}),
    order_column=None,  # SQLite's rowid
)

POSTGRES = Dialect(
    name="postgresql",
    types={"text": "TEXT", "real": "DOUBLE PRECISION", "integer": "BIGINT"},
    reserved=frozenset({"end"}),
    order_column="seq BIGINT GENERATED ALWAYS AS IDENTITY",
)


def render(step: tuple[Operation, ...], dialect: Dialect) -> tuple[str, ...]:
    """The statements of one migration step in ``dialect``."""
    statements = []
    for operation in step:
        if isinstance(operation, Table):
            parts = [dialect.column(c) for c in operation.columns]
            if dialect.order_column is not None:
                parts.insert(0, dialect.order_column)
            statements.append(f"CREATE TABLE {operation.name} ({', '.join(parts)})")
        elif isinstance(operation, Index):
            statements.append(
                f"CREATE INDEX {operation.name} ON {operation.table}"
                f" ({dialect.quote(operation.column)})"
            )
        else:
            statements.append(
                f"ALTER TABLE {operation.table} ADD COLUMN {dialect.column(operation.column)}"
            )
    return tuple(statements)


def columns_by_table(
    steps: tuple[tuple[Operation, ...], ...] = STEPS,
) -> dict[str, tuple[str, ...]]:
    """Every table's columns after all ``steps``, in order of creation."""
    tables: dict[str, list[str]] = {}
    for step in steps:
        for operation in step:
            if isinstance(operation, Table):
                tables[operation.name] = [c.name for c in operation.columns]
            elif isinstance(operation, AddColumn):
                tables[operation.table].append(operation.column.name)
    return {name: tuple(columns) for name, columns in tables.items()}
