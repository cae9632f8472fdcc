"""``<root>/.aqe``: aqe's own files, kept out of git except the quarantine list."""

from __future__ import annotations

from pathlib import Path

#: Everything in .aqe is ignored but the quarantine, which a team shares.
GITIGNORE = "*\n!quarantine.toml\n"


def write_ignore(directory: Path) -> None:
    """Write (or bring up to date) ``.aqe/.gitignore``; aqe's files must never make a
    git tree dirty, or every run would look like uncommitted code."""
    ignore = directory / ".gitignore"
    try:
        current = ignore.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current is None or current == "*\n":  # absent, or as aqe before the quarantine
        ignore.write_text(GITIGNORE, encoding="utf-8")


def aqe_directory(root: Path) -> Path:
    directory = root / ".aqe"
    directory.mkdir(exist_ok=True)
    write_ignore(directory)
    return directory


def optional_aqe_directory(root: Path, *parts: str) -> Path | None:
    """``.aqe/<parts>`` for what a run can do without (a live status, a bytecode cache),
    or None when it cannot be made: a read-only checkout, or a file in the way, must not
    stop a run that keeps no history."""
    try:
        directory = aqe_directory(root).joinpath(*parts)
        directory.mkdir(exist_ok=True)
    except OSError:
        return None
    return directory
