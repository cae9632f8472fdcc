"""The quarantine: tests whose failures are recorded but do not fail the run.

It lives in the repository (``.aqe/quarantine.toml``, the one file of ``.aqe`` that
git does not ignore), so a whole team and its CI share one list and review its
changes like code. aqe writes it in a fixed, readable layout; people may edit it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .._exceptions import UsageError
from .._paths import aqe_directory

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

FILE = "quarantine.toml"

_HEADER = """\
# Tests aqe runs and records, but whose failures do not fail the run.
# Managed with `aqe quarantine add|remove|list` (and `aqe run --auto-quarantine`);
# commit this file so that everyone and CI share it.
"""


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    reason: str
    #: When it was added, ISO 8601 UTC.
    added: str
    by: str

    @property
    def added_epoch(self) -> float:
        try:
            return datetime.fromisoformat(self.added).timestamp()
        except ValueError:
            return 0.0


def path_of(root: Path) -> Path:
    return root / ".aqe" / FILE


def load(root: Path) -> list[Entry]:
    """The entries of the project's quarantine file; [] when there is none."""
    path = path_of(root)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):  # no .aqe directory: none either
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"quarantine file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"quarantine file {path} is not valid TOML: {exc}") from None
    tests = data.get("test", [])
    if not isinstance(tests, list):
        raise UsageError(f"quarantine file {path}: 'test' must be an array of tables ([[test]])")
    entries: list[Entry] = []
    for number, table in enumerate(tests, 1):
        if not isinstance(table, dict) or not isinstance(table.get("id"), str) or not table["id"]:
            raise UsageError(f"quarantine file {path}: entry {number} has no string 'id'")
        entries.append(
            Entry(
                id=table["id"],
                reason=str(table.get("reason", "")),
                added=str(table.get("added", "")),
                by=str(table.get("by", "")),
            )
        )
    return entries


def save(root: Path, entries: Sequence[Entry]) -> Path:
    """Write the file atomically, entries sorted by id."""
    aqe_directory(root)
    path = path_of(root)
    lines = [_HEADER]
    for entry in sorted(entries, key=lambda e: e.id):
        lines.append("\n[[test]]\n")
        for key in ("id", "reason", "added", "by"):
            # A JSON string is a valid TOML basic string (same escapes).
            lines.append(f"{key} = {json.dumps(getattr(entry, key), ensure_ascii=False)}\n")
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".quarantine-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write("".join(lines))
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise UsageError(f"quarantine file {path} cannot be written: {exc}") from None
    return path


def add(root: Path, ids: Iterable[str], reason: str, by: str) -> list[Entry]:
    """Add ``ids`` not yet listed; returns the entries added."""
    entries = load(root)
    known = {entry.id for entry in entries}
    now = datetime.fromtimestamp(time.time(), tz=timezone.utc).isoformat(timespec="seconds")
    added = [Entry(nodeid, reason, now, by) for nodeid in dict.fromkeys(ids) if nodeid not in known]
    if added:
        save(root, [*entries, *added])
    return added


def remove(root: Path, ids: Iterable[str]) -> list[str]:
    """Remove ``ids``; returns those that were listed."""
    entries = load(root)
    wanted = set(ids)
    gone = [entry.id for entry in entries if entry.id in wanted]
    if gone:
        save(root, [entry for entry in entries if entry.id not in wanted])
    return gone
