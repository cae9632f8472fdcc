"""The history readers of the public API: past runs, one test's past, flaky
verdicts and failure causes.

Each opens the project's history store read-only for one call and closes it; a
project without a history has no runs and no verdicts (nothing is created just
to be read). The project is the one ``cwd`` (default: the current directory) is
in, found as ``aqe`` finds it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .._exceptions import UsageError
from .._store import HistoryRow as PastAttempt  # one attempt of one past run
from ._types import RunSummary

if TYPE_CHECKING:
    from .._knowledge._flaky import FlakyVerdict
    from .._knowledge._reports import FailureCauses
    from .._store import Store as HistoryStore

__all__ = ["PastAttempt", "failure_causes", "flaky_tests", "history", "test_history"]

StrPath = str | os.PathLike[str]


def history(
    limit: int = 20, *, cwd: StrPath | None = None, history_path: StrPath | None = None
) -> list[RunSummary]:
    """The project's most recent runs, newest first."""
    with _opened(cwd, history_path) as (_, store, _window):
        rows = store.recent_runs(limit) if store is not None else []
    return [
        RunSummary(
            run_id=row.run_id,
            start=row.start,
            end=row.end,
            exit_code=row.exit_code,
            outcomes={k: n for k, n in row.counts.items() if n},
            workers=row.workers,
            git_commit=row.git_commit,
            command=tuple(row.command),
        )
        for row in rows
    ]


def test_history(
    nodeid: str,
    limit: int = 20,
    *,
    cwd: StrPath | None = None,
    history_path: StrPath | None = None,
) -> list[PastAttempt]:
    """Past attempts of one test, newest first."""
    with _opened(cwd, history_path) as (_, store, _window):
        return store.test_history(nodeid, limit)[0] if store is not None else []


test_history.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def flaky_tests(
    *,
    window: int | None = None,
    include_stable: bool = False,
    cwd: StrPath | None = None,
    history_path: StrPath | None = None,
) -> list[FlakyVerdict]:
    """Flaky and broken tests over the last ``window`` runs (default: the project's
    ``flaky_window``), as ``aqe flaky`` judges them; every test with
    ``include_stable``."""
    from .._knowledge import _commands

    with _opened(cwd, history_path) as (_, store, default_window):
        if store is None:
            return []
        verdicts, _runs = _commands.verdicts(store, window or default_window)
    return [v for v in verdicts if include_stable or v.label != "stable"]


def failure_causes(
    run_id: str | None = None, *, cwd: StrPath | None = None, history_path: StrPath | None = None
) -> FailureCauses:
    """A run's failures (default: the latest run's) grouped by root cause, largest
    first, as ``aqe failures`` groups them."""
    from .._knowledge import _commands

    with _opened(cwd, history_path) as (root, store, window):
        if store is None:
            raise UsageError("no runs in the history yet: run aqe run first")
        run = _commands.pick_run(store, run_id)
        return _commands.clusters(
            run,
            store.results_for_run(run),
            str(root),
            _commands.past_transitions(store, run, window),
        )


@contextlib.contextmanager
def _opened(
    cwd: StrPath | None, history_path: StrPath | None
) -> Iterator[tuple[Path, HistoryStore | None, int]]:
    """The project root, its history store (None when it has none yet), and its
    configured flaky window."""
    from .._config import find_root, load_config
    from .._runner import open_existing_store

    root = find_root(Path(cwd) if cwd is not None else Path.cwd())
    flags = {} if history_path is None else {"history_path": os.fspath(history_path)}
    config = load_config(root, flags)
    store = open_existing_store(config, root)
    try:
        yield root, store, config.flaky_window
    finally:
        if store is not None:
            store.close()
