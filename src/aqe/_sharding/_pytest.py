"""The partition applied where pytest chooses the run's tests.

``aqe run --shard I/N`` plans at the file level (``_files``): the engine's shallow
collection finds the test files without importing them, the plan is made from those
files, their sizes and the history, and the coordinator keeps only this shard's file
nodes, which its workers collect (``_select`` tells them which tests of a file cut
between shards are theirs). When pytest's own arguments select tests inside files
(``-k``, ``-m``, ``--deselect``, node ids, ``--lf`` and the like), the plan needs
every selected id: the coordinator collects the whole suite, plans it, and deselects
the other shards' tests in ``pytest_collection_modifyitems``, last, as pytest's own
deselection is done (``--verbose`` says why). ``aqe shards N`` makes the same plan
from the same collection and prints it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .._compat import nodes
from .._engine._order import dependencies, order_bound_files, serial_group
from .._engine._plan import Estimate
from .._exceptions import UsageError
from .._reporting.json_report import ShardInfo
from .._store import Store
from ._estimate import COLLECT_PRIOR, DEFAULT_PER_TEST, per_test_cost, predict
from ._files import FilePlan, bound_files, plan_files
from ._partition import Constraints, Partition, partition
from ._select import PLAN_ENV, WorkerPlan, import_what_they_import

if TYPE_CHECKING:
    from .._engine._plugin import ShallowCollector


@dataclass(frozen=True, slots=True)
class History:
    """What the partition reads of the history (the same in every job)."""

    estimates: Mapping[str, Estimate]
    collect: Mapping[str, float]
    #: aqe's own seconds per test (``_estimate.per_test_cost``).
    per_test: float = DEFAULT_PER_TEST

    @classmethod
    def of(cls, store: Store | None) -> History:
        """What ``store`` knows (nothing without one), as ``aqe run`` reads it."""
        if store is None:
            return cls({}, {})
        known = store.estimates()
        return cls(
            {n: Estimate(setup=e.setup, total=e.total) for n, e in known.items()},
            store.collect_estimates(),
            per_test_cost(store),
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
    predicted = predict(ids, sizes, history.estimates, history.collect, history.per_test)
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


def describe(info: ShardInfo, files: int | None = None, of_files: int = 0) -> str:
    """The line a shard run starts with (``files``: planned by files, this shard's
    files of ``of_files``; its test counts are then the plan's units)."""
    others = info.total - info.tests
    if not info.total:
        return f"aqe: shard {info.index}/{info.count}: no tests selected"
    if not info.tests:
        return (
            f"aqe: shard {info.index}/{info.count} has no tests: all {info.total} "
            f"selected tests are in the other shards (plan {info.digest})"
        )
    if files is not None:
        return (
            f"aqe: shard {info.index}/{info.count}: {files} of {of_files} test files "
            f"(about {info.tests} of {info.total} tests), predicted {info.predicted:.1f}s "
            f"(shards {min(info.planned):.1f}-{max(info.planned):.1f}s); the other files "
            f"are the other shards' (plan {info.digest})"
        )
    return (
        f"aqe: shard {info.index}/{info.count}: {info.tests} of {info.total} tests, "
        f"predicted {info.predicted:.1f}s (shards {min(info.planned):.1f}-"
        f"{max(info.planned):.1f}s); {others} deselected, in other shards (plan {info.digest})"
    )


#: Options whose selection needs the whole suite's ids (pytest's option names). ``-m``
#: is not one: it deselects test by test where each shard collects its files (so the
#: shards' union is still the selection), and projects keep one in their ``addopts``
#: (click's ``-m 'not stress'``); the history the plan reads holds only what ran.
#: ``-k`` names a few tests ad hoc: the whole suite is collected, so a ``-k`` that
#: matches nothing still exits 5 in every shard.
_WHOLE_SUITE = (
    ("keyword", "-k selects tests inside files"),
    ("deselect", "--deselect names tests inside files"),
    ("lf", "--lf selects from the whole suite's last failures"),
    ("failedfirst", "--ff orders the whole suite"),
    ("newfirst", "--nf orders the whole suite"),
    ("stepwise", "--sw selects from the whole suite"),
    ("stepwise_skip", "--sw-skip selects from the whole suite"),
)


def full_collection_reason(config: pytest.Config) -> str | None:
    """Why this run's shard cannot be planned from its files alone, or None."""
    for name, why in _WHOLE_SUITE:
        if getattr(config.option, name, None):
            return why
    if any("::" in str(arg) for arg in config.args):
        return "node ids on the command line name tests inside files"
    return None


def plan_by_files(
    files: Sequence[nodes.Collector],
    direct: Sequence[nodes.Item],
    count: int,
    history: History,
    root: Path,
) -> FilePlan:
    """The file-level plan of the file nodes shallow collection found (``direct``:
    items it gave outside any file node)."""
    sizes: dict[str, int] = {}
    paths: dict[str, Path] = {}
    for node in files:
        paths[node.nodeid] = Path(node.path)
        try:
            sizes[node.nodeid] = os.stat(node.path).st_size
        except OSError:
            sizes[node.nodeid] = 0
    direct_ids = list(dict.fromkeys(item.nodeid for item in direct))
    plan = plan_files(
        sizes,
        count,
        history.estimates,
        history.collect,
        direct=direct_ids,
        bound=bound_files(paths, root),
        per_test=history.per_test,
    )
    known = any(n.split("::", 1)[0] in sizes for n in history.estimates)
    return replace(plan, partition=replace(plan.partition, from_history=known))


class ShardSelector:
    """In the coordinator of ``aqe run --shard I/N``: keeps this shard's files (or,
    after a full collection, its tests). ``collector`` is the engine's shallow
    collector; None plans from a full collection."""

    def __init__(
        self,
        index: int,
        count: int,
        history: History,
        told: Callable[[ShardInfo], None],
        collector: ShallowCollector | None = None,
    ) -> None:
        self.index = index
        self.count = count
        self.history = history
        self.told = told
        self.collector = collector
        self.info: ShardInfo | None = None
        self.pid = os.getpid()
        self.by_files = False
        self.plan_file: Path | None = None
        #: Why this shard plans from the whole suite's collection, if it does.
        self.reason: str | None = None
        # An outer shard run's plan (aqe run inside a test) is not this run's.
        os.environ.pop(PLAN_ENV, None)

    def pytest_configure(self, config: pytest.Config) -> None:
        self.reason = full_collection_reason(config)
        if self.collector is not None and self.reason is not None:
            self.collector.defer = False

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[nodes.Item]
    ) -> None:
        if os.getpid() != self.pid or self.info is not None:
            return  # a worker collecting its files: _select applies the plan there
        if self.collector is not None and self.collector.defer:
            self._keep_files(config, items)
        else:
            self._keep_tests(config, items)

    def _keep_tests(self, config: pytest.Config, items: list[nodes.Item]) -> None:
        if self.reason is not None and config.option.verbose > 0:
            shard = f"{self.index}/{self.count}"
            _say(config, f"aqe: shard {shard}: planned from the whole suite's collection "
                         f"(every test file imported): {self.reason}")  # fmt: skip
        plan = plan_items(items, self.count, self.history)
        self.info = info = shard_info(plan, self.index)
        mine = set(plan.shards[self.index - 1].nodeids)
        keep = [item for item in items if item.nodeid in mine]
        drop = [item for item in items if item.nodeid not in mine]
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep
        _say(config, describe(info))
        self.told(info)

    def _keep_files(self, config: pytest.Config, items: list[nodes.Item]) -> None:
        assert self.collector is not None
        self.by_files = True
        files = self.collector.files
        plan = plan_by_files(files, items, self.count, self.history, config.rootpath)
        self.info = info = shard_info(plan.partition, self.index)
        mine = set(plan.files_of(self.index))
        dropped = [node for node in files if node.nodeid not in mine]
        if dropped:
            # Before the workers fork: what pytest's process would have imported.
            import_what_they_import(
                [Path(node.path) for node in files],
                [str(node.path) for node in dropped],
                config.getini("python_files"),
            )
        files[:] = [node for node in files if node.nodeid in mine]
        ids = set(plan.partition.shards[self.index - 1].nodeids)
        keep = [item for item in items if item.nodeid in ids]
        drop = [item for item in items if item.nodeid not in ids]
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep
        cut = {
            path: (planned, plan.shards_of[path])
            for path, planned in plan.cut.items()
            if path in mine
        }
        if dropped or cut:
            worker_plan = WorkerPlan(
                os.getpid(), self.index, tuple(str(node.path) for node in dropped), cut
            )
            handle, name = tempfile.mkstemp(prefix="aqe-shard-", suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(worker_plan.to_json())
            self.plan_file = Path(name)
            os.environ[PLAN_ENV] = name  # the workers, forked or spawned, inherit it
        _say(config, describe(info, files=len(files), of_files=len(plan.shards_of)))
        self.told(info)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # A shard with nothing to do is no failure when the others have tests; planned
        # by files, a shard whose files hold no test of its own is one too.
        if self.info is None or not self.info.total or os.getpid() != self.pid:
            return
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            if not self.info.tests or self.by_files:
                session.exitstatus = pytest.ExitCode.OK

    def pytest_unconfigure(self) -> None:
        if self.plan_file is not None and os.getpid() == self.pid:
            os.environ.pop(PLAN_ENV, None)
            self.plan_file.unlink(missing_ok=True)
            self.plan_file = None


def _say(config: pytest.Config, text: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(text)


class _PlanOnly:
    def __init__(self, count: int, history: History) -> None:
        from .._engine._plugin import ShallowCollector

        self.count = count
        self.history = history
        self.collector = ShallowCollector(True)
        self.plan: Partition | None = None
        self.errors: list[str] = []

    def pytest_configure(self, config: pytest.Config) -> None:
        if full_collection_reason(config) is not None:
            self.collector.defer = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        return self.collector.collect(session)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(f"error collecting {report.nodeid}:\n{report.longreprtext}")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[nodes.Item]
    ) -> None:
        if self.collector.defer:
            files = self.collector.files
            self.plan = plan_by_files(
                files, items, self.count, self.history, config.rootpath
            ).partition
        else:
            self.plan = plan_items(items, self.count, self.history)


def plan_only(args: Sequence[str], root: Path, count: int, history: History) -> Partition:
    """``aqe shards N``: pytest's collection with the run's arguments (down to file
    nodes, as a shard run plans), then the plan. pytest's terminal plugin stays (its
    output is held back): it defines options a project's ``addopts`` may give
    (``--tb``, ``-r``)."""
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
