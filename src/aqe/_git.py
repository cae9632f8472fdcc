"""What code a run ran: the git commit, whether the tree was dirty, a code identity."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path


def git_state(root: Path) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` for the repository holding ``root``; ``(None, None)`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=normal"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


#: Directories never part of a project's code: tools' caches, environments, builds.
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "build", "dist", "site-packages"})
#: Beyond this many files the tree is not hashed: the run then shares code with no other.
_MAX_FILES = 50_000


def code_identity(root: Path, commit: str | None, dirty: bool | None) -> str | None:
    """What code a run ran, so that flakiness is judged on "the same code" only.

    A clean git tree is its commit. Otherwise it is a hash of every file's path,
    size and modification time under ``root`` (hidden directories, virtual
    environments and caches left out): touching a file makes a new identity, which
    can only hide evidence of flakiness, never invent it.
    """
    if commit and dirty is False:
        return f"git:{commit}"
    digest = hashlib.sha1(usedforsecurity=False)
    count = 0
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not d.endswith(".egg-info")
            and not os.path.exists(os.path.join(directory, d, "pyvenv.cfg"))
        )
        for name in sorted(files):
            path = os.path.join(directory, name)
            try:
                info = os.stat(path)
            except OSError:
                continue
            count += 1
            if count > _MAX_FILES:
                return None
            digest.update(
                f"{os.path.relpath(path, root)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode()
            )
    return f"tree:{digest.hexdigest()}"
