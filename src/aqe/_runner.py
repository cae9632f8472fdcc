"""One ``aqe run``: open the history, run through an adapter, write every report.

Reports and the history's closing row are written in a ``finally``: a failing or
interrupted run still leaves its JUnit XML, JSON and history behind.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ._adapters import Adapter, RunOptions, Selection
from ._engine._bytecode import cache_in
from ._engine._plan import Estimate
from ._exceptions import StoreError, UsageError
from ._git import code_identity, git_state
from ._model import FAILING_OUTCOMES, RunRecord, TestResult
from ._options import Config
from ._paths import optional_aqe_directory
from ._signals import handling, received
from ._store import HistoryStore
from ._trace import mark


class RunController:
    """The coordinator's sink: history in, estimates out."""

    def __init__(self, store: HistoryStore | None, run: RunRecord) -> None:
        self.store = store
        self.run = run
        self._known: frozenset[str] | None = None

    def estimates(self) -> tuple[Mapping[str, Estimate], Mapping[str, float]]:
        if self.store is None:
            return {}, {}
        durations = self.store.estimates()
        return (
            {nodeid: Estimate(setup=d.setup, total=d.total) for nodeid, d in durations.items()},
            self.store.collect_estimates(),
        )

    def record(self, results: Sequence[TestResult], collect_times: Mapping[str, float]) -> None:
        if self.store is None:
            return
        if results:
            self.store.add_results(self.run.run_id, results)
            self.store.add_failure_texts(self.run.run_id, self._failure_texts(results))
        if collect_times:
            self.store.add_collect_times(self.run.run_id, collect_times)

    def _failure_texts(self, results: Sequence[TestResult]) -> list[tuple[str, int, str, str, str]]:
        """(node id, attempt, cause key, cause, text) of each failing result, for the
        history's similar-failure index."""
        failing = [r for r in results if r.outcome in FAILING_OUTCOMES]
        if not failing:
            return []
        from ._knowledge._triage import project_names, signature

        if self._known is None:  # the project's names, read once per run
            self._known = project_names(Path(self.run.root))
        rows = []
        for result in failing:
            found = signature(result.to_dict(), self._known or frozenset())
            rows.append((result.nodeid, result.attempt, found.key, found.cause, found.text))
        return rows


def history_path(config: Config, root: Path) -> Path:
    path = Path(config.history_path)
    return path if path.is_absolute() else root / path


def open_store(config: Config, root: Path) -> HistoryStore | None:
    if not config.history:
        return None
    return HistoryStore(history_path(config, root))


def execute_run(
    adapter: Adapter,
    config: Config,
    selection: Selection,
    options: RunOptions,
    run_id: str | None = None,
) -> int:
    root = options.root
    run = RunRecord(
        run_id=run_id or uuid.uuid4().hex[:12],
        start=time.time(),
        command=["aqe", *sys.argv[1:]],
        root=str(root),
        workers=options.workers,
    )
    run.git_commit, run.git_dirty = git_state(root)
    run.code_id = code_identity(root, run.git_commit, run.git_dirty)
    store = open_store(config, root)
    code = 3
    try:
        if store is not None:
            store.begin_run(run)
        cache = optional_aqe_directory(root, "pycache") if config.bytecode_cache else None
        with cache_in(cache):
            code = adapter.run(selection, options, run, RunController(store, run))
        if received() and code != 2:
            # Interrupted during start-up and the exception lost on the way: pytest
            # may have reported it as something else (a plugin that failed to load).
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        # pytest reports an interrupt it caught itself; this one came before its
        # session began (while it loaded plugins or conftest files), so say it here.
        sys.stderr.write("aqe: interrupted before the run started\n")
        code = 2
    finally:
        mark("run-end")
        run.end = time.time()
        run.exit_code = code
        # A signal now must not cut a report or the history's last write in half.
        with handling(signal.SIG_IGN):
            try:
                _write_reports(config, root, run)
            finally:
                if store is not None:
                    with contextlib.suppress(StoreError):
                        store.finish_run(run)
                    store.close()
    if config.auto_quarantine and config.history and code in (0, 1):
        auto_quarantine(config, root)
    return code


def auto_quarantine(config: Config, root: Path) -> None:
    """Quarantine the tests the history shows flaky past the configured bar."""
    from ._knowledge import _commands, _quarantine

    with HistoryStore(history_path(config, root)) as store:
        verdicts, _ = _commands.verdicts(store, config.flaky_window)
    listed = {entry.id for entry in _quarantine.load(root)}
    chosen = _commands.auto_candidates(verdicts, config, listed)
    for verdict in chosen:
        _quarantine.add(
            root, [verdict.nodeid], _commands.reason_for(verdict), "aqe --auto-quarantine"
        )
    if chosen:
        names = ", ".join(v.nodeid for v in chosen[:5]) + (" ..." if len(chosen) > 5 else "")
        sys.stdout.write(
            f"aqe: quarantined {len(chosen)} flaky tests in {_quarantine.path_of(root)}: {names}\n"
        )
        sys.stdout.flush()


def _write_reports(config: Config, root: Path, run: RunRecord) -> None:
    """Each report asked for; a writer's module is imported only then."""
    if config.junit_xml is not None:
        from ._reporting.junit import write_junit_xml

        _write_report(Path(config.junit_xml), lambda path: write_junit_xml(run, path))
    if config.json is not None:
        from ._reporting.json_report import write_json_report

        _write_report(Path(config.json), lambda path: write_json_report(run, path))


def _write_report(path: Path, write: Callable[[Path], None]) -> None:
    try:
        write(path)
    except OSError as exc:
        raise UsageError(f"cannot write report {path}: {exc.strerror or exc}") from None
