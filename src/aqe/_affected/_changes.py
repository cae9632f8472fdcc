"""What changed: git's view (files changed between REF and the working tree, new
files included) and which changes widen a selection whatever the map says.

Why git for the file list: it knows what belongs to the project (ignored files,
virtual environments and caches are not code) and answers in milliseconds.
"""

from __future__ import annotations

import fnmatch
import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .._exceptions import UsageError

#: Files whose change may alter how every test runs: pytest's and aqe's configuration.
CONFIG_FILES = frozenset({"pyproject.toml", "pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg"})
#: Dependency lock files: a change means other installed code.
LOCK_PATTERNS = (
    "*.lock", "requirements*.txt", "constraints*.txt", "Pipfile.lock", "pylock*.toml",
)  # fmt: skip


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"git {args[0]} failed in {root}: {exc}") from None
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(f"git {' '.join(args[:2])} failed in {root}: {detail}")
    return done.stdout


@functools.lru_cache(maxsize=8)
def toplevel(root: Path) -> Path:
    """The repository's top directory; a usage error outside git."""
    try:
        return Path(_git(root, "rev-parse", "--show-toplevel").strip())
    except UsageError:
        raise UsageError(
            f"{root} is not in a git repository: --changed and --affected need git"
        ) from None


def revision(root: Path, ref: str) -> str | None:
    """The commit ``ref`` names, or None when it names none."""
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip() or None
    except UsageError:
        return None


def _relative(root: Path, top: Path, names: str) -> list[str]:
    """git's top-relative names made relative to ``root`` (others dropped)."""
    prefix = root.resolve().relative_to(top.resolve()).as_posix()
    found = []
    for name in names.split("\0"):
        if not name:
            continue
        if prefix in ("", "."):
            found.append(name)
        elif name.startswith(prefix + "/"):
            found.append(name[len(prefix) + 1 :])
    return found


def project_files(root: Path) -> list[str]:
    """Tracked and untracked (not ignored) files under ``root``, relative to it."""
    top = toplevel(root)
    out = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--full-name")
    return sorted(set(_relative(root, top, out)))


def changed_files(root: Path, ref: str) -> list[str]:
    """Files that differ between ``ref`` and the working tree (deleted ones too),
    plus untracked ones, relative to ``root``."""
    top = toplevel(root)
    diff = _git(root, "diff", "--name-only", "-z", "--no-renames", ref, "--", ".")
    new = _git(root, "ls-files", "-z", "--others", "--exclude-standard", "--full-name")
    return sorted(set(_relative(root, top, diff)) | set(_relative(root, top, new)))


def file_at(root: Path, ref: str, relpath: str) -> bytes | None:
    """A file's content at ``ref`` (None if it did not exist there)."""
    top = toplevel(root)
    full = (root.resolve() / relpath).relative_to(top.resolve()).as_posix()
    try:
        done = subprocess.run(
            ["git", "show", f"{ref}:{full}"], cwd=root, capture_output=True, timeout=60
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@dataclass(frozen=True, slots=True)
class Widening:
    """A change that selects more than the map says: ``scope`` is a directory whose
    tests it selects ("" for every test)."""

    path: str
    scope: str
    reason: str


def widening(relpath: str) -> Widening | None:
    """Whether a changed file widens the selection, and how far."""
    name = PurePosixPath(relpath).name
    if name == "conftest.py":
        scope = str(PurePosixPath(relpath).parent)
        return Widening(relpath, "" if scope == "." else scope, "conftest changed")
    if relpath in CONFIG_FILES:
        return Widening(relpath, "", "configuration changed")
    if any(fnmatch.fnmatch(name, pattern) for pattern in LOCK_PATTERNS):
        return Widening(relpath, "", "dependency lock file changed")
    return None


def in_scope(test_file: str, scope: str) -> bool:
    return not scope or test_file == scope or test_file.startswith(scope + "/")
