"""``aqe watch``: on every save, run what the change affects.

Why a child ``aqe run --affected`` per round, not tests in this process: each round
then gets a fresh interpreter (edited modules are imported anew, nothing stale is
cached) with aqe's own fleet, reports and history, and this loop stays small: it only
waits for file events (watchfiles, inotify on Linux, debounced) and for its child.
Ctrl-C (or SIGTERM) stops the round's run as a Ctrl-C stops ``aqe run`` (its tests get
the grace period, then everything is killed) and ends the loop: nothing stays running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .._exceptions import UsageError

#: Never events: aqe's own files, git's, caches, virtual environments.
_IGNORED = frozenset(
    {".aqe", ".git", "__pycache__", ".pytest_cache", ".venv", ".tox", ".mypy_cache"}
)
#: Seconds a run gets to stop after Ctrl-C before its process group is killed.
_STOP_GRACE = 15.0


def _relevant(path: str) -> bool:
    return not _IGNORED.intersection(Path(path).parts) and not path.endswith((".pyc", "~"))


def _run(command: Sequence[str], root: Path) -> int:
    """One round; on Ctrl-C, stop the child as ``aqe run`` stops, then re-raise."""
    child = subprocess.Popen(list(command), cwd=root, start_new_session=True)
    try:
        return child.wait()
    except KeyboardInterrupt:
        try:
            child.send_signal(signal.SIGINT)
            child.wait(timeout=_STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        except ProcessLookupError:
            pass
        raise


def watch(root: Path, paths: Sequence[str], run_args: Sequence[str], debounce_ms: int = 300) -> int:
    try:
        import watchfiles
    except ImportError:
        raise UsageError(
            "aqe watch needs watchfiles (not installed): pip install 'watchfiles>=0.21' "
            "(aqe's watch extra)"
        ) from None
    targets = [str(Path(p).resolve()) for p in paths] or [str(root)]
    command = [sys.executable, "-m", "aqe", "run", "--affected", *run_args]
    print(f"aqe: watching {', '.join(targets)}; Ctrl-C to stop", flush=True)
    first = True
    try:
        for changes in watchfiles.watch(
            *targets,
            debounce=debounce_ms,
            watch_filter=lambda _change, path: _relevant(path),
            raise_interrupt=True,
            yield_on_timeout=True,  # the first (empty) yield: watching has begun
            rust_timeout=500,
        ):
            if first:  # a first round once events are watched: a save during it counts
                first = False
                _run(command, root)
                continue
            if not changes:
                continue
            names = sorted({os.path.relpath(path, root) for _, path in changes})
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            print(f"aqe: changed: {shown}", flush=True)
            _run(command, root)
    except KeyboardInterrupt:
        print("aqe: watch stopped", flush=True)
        return 2
    return 0
