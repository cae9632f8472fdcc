"""One ``aqe run``: open the history, run through an adapter, write every report.

Reports and the history's closing row are written in a ``finally``: a failing or
interrupted run still leaves its JUnit XML, JSON and history behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from . import _registry
from ._adapters import Adapter, RunOptions, Selection
from ._affected import left_out
from ._exceptions import AqeError, PluginError, StoreError, UsageError
from ._git import code_identity, git_state
from ._model import FAILING_OUTCOMES, RunRecord, TestResult
from ._options import Config
from ._signals import handling, received
from ._store import DurationEstimate, Store, masked, open_existing, open_history
from ._store._select import scheme_of
from ._trace import mark
from .plugins import (
    REPORTERS,
    CollectionFailed,
    Event,
    FilesCollected,
    LiveReporter,
    Reporter,
    RunRequest,
    RunSummary,
    ShardInfo,
    TestFinished,
)

if TYPE_CHECKING:
    from ._reporting.html import TrendPoint


class RunRecorder:
    """The adapter's :class:`~aqe.plugins.RunEvents`: history in, the run's events out
    to the record, the store (a batch per ``emit``) and the live reporters."""

    def __init__(
        self, store: Store | None, run: RunRecord, live: Sequence[LiveReporter] = ()
    ) -> None:
        self.store = store
        self.run = run
        self.live = list(live)
        self.failed: AqeError | None = None
        self._known: frozenset[str] | None = None
        #: The shard the adapter kept (``--shard I/N``), for the reports.
        self.shard: ShardInfo | None = None

    def estimates(self) -> Mapping[str, DurationEstimate]:
        return {} if self.store is None else self.store.estimates()

    def file_estimates(self) -> Mapping[str, float]:
        return {} if self.store is None else self.store.collect_estimates()

    def emit(self, *events: Event) -> None:
        results: list[TestResult] = []
        collect_times: dict[str, float] = {}
        for event in events:
            if isinstance(event, TestFinished):
                self.run.results.append(event.result)
                results.append(event.result)
            elif isinstance(event, FilesCollected):
                collect_times.update(event.seconds)
            elif isinstance(event, CollectionFailed):
                self.run.collection_errors.append((event.location, event.text))
            elif isinstance(event, RunSummary):
                self._summarize(event)
            elif isinstance(event, ShardInfo):
                self.shard = event
        self.record(results, collect_times)
        for event in events:
            self._tell_live(event)

    def _summarize(self, summary: RunSummary) -> None:
        run = self.run
        if summary.workers is not None:
            run.workers = summary.workers
        run.collected, run.ran = summary.collected, summary.ran
        run.tail_idle = dict(summary.tail_idle)
        if summary.junit is not None:
            run.junit = summary.junit

    def _tell_live(self, event: Event) -> None:
        for reporter in list(self.live):
            try:
                reporter.event(event)
            except Exception as exc:  # reported once the run is over, not mid-loop
                self.live.remove(reporter)
                self.failed = self.failed or PluginError(
                    f"reporter {reporter.name!r} failed on an event: {type(exc).__name__}: {exc}"
                )

    def record(self, results: Sequence[TestResult], collect_times: Mapping[str, float]) -> None:
        if self.store is None:
            return
        try:
            if results:
                self.store.add_results(self.run.run_id, results)
                self.store.add_failure_texts(self.run.run_id, self._failure_texts(results))
            if collect_times:
                self.store.add_collect_times(self.run.run_id, collect_times)
        except StoreError as exc:
            # The history went away mid-run (a server lost, a disk full): the run and
            # its reports go on; the error is one line once it is over, never a traceback.
            self.store = None
            self.failed = self.failed or exc

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


def masked_argument(argument: str) -> str:
    """A command-line argument with any URL's password hidden (``--history=URL`` too)."""
    if argument.startswith("-") and "=" in argument:
        flag, _, value = argument.partition("=")
        return f"{flag}={masked(value)}"
    return masked(argument)


def history_location(config: Config, root: Path) -> str:
    """How messages name the configured history: its path, or its URL with the
    password masked."""
    if scheme_of(config.history_path) is not None:
        return masked(config.history_path)
    return str(history_path(config, root))


def open_existing_store(config: Config, root: Path) -> Store | None:
    """The configured history if it exists, for read-only commands (which never
    create one): None when history is off or its file is missing; a URL is opened."""
    if not config.history:
        return None
    if scheme_of(config.history_path) is not None:
        return open_existing(config.history_path)
    return open_existing(history_path(config, root))


