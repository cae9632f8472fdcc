"""aqe's pytest plugin for the coordinator: shallow collection and the run loop.

pytest's own collection runs in the coordinator, with every conftest, ini option,
plugin and argument, but it stops at file nodes: importing test modules and
building items is the expensive part, and workers do it for their share of files
in parallel. Options whose filtering needs the whole suite at once (``--lf``,
``--ff``, ``--nf``, ``--sw``) and node-id arguments are collected fully here
instead, so selection always behaves exactly as with plain pytest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _pytest import nodes

from .._model import RunRecord
from ._coordinator import Coordinator, ProgressView, RunSink

#: Options whose item selection depends on the whole collected suite.
_GLOBAL_SELECTION = ("lf", "failedfirst", "newfirst", "stepwise", "stepwise_skip")


class EnginePlugin:
    """Registered by the CLI for ``aqe run``; owns collection and the run loop."""

    def __init__(self, run: RunRecord, sink: RunSink, workers: int) -> None:
        self.run = run
        self.sink = sink
        self.workers = workers
        self.files: list[nodes.Collector] = []
        self.defer = True

    def _can_defer(self, config: pytest.Config) -> bool:
        if any(getattr(config.option, name, False) for name in _GLOBAL_SELECTION):
            return False
        if config.option.collectonly:
            return False
        # A forked child of a threaded process can deadlock; collect fully and
        # let the zygote fork from here only when single-threaded.
        return threading.active_count() == 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        self.defer = self._can_defer(session.config)
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

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        if session.config.option.collectonly:
            return None
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        view: ProgressView | None = reporter if hasattr(reporter, "progress") else None
        coordinator = Coordinator(
            session, self.run, self.sink, view, self.files, list(session.items)
        )
        try:
            coordinator.execute(self.workers)
        finally:
            if view is not None:
                reporter.stop_live()
                reporter.tail_idle = self.run.tail_idle
        session.testscollected = coordinator.known
        return True
