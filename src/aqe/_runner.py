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
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._adapters import Adapter, RunOptions, Selection
from ._config import Config
from ._engine._bytecode import cache_in
from ._engine._plan import Estimate
from ._exceptions import StoreError, UsageError
from ._git import git_state
from ._model import RunRecord, TestResult
from ._signals import handling
from ._store import HistoryStore
from ._trace import mark


class RunController:
    """The coordinator's sink: history in, estimates out."""

    def __init__(self, store: HistoryStore | None, run: RunRecord) -> None:
        self.store = store
        self.run = run

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
        if collect_times:
            self.store.add_collect_times(self.run.run_id, collect_times)


def ensure_aqe_dir(root: Path) -> Path:
    """``<root>/.aqe``, ignored by git so aqe's files never make a tree dirty."""
    directory = root / ".aqe"
    directory.mkdir(exist_ok=True)
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return directory


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
    store = open_store(config, root)
    code = 3
    try:
        if store is not None:
            store.begin_run(run)
        cache = ensure_aqe_dir(root) / "pycache" if config.bytecode_cache else None
        with cache_in(cache):
            code = adapter.run(selection, options, run, RunController(store, run))
    except KeyboardInterrupt:
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
    return code


def _write_reports(config: Config, root: Path, run: RunRecord) -> None:
    from ._reporting.json_report import write_json_report
    from ._reporting.junit import write_junit_xml

    for value, writer in ((config.junit_xml, write_junit_xml), (config.json, write_json_report)):
        if value is None:
            continue
        path = Path(value)
        try:
            writer(run, path)
        except OSError as exc:
            raise UsageError(f"cannot write report {path}: {exc.strerror or exc}") from None
