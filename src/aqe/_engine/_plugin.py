"""aqe's pytest plugin for the coordinator: shallow collection and the run loop.

pytest's own collection runs in the coordinator, with every conftest, ini option,
plugin and argument, but it stops at file nodes: importing test modules and
building items is the expensive part, and workers do it for their share of files
in parallel. Options whose filtering needs the whole suite at once (``--lf``,
``--ff``, ``--nf``, ``--sw``) and node-id arguments are collected fully here
instead, so selection always behaves exactly as with plain pytest.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

from .._compat import CollectReport, nodes
from .._model import RunRecord
from .._trace import mark
from . import _coverage, _identity, _limits, _order, _retry
from ._backend import BackendContext, BackendFactory, Launcher, LocalBackend
from ._coordinator import Coordinator, pool_size
from ._fork import ForkLauncher
from ._limits import EngineSettings
from ._recorder import ProgressView, RunSink
from ._spawn import SpawnLauncher
from ._worker import run_worker

#: Options whose item selection depends on the whole collected suite.
_GLOBAL_SELECTION = ("lf", "failedfirst", "newfirst", "stepwise", "stepwise_skip")


def register_markers(config: pytest.Config) -> None:
    """aqe's markers (timeout, flaky, serial, depends), unless a plugin owns them,
    and pytest-xdist's identity fixtures; in the coordinator and in spawned
    workers alike, for ``--strict-markers``."""
    _limits.register_marker(config)
    _retry.register_marker(config)
    _order.register_marker(config)
    _order.register_depends(config)
    _identity.register_fixtures(config)


class ShallowCollector:
    """Runs pytest's collection but stops at file nodes, which workers expand."""

    def __init__(self, defer: bool | None = None) -> None:
        self.defer = defer
        self.files: list[nodes.Collector] = []

    @staticmethod
    def can_defer(config: pytest.Config) -> bool:
        if config.option.collectonly:
            return False
        return not any(getattr(config.option, name, False) for name in _GLOBAL_SELECTION)

    def collect(self, session: pytest.Session) -> bool | None:
        if self.defer is None:
            self.defer = self.can_defer(session.config)
        if not self.defer:
            return None
        original = session.genitems

        def shallow(node: nodes.Item | nodes.Collector) -> Iterator[nodes.Item]:
            if isinstance(node, nodes.Item):
                yield from original(node)
            elif isinstance(node, nodes.File):
                self.files.append(node)
            else:
                rep, duplicate = session._collect_one_node(node, True)
                if rep.passed:
                    for child in rep.result:
                        yield from shallow(child)
                if not duplicate:
                    node.ihook.pytest_collectreport(report=rep)

        session.genitems = shallow  # type: ignore[method-assign]
        try:
            session.perform_collect()
        finally:
            del session.genitems
        return True


