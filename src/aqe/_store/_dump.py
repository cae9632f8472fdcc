"""``aqe history export/import``: a history as compact, versioned JSON lines.

Why a file format of its own rather than a database dump: it must move a history
between SQLite and PostgreSQL, merge CI shards' histories into one, and be safe to
import twice. So a file is a header line, then one line per run holding the run's row,
its results, collection times and indexed failures, keyed by the run's id: a store
imports a run it lacks in one transaction and skips a run it has, which makes import
idempotent and any set of files mergeable in any order. Gzip when the name ends
``.gz``. Rows are objects keyed by column name so that a newer schema's file stays
readable (unknown columns are refused, missing ones stay empty).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from aqe._exceptions import UsageError
from aqe._store._tables import STEPS, columns_by_table

__all__ = ["FAILURE_COLUMNS", "FORMAT", "RunDump", "read_dumps", "write_dumps"]

#: The header's format name and version; bump the version when a line's meaning changes.
FORMAT = "aqe-history"
FORMAT_VERSION = 1

#: What an indexed failure holds (the similarity index's rows, run id aside).
FAILURE_COLUMNS = ("nodeid", "attempt", "cause", "label", "body")

Row = dict[str, object]


@dataclass(frozen=True, slots=True)
class RunDump:
    """One run and everything recorded under its id."""

    run: Row
    results: list[Row] = field(default_factory=list)
    collect_times: list[Row] = field(default_factory=list)
    failures: list[Row] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    def to_json(self) -> dict[str, object]:
        return {
            "run": self.run,
            "results": self.results,
            "collect_times": self.collect_times,
            "failures": self.failures,
        }


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return cast("IO[str]", gzip.open(path, mode + "t", encoding="utf-8"))
    return path.open(mode, encoding="utf-8")


def write_dumps(path: Path, dumps: Iterable[RunDump]) -> int:
    """Write a header and one line per run; return how many runs were written."""
    count = 0
    try:
        with _open(path, "w") as out:
            header = {"format": FORMAT, "version": FORMAT_VERSION, "schema": len(STEPS)}
            out.write(json.dumps(header) + "\n")
            for dump in dumps:
                out.write(json.dumps(dump.to_json(), separators=(",", ":")) + "\n")
                count += 1
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return count


def read_dumps(path: Path) -> Iterator[RunDump]:
    """The runs of an export file, checked line by line; one-line errors naming it."""
    try:
        with _open(path, "r") as lines:
            yield from _parse(path, lines)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UsageError(f"cannot read {path}: {reason}") from None


def _parse(path: Path, lines: Iterable[str]) -> Iterator[RunDump]:
    known = columns_by_table()
    header_seen = False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise UsageError(f"{path}:{number} is not JSON: not an aqe history export") from None
        if not header_seen:
            _check_header(path, data)
            header_seen = True
            continue
        try:
            yield RunDump(
                run=_row(data["run"], known["runs"]),
                results=[_row(r, known["results"]) for r in data.get("results", [])],
                collect_times=[
                    _row(r, known["collect_times"]) for r in data.get("collect_times", [])
                ],
                failures=[_row(r, FAILURE_COLUMNS) for r in data.get("failures", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                f"{path}:{number} is not a run of an aqe history export ({exc})"
            ) from None
    if not header_seen:
        raise UsageError(f"{path} is empty: not an aqe history export")


def _check_header(path: Path, data: object) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path} is not an aqe history export (no {FORMAT!r} header)")
    version = data.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UsageError(
            f"{path} has export format version {version}, newer than the {FORMAT_VERSION}"
            " this aqe reads; upgrade aqe"
        )


def _row(data: object, columns: tuple[str, ...]) -> Row:
    if not isinstance(data, dict):
        raise TypeError("a row is not an object")
    unknown = sorted(set(data) - set(columns))
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}")
    return {name: data.get(name) for name in columns}