def open_store(config: Config, root: Path) -> Store | None:
    """The configured history: a path (SQLite), or a URL whose scheme names a store."""
    if not config.history:
        return None
    if scheme_of(config.history_path) is not None:
        return open_history(config.history_path)
    return open_history(history_path(config, root))


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
        command=["aqe", *map(masked_argument, sys.argv[1:])],  # no password in history or reports
        root=str(root),
        workers=options.workers,
    )
    if selection.shard is not None and not getattr(adapter, "shards", False):
        raise UsageError(f"--shard: the {adapter.name} adapter cannot run a shard of a suite")
    reporters = chosen_reporters(config, root, adapter)  # a broken one fails before the run
    run.git_commit, run.git_dirty = git_state(root)
    run.code_id = code_identity(root, run.git_commit, run.git_dirty)
    store = open_store(config, root)
    live = [reporter for reporter, _ in reporters if isinstance(reporter, LiveReporter)]
    recorder = RunRecorder(store, run, live)
    code = 3
    try:
        if store is not None:
            store.begin_run(run)
        with _terminal_replaced(reporters) as held:
            code = _run_adapter(adapter, options.request(selection, run.run_id), recorder)
        if code in (3, 4) and held is not None:
            # The replacing reporter prints results; an error the run printed must show.
            sys.stderr.write("".join(held.getvalue().splitlines(keepends=True)[-40:]))
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
                _hand_history(reporters, store, run)
                _hand_shard(reporters, recorder.shard)
                run.deselected = left_out()  # --affected/--changed: named in the reports
                _write_reports(reporters, run)
            finally:
                if store is not None:
                    with contextlib.suppress(StoreError):
                        store.finish_run(run)
                    store.close()
    if recorder.failed is not None:
        raise recorder.failed
    if config.auto_quarantine and config.history and code in (0, 1):
        auto_quarantine(config, root)
    return code


