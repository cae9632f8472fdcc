"""The partition applied where pytest chooses the run's tests.

``aqe run --shard I/N`` collects the whole suite in the coordinator (the partition
needs every collected id, after ``-k``, ``-m`` and ``--deselect``), plans it, and
deselects the other shards' tests in ``pytest_collection_modifyitems``, last, as
pytest's own deselection is done: they are counted as deselected, never run, and
the engine plans only this shard's tests. ``aqe shards N`` runs the same collection
(``--collect-only``) and prints the plan.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from .._compat import nodes
from .._engine._order import dependencies, order_bound_files, serial_group
from .._engine._plan import Estimate
from .._exceptions import UsageError
from .._reporting.json_report import ShardInfo
from .._store import Store
from ._estimate import COLLECT_PRIOR, predict
from ._partition import Constraints, Partition, partition


@dataclass(frozen=True, slots=True)
class History:
    """What the partition reads of the history (the same in every job)."""

    estimates: Mapping[str, Estimate]
    collect: Mapping[str, float]

    @classmethod
    def of(cls, store: Store | None) -> History:
        """What ``store`` knows (nothing without one), as ``aqe run`` reads it."""
        if store is None:
            return cls({}, {})
        known = store.estimates()
        return cls(
            {n: Estimate(setup=e.setup, total=e.total) for n, e in known.items()},
            store.collect_estimates(),
        )


def plan_items(items: Sequence[nodes.Item], count: int, history: History) -> Partition:
    """The partition of pytest's collected ``items`` into ``count`` shards (its
    ``from_history`` says whether the history knew any of them)."""
    ids = list(dict.fromkeys(item.nodeid for item in items))
    sizes: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path not in sizes:
            try:
                sizes[path] = os.stat(item.path).st_size
            except OSError:
                sizes[path] = 0
    predicted = predict(ids, sizes, history.estimates, history.collect)
    # Every shard collects the whole suite (the partition needs every id), so a file's
    # collection costs every shard the same and balances nothing: no collection cost.
    rules = constraints_of(items, predicted.sticky)
    return replace(partition(predicted.tests, count, rules), from_history=predicted.from_history)


def constraints_of(
    items: Sequence[nodes.Item],
    sticky: frozenset[str],
    collect: Mapping[str, float] | None = None,
) -> Constraints:
    """Serial groups and dependencies bind tests; sticky files and unittest classes
    stay whole."""
    groups: dict[str, set[str]] = {}
    bonds: list[frozenset[str]] = []
    ids = [item.nodeid for item in items]
    for item in items:
        group = serial_group(item)
        if group is not None:
            groups.setdefault(group, set()).add(item.nodeid)
        refs = dependencies(item)
        if refs:
            targets = {item.nodeid}
            for ref in refs:
                targets.update(n for n in ids if n == ref or n.startswith(ref + "["))
            bonds.append(frozenset(targets))
    bonds.extend(frozenset(members) for _, members in sorted(groups.items()))
    unittest_files = order_bound_files(items)
    whole_scopes = frozenset(
        item.nodeid.rsplit("::", 1)[0]
        for item in items
        if item.nodeid.split("::", 1)[0] in unittest_files and item.nodeid.count("::") >= 2
    )
    return Constraints(
        whole_files=sticky,
        whole_scopes=whole_scopes,
        bonds=tuple(bonds),
        collect_seconds=collect or {},
        collect_prior=COLLECT_PRIOR if collect is not None else 0.0,
    )


def shard_info(plan: Partition, index: int) -> ShardInfo:
    mine = plan.shards[index - 1]
    return ShardInfo(
        index=index,
        count=plan.count,
        tests=len(mine.nodeids),
        predicted=mine.predicted,
        planned=tuple(shard.predicted for shard in plan.shards),
        planned_tests=tuple(len(shard.nodeids) for shard in plan.shards),
        total=plan.total,
        digest=plan.digest,
    )


def describe(info: ShardInfo) -> str:
    """The line a shard run starts with."""
    others = info.total - info.tests
    if not info.total:
        return f"aqe: shard {info.index}/{info.count}: no tests selected"
    if not info.tests:
        return (
            f"aqe: shard {info.index}/{info.count} has no tests: all {info.total} "
            f"selected tests are in the other shards (plan {info.digest})"
        )
    return (
        f"aqe: shard {info.index}/{info.count}: {info.tests} of {info.total} tests, "
        f"predicted {info.predicted:.1f}s (shards {min(info.planned):.1f}-"
        f"{max(info.planned):.1f}s); {others} deselected, in other shards (plan {info.digest})"
    )


class ShardSelector:
    """In the coordinator of ``aqe run --shard I/N``: keeps this shard's tests."""

    def __init__(
        self, index: int, count: int, history: History, told: Callable[[ShardInfo], None]
    ) -> None:
        self.index = index
        self.count = count
        self.history = history
        self.told = told
        self.info: ShardInfo | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[nodes.Item]
    ) -> None:
        plan = plan_items(items, self.count, self.history)
        self.info = info = shard_info(plan, self.index)
        mine = set(plan.shards[self.index - 1].nodeids)
        keep = [item for item in items if item.nodeid in mine]
        drop = [item for item in items if item.nodeid not in mine]
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(describe(info))
        self.told(info)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # A shard with nothing to do is no failure when the others have tests.
        if self.info is not None and self.info.total and not self.info.tests:
            if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
                session.exitstatus = pytest.ExitCode.OK


class _PlanOnly:
    def __init__(self, count: int, history: History) -> None:
        self.count = count
        self.history = history
        self.plan: Partition | None = None
        self.errors: list[str] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(f"error collecting {report.nodeid}:\n{report.longreprtext}")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[nodes.Item]) -> None:
        self.plan = plan_items(items, self.count, self.history)


def plan_only(args: Sequence[str], root: Path, count: int, history: History) -> Partition:
    """``aqe shards N``: pytest's collection with the run's arguments, then the plan.
    pytest's terminal plugin stays (its output is held back): it defines options a
    project's ``addopts`` may give (``--tb``, ``-r``)."""
    from .._engine._plugin import register_markers

    class _Markers:
        def pytest_configure(self, config: pytest.Config) -> None:
            register_markers(config)

    planner = _PlanOnly(count, history)
    output, errors = io.StringIO(), io.StringIO()
    before = Path.cwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(errors):
            code = pytest.main(
                [*args, "--collect-only"], plugins=[planner, _Markers()]
            )
    finally:
        os.chdir(before)
    sys.stderr.write(errors.getvalue())
    if code == pytest.ExitCode.USAGE_ERROR:
        text = (output.getvalue() + errors.getvalue()).strip().splitlines()
        raise UsageError(text[0] if text else "pytest rejected the arguments")
    if planner.errors:
        sys.stderr.write("\n".join(planner.errors) + "\n")
    if planner.plan is None:
        return partition((), count)
    return planner.plan