def _note(config: pytest.Config, text: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(text)


class EnginePlugin:
    """Registered by the adapter for ``aqe run``; owns collection and the run loop."""

    def __init__(
        self,
        run: RunRecord,
        sink: RunSink,
        settings: EngineSettings,
        backend: BackendFactory | None = None,
    ) -> None:
        self.run = run
        self.sink = sink
        self.settings = settings
        #: Where workers start (``--backend``); the adapter loads it before pytest runs.
        self.backend: BackendFactory = backend or LocalBackend()
        self.collector = ShallowCollector()
        #: Until the first fork: who decided as the controller (see ``_local``).
        self.watch = _identity.EnvironmentWatch()
        self.watch.start()
        self.readers: list[str] = []
        #: Skips and errors of the collection done in this process (directories,
        #: conftests; whole files when it is not deferred), for the coordinator to record.
        self.collect_reports: list[CollectReport] | None = []

    def pytest_configure(self, config: pytest.Config) -> None:
        register_markers(config)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        _identity.as_controller(session.config)  # every plugin has configured

    def pytest_collectreport(self, report: CollectReport) -> None:
        if self.collect_reports is not None and not report.passed:
            self.collect_reports.append(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: Any) -> tuple[str, str, Any] | None:
        # A failed attempt aqe runs again (pytest-rerunfailures' word for it).
        if getattr(report, "outcome", None) == "rerun":
            return "rerun", "R", ("RERUN", {"yellow": True})
        # A quarantined test that failed: recorded and shown, but not a failure.
        if getattr(report, "outcome", None) == "quarantined":
            return "quarantined", "Q", ("QUARANTINED", {"yellow": True})
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        mark("collection")
        # A backend with workers elsewhere may start them collecting now, beside ours.
        prepare = getattr(self.backend, "prepare", None)
        if callable(prepare):
            params = session.config.invocation_params
            prepare(tuple(params.args), str(params.dir))
        try:
            return self.collector.collect(session)
        finally:
            mark("collection-end")

    def _launcher(self, session: pytest.Session) -> Launcher:
        """The run's backend: the chosen ``aqe.backends`` plugin, given what it needs
        and aqe's own choice on this machine (``_local``)."""
        count = pool_size(
            self.settings.workers,
            len(self.collector.files) + len(session.items),
            self.collector.files,
            self.settings.split,
        )
        _identity.fleet(session.config).count = count  # before any worker starts
        #: What read PYTEST_XDIST_WORKER while pytest started (see ``_local``).
        self.readers = self.watch.stop()
        params = session.config.invocation_params
        context = BackendContext(
            workers=count,
            args=tuple(params.args),
            cwd=str(params.dir),
            local=lambda: self._local(session, count),
            workerinput=lambda slot: _identity.configure_node(session.config, slot).workerinput,
            files=tuple(node.nodeid for node in self.collector.files),
        )
        return self.backend.start(context)

    def _local(self, session: pytest.Session, count: int) -> Launcher:
        def spawner() -> Launcher:
            return SpawnLauncher(session.config, bool(self.collector.defer))

        # Never fork a process that runs threads (the fork launcher checks again
        # before every fork and falls back to spawning), nor where a plugin gives
        # each worker a configuration of its own (see ``own_configure_keys``).
        readers = self.readers
        if self.settings.start_method == "spawn" or not ForkLauncher.can_fork():
            return spawner()
        if self.settings.start_method == "auto" and count > 1:
            if readers:
                _note(
                    session.config,
                    f"aqe: {', '.join(readers[:3])} asked which xdist worker it runs in "
                    "while pytest started: workers start as fresh interpreters, each to "
                    "decide for itself",
                )
                return spawner()
            if keys := _identity.own_configure_keys(session.config, count):
                _note(
                    session.config,
                    f"aqe: plugins give each worker its own {', '.join(keys[:3])} "
                    "(pytest_configure_node): workers start as fresh interpreters, "
                    "each configured with it",
                )
                return spawner()
        direct = {item.nodeid: item for item in session.items}
        # A partial, not a closure: one Python frame less under every test.
        entry = functools.partial(run_worker, session, files=self.collector.files, items=direct)
        return ForkLauncher(entry, spawner)

    def pytest_unconfigure(self) -> None:
        self.watch.stop()  # a run that never reached its loop

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        if session.config.option.collectonly:
            return None
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        view: ProgressView | None = reporter if hasattr(reporter, "progress") else None
        coordinator = Coordinator(
            session,
            self.run,
            self.sink,
            view,
            self.collector.files,
            list(session.items),
            self.settings,
        )
        coordinator.record_collect_reports(self.collect_reports or [])
        self.collect_reports = None  # from here on, reports are the workers' (replayed)
        mark("loop")
        try:
            coordinator.execute(
                self._launcher(session),
                lambda: SpawnLauncher(session.config, bool(self.collector.defer)),
            )
        finally:
            _identity.nodes_down(session.config)
            # Every worker has exited: pytest-cov reports after this hook returns.
            _coverage.combine_workers()
            if view is not None and reporter is not None:
                reporter.stop_live()
                reporter.tail_idle = self.run.tail_idle
        mark("loop-end")
        session.testscollected = coordinator.known
        if self.settings.fail_on_flaky and coordinator.counts.get("flaky"):
            session.testsfailed += 1  # exit 1: a test passed only on a retry
        if coordinator.usage_error:
            raise pytest.UsageError(coordinator.usage_error)
        if coordinator.stops.exit_request is not None:
            # As in pytest's own session: its banner, its return code (2 if None).
            raise pytest.exit.Exception(*coordinator.stops.exit_request)
        if coordinator.interrupted:
            raise session.Interrupted(coordinator.interrupted)
        return True