def _run_adapter(adapter: Adapter, request: RunRequest, recorder: RunRecorder) -> int:
    """The adapter's run; a third-party adapter's exception is one line naming it."""
    if adapter.name == "pytest":
        return adapter.run(request, recorder)
    try:
        return int(adapter.run(request, recorder))
    except (AqeError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise PluginError(
            f"adapter {adapter.name!r} failed during the run: {type(exc).__name__}: {exc}"
        ) from None


def auto_quarantine(config: Config, root: Path) -> None:
    """Quarantine the tests the history shows flaky past the configured bar."""
    from ._knowledge import _commands, _quarantine

    store = open_store(config, root)
    assert store is not None  # auto-quarantine needs the history
    with store:
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


#: The reporters a run writes, each with its destination.
Chosen: TypeAlias = list[tuple[Reporter, Path | None]]

#: Set by AI coding agents in the commands they run (Claude Code, Codex, others).
AGENT_VARIABLES = ("CLAUDECODE", "CODEX_THREAD_ID", "AI_AGENT")


def console_reporter(config: Config, environ: Mapping[str, str] = os.environ) -> str | None:
    """The reporter that writes to the console besides pytest's terminal: ``--reporter``,
    else ``agent`` under an AI coding agent; None (or ``pytest``): pytest's output alone."""
    name = config.reporter
    if name is None and any(environ.get(variable) for variable in AGENT_VARIABLES):
        name = "agent"
    return None if name in (None, "pytest") else name


def chosen_reporters(config: Config, root: Path, adapter: Adapter) -> Chosen:
    """Each report asked for, by reporter name: ``--junit-xml``, ``--json``, then
    ``[tool.aqe] reports`` (``"name"`` or ``"name=PATH"``); the terminal summary
    when the adapter prints none of its own. A reporter's module is imported only then."""
    asked: list[tuple[str, str | None]] = []
    if config.junit_xml is not None:
        asked.append(("junit", config.junit_xml))
    if config.json is not None:
        asked.append(("json", config.json))
    if config.html is not None:
        asked.append(("html", config.html))
    for spec in config.reports:
        name, _, given = spec.partition("=")
        asked.append((name.strip(), given.strip() or None))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        asked.append(("github", None))  # annotations and the job summary
    console = console_reporter(config)
    if console is not None:
        asked.append((console, None))
    chosen: Chosen = []
    for name, destination in dict.fromkeys(asked):  # each once, in order
        reporter = load_reporter(name)
        path = None if destination is None else Path(destination)
        chosen.append((reporter, path))
    replaced = any(getattr(reporter, "replaces_terminal", False) for reporter, _ in chosen)
    if not replaced and not getattr(adapter, "prints_summary", False):
        chosen.append((load_reporter("terminal"), None))
    return chosen


@contextlib.contextmanager
def _terminal_replaced(reporters: Chosen) -> Iterator[io.StringIO | None]:
    """Hold what the run prints when a chosen reporter replaces the terminal (the
    ``agent`` reporter prints the failures instead); otherwise change nothing."""
    if not any(getattr(reporter, "replaces_terminal", False) for reporter, _ in reporters):
        yield None
        return
    held = io.StringIO()
    with contextlib.redirect_stdout(held):
        yield held


def _hand_history(reporters: Chosen, store: Store | None, run: RunRecord) -> None:
    """The HTML report's flaky trend: each recent run's final outcomes, from the history."""
    from ._reporting.html import HtmlReporter

    wanting = [reporter for reporter, _ in reporters if isinstance(reporter, HtmlReporter)]
    if store is None or not wanting:
        return
    with contextlib.suppress(StoreError):
        points = tuple(history_trend(store))
        for reporter in wanting:
            reporter.trend = points


def _hand_shard(reporters: Chosen, shard: ShardInfo | None) -> None:
    """Which shard the run was (``--shard I/N``), for the reporters that carry it."""
    if shard is None:
        return
    for reporter, _ in reporters:
        if hasattr(reporter, "shard"):
            reporter.shard = shard


def record_run(store: Store, run: RunRecord) -> None:
    """A finished run made elsewhere (``aqe merge``'s) into the history, as a run's
    own recorder writes it: its results, then its closing row."""
    with store:
        store.begin_run(run)
        recorder = RunRecorder(store, run)
        recorder.record(run.results, {})
        if recorder.failed is not None:
            raise recorder.failed
        store.finish_run(run)


def history_trend(store: Store, until: float | None = None, window: int = 30) -> list[TrendPoint]:
    """The last ``window`` finished runs (started by ``until``), oldest first, from the
    final counts each run's row keeps (cheap at any suite size)."""
    from ._reporting.html import TrendPoint

    rows = [
        row
        for row in store.recent_runs(window if until is None else window * 4)
        if row.end is not None and (until is None or row.start <= until)
    ][:window]
    return [
        TrendPoint(
            row.run_id,
            row.start,
            sum(row.counts.values()),
            sum(n for name, n in row.counts.items() if name in FAILING_OUTCOMES),
            row.counts.get("flaky", 0),
        )
        for row in reversed(rows)
    ]


def load_reporter(name: str) -> Reporter:
    entry = _registry.find(REPORTERS, name)
    factory = _registry.load(entry)
    try:
        reporter = factory() if callable(factory) else factory
    except Exception as exc:
        raise PluginError(
            f"{_registry.describe(entry)} failed to start: {type(exc).__name__}: {exc}"
        ) from None
    _registry.check(entry, reporter, ("write",))
    if not isinstance(getattr(reporter, "name", None), str):
        raise PluginError(f"{_registry.describe(entry)} lacks a name")
    assert isinstance(reporter, Reporter)
    return reporter


def _write_reports(reporters: Chosen, run: RunRecord) -> None:
    """Every chosen report; a failing one does not stop the others."""
    failed: AqeError | None = None
    for reporter, path in reporters:
        try:
            reporter.write(run, path)
        except OSError as exc:
            failed = failed or UsageError(f"cannot write report {path}: {exc.strerror or exc}")
        except AqeError as exc:
            failed = failed or exc
        except Exception as exc:
            failed = failed or PluginError(
                f"reporter {reporter.name!r} failed: {type(exc).__name__}: {exc}"
            )
    if failed is not None:
        raise failed


def stored_run(store: Store, run_id: str | None) -> RunRecord:
    """A run as the history keeps it (no captured output, no per-worker idle time):
    ``run_id``, or the latest."""
    rows = store.recent_runs(500)
    row = next((r for r in rows if run_id in (None, r.run_id)), None)
    if row is None:
        raise UsageError(
            f"no run {run_id!r} in the history (aqe history lists them)"
            if run_id
            else "no runs in the history yet: run aqe run first"
        )
    return RunRecord(
        run_id=row.run_id,
        start=row.start,
        command=list(row.command),
        root=row.root,
        workers=row.workers,
        end=row.end,
        git_commit=row.git_commit,
        git_dirty=row.git_dirty,
        code_id=row.code_id,
        exit_code=row.exit_code,
        results=store.results_for_run(row.run_id),
    )
