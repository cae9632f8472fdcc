"""The schedule: which worker collects which file and runs which test, and when.

Files are dealt to workers longest-first (LPT) by their estimated cost (history:
collection time plus the tests' durations; otherwise file size as a prior). Each
worker collects its own files, so collection runs in parallel, and all of them before
it runs any test, as pytest imports every test module first. A file's tests are
one unit run in pytest's order on one worker, as plain pytest would run them:
module fixtures are set up once, and tests that lean on state left by the tests
before them (common in suites written for sequential runners) still see it. Units
run longest first when history knows their durations, else (or with ``order``
"pytest") in pytest's order.

At the tail an idle worker steals: first files another worker has not collected
yet, then whole queued files, and only then the contiguous tail of a file, cut
where the class or function changes, when that pays for collecting the file again.
Splitting follows ``split``: ``auto`` cuts a file whose tests are
``unittest.TestCase`` methods only where the class changes (``setUpClass`` and
``tearDownClass`` then run once on each worker that takes part of a class, and a
class's tests keep their order, as under pytest-xdist's load scheduling), and inside
a class only when history shows that class dominating the run (see
``_dominant_classes``); it never cuts one whose classes are numbered
(``Test01_...``, ``Test02_...``: unittest's loader runs classes by name, so numbering
them is how a suite says one class sets up the next, as pyparsing's does), nor a
plain file whose module/class fixtures are expensive; ``file`` never splits;
``test`` splits any file. A worker is told to shut down only when no work can reach
it.
"""

from __future__ import annotations

import heapq
import re
import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field

from .._messages import Collect, RunTests, Shutdown, ToWorker

#: Keep at least this much estimated work (seconds) queued on a worker, so the
#: round trip to the coordinator never leaves it idle between tests. A worker is
#: topped up only once its queue has drained below half of it, so a suite of fast
#: tests costs one message per chunk, not one per test.
RUN_AHEAD = 0.05
#: ...and at most this many tests, so stealing at the tail still has material.
MAX_CHUNK = 64
#: Tests sent of a file nothing is known of, before its first result sizes the next
#: chunk: enough that the worker does not wait for that answer between tests.
PROBE = 4
#: Guess for a test nobody has measured and whose file has no measured tests.
DEFAULT_TEST_SECONDS = 0.01
#: A setup this long (and much longer than its file's usual setup) marks an
#: expensive module/class fixture whose tests must stay together.
STICKY_SETUP_SECONDS = 0.05
#: A unittest class whose history adds up to at least this share of one worker's
#: fair share of the run (the whole estimate over the workers) dominates it: it may be
#: cut between its own tests, since kept whole it alone would bound the run.
DOMINANT_CLASS_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Estimate:
    setup: float
    total: float


#: How files may be cut between workers (see the module docstring).
SPLIT_MODES = ("auto", "file", "test")
#: The order of the units on a worker: longest first once history knows their
#: durations, or always pytest's (suites whose tests lean on the files before them).
ORDERS = ("duration", "pytest")


@dataclass(slots=True)
class Unit:
    """Tests of one file that run together, in pytest's order, on one worker."""

    nodeids: deque[str]
    file: int  # index into the deferred file list, or -1 for coordinator-collected items
    est: float
    splittable: bool = True
    started: bool = False
    #: May be cut only where the class changes (unittest files under ``split=auto``),
    #: or inside a class the planner found dominating.
    classes_only: bool = False
    #: The last test of this unit sent to its worker: whether cutting right after
    #: it falls on a class boundary.
    last_sent: str = ""


@dataclass(slots=True)
class WorkerPlan:
    files_todo: list[int] = field(default_factory=list)
    collecting: set[int] = field(default_factory=set)
    collected: set[int] = field(default_factory=set)
    ready: list[Unit] = field(default_factory=list)
    outstanding: deque[tuple[str, float]] = field(default_factory=deque)
    outstanding_sum: float = 0.0
    #: Files this worker collects only for tests stolen from another worker.
    stolen: dict[int, set[str]] = field(default_factory=dict)
    shut_down: bool = False
    #: Tests have been sent: files that arrive from now on (stolen ones) are collected
    #: between tests; before, every file dealt to the worker is collected first.
    running: bool = False
    finished_at: float | None = None
    #: Retries placed here to run on another worker than the one they failed on:
    #: never stolen back.
    pinned: set[str] = field(default_factory=set)
    #: A slot for one test in isolation (a warm or cold tier): it neither steals
    #: nor is stolen from, and ends when its test has run.
    isolated: bool = False
    #: Seconds the test at the head of ``outstanding`` has been running (set by the
    #: coordinator). Durations are heavy-tailed: a test that has run long will
    #: likely run about as long again, whatever its estimate said.
    head_elapsed: float = 0.0
    #: No history: run files in pytest's order. "Longest first" would only follow file
    #: sizes, and suites lean on pytest's order: trio's test_trio_import re-imports
    #: trio and breaks the tests that run after it in the same process, which under
    #: pytest are the few files after it.
    in_order: bool = False
    #: The last tests sent said more would follow (``RunTests.more``).
    promised: bool = False

    def ready_est(self) -> float:
        return sum(unit.est for unit in self.ready)

    def add_ready(self, units: Iterable[Unit]) -> None:
        """Queue units behind a unit this worker has started: longest first when
        durations are known, else in pytest's file order (``in_order``)."""
        head = 1 if self.ready and self.ready[0].started else 0
        rest = self.ready[head:] + list(units)
        if self.in_order:
            rest.sort(key=lambda unit: unit.file)
        else:
            rest.sort(key=lambda unit: -unit.est)
        self.ready[head:] = rest

    def outstanding_est(self) -> float:
        return max(0.0, self.outstanding_sum) if self.outstanding else 0.0

    def busy_est(self) -> float:
        """Work already sent to the worker, judged by the running test's age too."""
        if not self.outstanding:
            return 0.0
        return max(self.outstanding_est(), self.head_elapsed + self.outstanding_est())

    def push(self, nodeid: str, est: float) -> None:
        self.outstanding.append((nodeid, est))
        self.outstanding_sum += est

    def pop(self, nodeid: str) -> bool:
        """Forget a finished (or crashed) test; usually the oldest one, so O(1)."""
        for position, (queued, est) in enumerate(self.outstanding):
            if queued == nodeid:
                del self.outstanding[position]
                self.outstanding_sum -= est
                if not self.outstanding:
                    self.outstanding_sum = 0.0
                return True
        return False


class Planner:
    def __init__(
        self,
        files: Sequence[str],
        file_sizes: Sequence[int],
        workers: int,
        estimates: Mapping[str, Estimate],
        collect_estimates: Mapping[str, float],
        direct_items: Sequence[tuple[str, str]] = (),
        split: str = "auto",
        order_bound: Iterable[str] = (),
        order: str = "duration",
    ) -> None:
        if split not in SPLIT_MODES:
            raise ValueError(f"split must be one of {SPLIT_MODES}, got {split!r}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.split = split
        #: Files that must not be split in ``auto`` mode (unittest.TestCase tests).
        self.order_bound: set[str] = set(order_bound)
        self.files = list(files)
        self._index_by_path = {path: i for i, path in enumerate(self.files)}
        self.estimates = estimates
        #: Units run in pytest's file order on every worker (else longest first).
        self._in_order = order == "pytest" or not estimates
        self.workers = [WorkerPlan(in_order=self._in_order) for _ in range(workers)]
        self.owner: dict[int, int] = {}  # file index -> worker that owns its tests
        self._file_est_by_path = self._history_by_file(estimates)
        self._suite_prior = self._median_or(
            (e.total for e in estimates.values()), DEFAULT_TEST_SECONDS
        )
        self._file_prior: dict[str, float] = {
            path: self._median_or((e.total for e in ests), self._suite_prior)
            for path, ests in self._file_est_by_path.items()
        }
        self._has_history = bool(estimates)
        #: Without history: this run's (sum of durations, count) per file.
        self._seen: dict[str, tuple[float, int]] = {}
        self._sum_of_means = 0.0
        self._observed = 0
        self.collect_est = [collect_estimates.get(path, 0.0) for path in self.files]
        self.sticky = _sticky_files(estimates)
        #: Unittest classes that may be cut between their tests (history).
        self.dominant = _dominant_classes(estimates, workers)
        #: Unittest files whose classes are numbered: never cut under ``split=auto``.
        self.sequenced: set[str] = set()
        #: Files to collect one at a time: a batch they were in killed its worker.
        self.isolate: set[int] = set()
        #: The worker that runs each serial group's tests.
        self.group_home: dict[str, int] = {}
        #: Each grouped test's serial group, as the workers collected them.
        self.group_of: dict[str, str] = {}
        #: Retries waiting for their time: (due, node id, worker of the failed attempt).
        self.delayed: list[tuple[float, str, int]] = []
        #: Tests wait for others to finish: keep idle workers until they are released.
        self.holding = False
        #: Failures may be retried: keep idle workers while others still run tests,
        #: so a retry can go to another worker than the one it failed on.
        self.keep_for_retries = False
        self._assign_files(file_sizes)
        self._assign_direct(direct_items)

    # -- estimates -------------------------------------------------------------

    @staticmethod
    def _median_or(values: Iterable[float], default: float) -> float:
        data = list(values)
        return statistics.median(data) if data else default

    @staticmethod
    def _history_by_file(estimates: Mapping[str, Estimate]) -> dict[str, list[Estimate]]:
        by_file: dict[str, list[Estimate]] = {}
        for nodeid, est in estimates.items():
            by_file.setdefault(nodeid.split("::", 1)[0], []).append(est)
        return by_file

    def test_est(self, nodeid: str) -> float:
        known = self.estimates.get(nodeid)
        if known is not None:
            return known.total
        return self._file_prior.get(nodeid.split("::", 1)[0], self._suite_prior)

    def observe(self, nodeid: str, seconds: float) -> None:
        """Learn from a finished test, when there is no history. A file's tests not run
        yet are guessed at the mean of its tests so far; a file with none run yet, at
        the mean over the files seen, each file counted once. Medians over tests made
        files of slow tests look free when most tests were trivial (on werkzeug's
        suite an idle worker would not take two queued files of 0.25 s tests), and the
        work left in a file of heavy-tailed tests is their sum, which a mean follows."""
        if self._has_history:
            return
        path = nodeid.split("::", 1)[0]
        total, count = self._seen.get(path, (0.0, 0))
        if count:
            self._sum_of_means -= total / count
        total, count = total + seconds, count + 1
        self._seen[path] = (total, count)
        self._sum_of_means += total / count
        self._file_prior[path] = max(total / count, 1e-5)
        self._observed += 1
        if self._observed >= 8:
            self._suite_prior = max(self._sum_of_means / len(self._seen), 1e-5)

    def _file_est(self, index: int, size: int, bytes_per_second: float) -> float:
        path = self.files[index]
        history = self._file_est_by_path.get(path)
        run = sum(e.total for e in history) if history else size / bytes_per_second
        return run + self.collect_est[index]

    # -- initial plan ----------------------------------------------------------

    def _assign_files(self, sizes: Sequence[int]) -> None:
        known_run = known_size = 0.0
        for index, path in enumerate(self.files):
            if path in self._file_est_by_path:
                known_run += sum(e.total for e in self._file_est_by_path[path])
                known_size += sizes[index]
        # Without history, a file's size is the best cheap proxy for its work.
        bytes_per_second = known_size / known_run if known_run > 0 else 1e5
        self.file_est = [
            self._file_est(i, sizes[i], bytes_per_second) for i in range(len(self.files))
        ]
        loads = [0.0] * len(self.workers)
        for index in sorted(range(len(self.files)), key=lambda i: -self.file_est[i]):
            target = loads.index(min(loads))
            self.workers[target].files_todo.append(index)
            loads[target] += self.file_est[index]

    def _assign_direct(self, items: Sequence[tuple[str, str]]) -> None:
        self._find_sequenced([nodeid for nodeid, _ in items])
        units = self._units([nodeid for nodeid, _ in items], -1)
        loads = [w.ready_est() for w in self.workers]
        # Dealt longest first; queued in pytest's order (add_ready keeps it when
        # ``in_order``: these units share the file index -1).
        targets: dict[int, int] = {}
        for position in sorted(range(len(units)), key=lambda i: -units[i].est):
            target = targets[position] = loads.index(min(loads))
            loads[target] += units[position].est
        for position, unit in enumerate(units):
            self.workers[targets[position]].add_ready([unit])

    def splittable(self, path: str) -> bool:
        if self.split != "auto":
            return self.split == "test"
        if path in self.order_bound:  # at class boundaries (see ``classes_only``)
            return path not in self.sequenced
        return path not in self.sticky

    def classes_only(self, path: str) -> bool:
        """Cut only where the class changes (unittest files under ``split=auto``)."""
        return self.split == "auto" and path in self.order_bound

    def _units(self, nodeids: Sequence[str], file: int) -> list[Unit]:
        """One unit per file, its tests in the order given (pytest's order)."""
        by_file: dict[str, deque[str]] = {}
        for nodeid in nodeids:
            by_file.setdefault(nodeid.split("::", 1)[0], deque()).append(nodeid)
        return [
            Unit(
                ids,
                file,
                sum(self.test_est(n) for n in ids),
                self.splittable(path),
                classes_only=self.classes_only(path),
            )
            for path, ids in by_file.items()
        ]

    def _find_sequenced(self, nodeids: Sequence[str]) -> None:
        """Note the unittest files among these tests' whose classes are numbered."""
        by_file: dict[str, list[str]] = {}
        for nodeid in nodeids:
            by_file.setdefault(nodeid.split("::", 1)[0], []).append(nodeid)
        for path, ids in by_file.items():
            if path in self.order_bound and _numbered_classes(ids):
                self.sequenced.add(path)

    def _cuttable(self, unit: Unit) -> bool:
        """Whether the unit has a place it may be cut at (O(1): a unit's tests are
        contiguous in pytest's order, so its classes change somewhere iff its
        first and last tests' classes differ)."""
        if not unit.splittable or not (len(unit.nodeids) > 1 or unit.started):
            return False
        if not unit.classes_only:
            return True
        first, last = _scope(unit.nodeids[0]), _scope(unit.nodeids[-1])
        if first != last or first in self.dominant:
            return True
        return unit.started and _scope(unit.last_sent) != first

    # -- events ----------------------------------------------------------------

    def on_collected(
        self,
        worker: int,
        files: Sequence[int],
        nodeids: Sequence[str],
        order_bound: Iterable[str] = (),
        groups: Mapping[str, str] | None = None,
        held: Set[str] = frozenset(),
    ) -> list[str]:
        """Queue what the worker collected; returns the tests it was to collect a file
        for and did not find there (a collection that differs from one time to the
        next): the caller must report them, never drop them."""
        plan = self.workers[worker]
        found = set(nodeids)
        missing = sorted(
            nodeid
            for index in files
            for nodeid in plan.stolen.get(index, ())
            if nodeid not in found
        )
        self.order_bound.update(order_bound)
        if groups:
            self.group_of.update(groups)
        by_file: dict[str, list[str]] = {}
        for nodeid in nodeids:
            by_file.setdefault(nodeid.split("::", 1)[0], []).append(nodeid)
        self._find_sequenced(nodeids)
        index_of = {self.files[i]: i for i in files}
        for index in files:
            plan.collecting.discard(index)
            plan.collected.add(index)
        units: list[Unit] = []
        for path, ids in by_file.items():
            index = index_of.get(path, -1)
            if index in plan.stolen:
                wanted = plan.stolen.pop(index)
                ids = [n for n in ids if n in wanted]
            elif index in self.owner and self.owner[index] != worker:
                continue
            else:
                self.owner[index] = worker
            if held:  # waiting for other tests: the coordinator releases them later
                ids = [n for n in ids if n not in held]
            if groups and not plan.isolated:  # a tier re-run stays on its fresh process
                ids = self._place_grouped(worker, index, ids, groups)
            units += self._units(ids, index)
        for index in files:
            plan.stolen.pop(index, None)
        plan.add_ready(units)
        return missing

    def on_finished(self, worker: int, nodeid: str, seconds: float | None = None) -> None:
        self.workers[worker].pop(nodeid)
        if seconds is not None:
            self.observe(nodeid, seconds)

    def orphan(self, worker: int) -> None:
        """Hand a dead worker's unfinished work to its replacement, which must
        collect again every file it needs."""
        plan = self.workers[worker]
        units = [Unit(deque([nodeid]), -2, est) for nodeid, est in plan.outstanding]
        plan.outstanding.clear()
        plan.outstanding_sum = 0.0
        fresh = WorkerPlan(
            files_todo=sorted(plan.collecting) + plan.files_todo,
            isolated=plan.isolated,
            in_order=plan.in_order,
        )
        for unit in units + plan.ready:
            file = unit.file
            if file == -2:
                file = self._file_index(unit.nodeids[0])
            if file < 0:
                unit.started = False
                fresh.add_ready([unit])
                continue
            fresh.stolen.setdefault(file, set()).update(unit.nodeids)
            if file not in fresh.files_todo:
                fresh.files_todo.append(file)
        for index, nodeids in plan.stolen.items():
            fresh.stolen.setdefault(index, set()).update(nodeids)
        self.workers[worker] = fresh

    def drop_file(self, index: int) -> None:
        """Forget a file for good (it kills whoever collects it)."""
        for plan in self.workers:
            if index in plan.files_todo:
                plan.files_todo.remove(index)
            plan.collecting.discard(index)
            plan.stolen.pop(index, None)

    def transfer(self, source: int, target: int) -> None:
        """Give everything a worker slot still had to do to another slot; the
        source slot is retired."""
        src, dst = self.workers[source], self.workers[target]
        dst.files_todo.extend(i for i in src.files_todo if i not in dst.files_todo)
        for index, nodeids in src.stolen.items():
            dst.stolen.setdefault(index, set()).update(nodeids)
            if index not in dst.files_todo and index not in dst.collecting:
                dst.files_todo.append(index)
        for unit in src.ready:
            if unit.file >= 0 and unit.file not in dst.collected:
                dst.stolen.setdefault(unit.file, set()).update(unit.nodeids)
                if unit.file not in dst.files_todo:
                    dst.files_todo.append(unit.file)
            else:
                unit.started = False
                dst.add_ready([unit])
        dst.shut_down = False
        self.workers[source] = WorkerPlan(shut_down=True)

    def unfinished(self) -> tuple[list[str], list[str]]:
        """(files never collected, node ids never run) across all slots."""
        files: list[str] = []
        nodeids: list[str] = []
        for plan in self.workers:
            files += [self.files[i] for i in plan.files_todo if i not in plan.stolen]
            for ids in plan.stolen.values():
                nodeids += sorted(ids)
            nodeids += [n for unit in plan.ready for n in unit.nodeids]
            nodeids += [n for n, _ in plan.outstanding]
        return files, nodeids

    # -- serial groups -----------------------------------------------------------

    def _place_grouped(
        self, worker: int, file: int, ids: list[str], groups: Mapping[str, str]
    ) -> list[str]:
        """Send the tests of each serial group to that group's one worker (the first
        to find one of them), pinned there: one worker runs them one at a time.
        Returns the ungrouped ids, which stay with ``worker``."""
        free: list[str] = []
        by_group: dict[str, list[str]] = {}
        for nodeid in ids:
            group = groups.get(nodeid)
            if group is None:
                free.append(nodeid)
            else:
                by_group.setdefault(group, []).append(nodeid)
        for group, members in by_group.items():
            home = self.group_home.setdefault(group, worker)
            if self.workers[home].shut_down:  # it is done with the group: nothing overlaps
                home = self.group_home[group] = worker
            plan = self.workers[home]
            plan.pinned.update(members)
            unit = Unit(
                deque(members), file, sum(self.test_est(n) for n in members), splittable=False
            )
            self._give(plan, [unit])
        return free

    # -- the coordinator's questions and commands --------------------------------

    def running(self, worker: int) -> str | None:
        """The test at the head of the worker's queue: the one it runs now."""
        outstanding = self.workers[worker].outstanding
        return outstanding[0][0] if outstanding else None

    def queued(self, worker: int) -> int:
        """Tests sent to the worker and not yet finished."""
        return len(self.workers[worker].outstanding)

    def done_with(self, worker: int) -> bool:
        """The worker was told to shut down and has finished what it was sent."""
        plan = self.workers[worker]
        return plan.shut_down and not plan.outstanding

    def set_elapsed(self, worker: int, seconds: float) -> None:
        """How long the worker's running test has run (it weighs in stealing)."""
        if worker < len(self.workers):
            self.workers[worker].head_elapsed = seconds

    def hold(self, waiting: bool) -> None:
        """Tests wait for others (dependencies): keep idle workers for them."""
        self.holding = waiting

    def expect_retries(self) -> None:
        """Failures may be retried: keep idle workers while others still run."""
        self.keep_for_retries = True

    def collect_alone(self, files: Iterable[int]) -> None:
        """Collect these files one at a time from now on (a batch killed its worker)."""
        self.isolate.update(files)

    def drop_pending(self) -> None:
        """The run stops: forget every test and file not yet sent to a worker."""
        for plan in self.workers:
            plan.ready.clear()
            plan.files_todo.clear()

    def retries_waiting(self) -> bool:
        return bool(self.delayed)

    def retry_due(self, now: float) -> bool:
        return bool(self.delayed) and self.delayed[0][0] <= now

    def idle(self) -> bool:
        """Nothing is queued, running, collecting or due anywhere."""
        return not self.delayed and all(
            not (p.outstanding or p.ready or p.files_todo or p.collecting or p.stolen)
            for p in self.workers
        )

    def collecting_anywhere(self) -> bool:
        """Some file is being collected or still waits to be."""
        return self.is_collecting() or any(plan.files_todo for plan in self.workers)

    # -- isolation ---------------------------------------------------------------

    def isolate_test(self, nodeid: str) -> int:
        """A new slot that runs only ``nodeid`` (it collects its file again)."""
        plan = WorkerPlan(isolated=True)
        self._give(plan, [self._single(nodeid)])
        self.workers.append(plan)
        return len(self.workers) - 1

    def cancel(self, slot: int) -> None:
        """Drop whatever an isolated slot still had to do and close it."""
        self.workers[slot] = WorkerPlan(isolated=True, shut_down=True)

    # -- retries ---------------------------------------------------------------

    def retry_later(self, nodeid: str, failed_on: int, due: float) -> None:
        heapq.heappush(self.delayed, (due, nodeid, failed_on))

    def release_due(self, now: float, alive: set[int]) -> list[int]:
        """Hand retries that are due to a worker, another than the one the test
        failed on when there is one. Returns the slots that got one; a slot that
        is not in ``alive`` needs a worker started for it."""
        slots: list[int] = []
        while self.delayed and self.delayed[0][0] <= now:
            _, nodeid, failed_on = heapq.heappop(self.delayed)
            slot = self._retry_slot(failed_on, alive)
            plan = self.workers[slot]
            plan.pinned.add(nodeid)
            self._give(plan, [self._single(nodeid)])
            slots.append(slot)
        return slots

    def _retry_slot(self, failed_on: int, alive: set[int]) -> int:
        open_slots = [
            w
            for w, plan in enumerate(self.workers)
            if w in alive and not plan.shut_down and not plan.isolated
        ]
        others = [w for w in open_slots if w != failed_on]
        if others or open_slots:
            return min(others or open_slots, key=lambda w: self._load(self.workers[w]))
        # Every worker has finished: a fresh one takes the retry.
        dead = [
            w for w in range(len(self.workers)) if w not in alive and not self.workers[w].isolated
        ]
        slot = dead[0] if dead else len(self.workers)
        if slot == len(self.workers):
            self.workers.append(WorkerPlan(in_order=self._in_order))
        else:
            self.workers[slot] = WorkerPlan(in_order=self._in_order)
        return slot

    def _load(self, plan: WorkerPlan) -> float:
        return (
            plan.ready_est()
            + plan.outstanding_est()
            + sum(self.file_est[i] for i in plan.files_todo)
        )

    def has_work(self, worker: int) -> bool:
        plan = self.workers[worker]
        return bool(plan.ready or plan.files_todo or plan.stolen)

    def _file_index(self, nodeid: str) -> int:
        return self._index_by_path.get(nodeid.split("::", 1)[0], -1)

    def remaining_est(self) -> float | None:
        """Estimated seconds of work left, or None while there is nothing to go on
        (no history, and too few tests finished in this run to learn from)."""
        if not self._has_history and self._observed < 8:
            return None
        total = 0.0
        for plan in self.workers:
            total += sum(self._unit_left(unit) for unit in plan.ready)
            total += plan.outstanding_est()
            total += sum(self.file_est[i] for i in plan.files_todo)
        return total

    def _unit_left(self, unit: Unit) -> float:
        """A queued unit's estimate, in O(1): the live view asks ten times a second,
        and summing each test's estimate took half the coordinator's CPU on 62,000
        tests. History's estimates do not change during a run, so the unit's own
        running sum holds; without history every test of a unit (one file) has its
        file's prior, which may have learnt since the unit was made."""
        if self._has_history or not unit.nodeids:
            return unit.est
        return len(unit.nodeids) * self.test_est(unit.nodeids[0])

    def is_collecting(self) -> bool:
        return any(plan.collecting for plan in self.workers)

    # -- decisions ------------------------------------------------------------

    def next_messages(self, worker: int) -> list[ToWorker]:
        plan = self.workers[worker]
        if plan.shut_down:
            return []
        messages: list[ToWorker] = []
        # A second pass steals while the worker still runs its last test.
        for _ in range(2):
            if not plan.ready and not plan.collecting and not plan.files_todo:
                if not plan.isolated:
                    self._steal(worker)
            # pytest imports every test module before the first test runs, and suites
            # lean on it (a test that re-imports a library must not change what a
            # module imported after it sees): a worker collects all the files dealt to
            # it, a batch at a time (the rest stays free to steal), before any of its
            # tests; files stolen once it runs tests are collected between them.
            if plan.files_todo and not plan.collecting and not (plan.ready and plan.running):
                batch = self._collect_batch(plan)
                plan.collecting.update(batch)
                messages.append(Collect(tuple(batch)))
            may_run = plan.running or not (plan.collecting or plan.files_todo)
            if (
                plan.ready
                and may_run
                and (len(plan.outstanding) < 2 or plan.outstanding_est() < RUN_AHEAD / 2)
            ):
                chunk = self._take_chunk(worker)
                if chunk:
                    plan.running = True
                    plan.promised = bool(plan.ready)
                    messages.append(RunTests(tuple(chunk), more=plan.promised))
            if plan.ready or plan.files_todo or plan.collecting or len(plan.outstanding) > 1:
                return messages
        # Nothing left for this worker. It may still steal work another worker is
        # collecting or queues (meanwhile it runs its last test without waiting).
        if plan.isolated:
            plan.shut_down = True
            messages.append(Shutdown())
            return messages
        others_running = self.keep_for_retries and any(
            p.outstanding for w, p in enumerate(self.workers) if w != worker
        )
        waiting = self.delayed or self.holding or others_running
        if not (waiting or self.is_collecting() or self._stealable(worker)):
            plan.shut_down = True
            messages.append(Shutdown())
        return messages

    def broken_promises(self) -> list[int]:
        """Workers told more tests would come that have none left (stolen, dropped):
        each must hear so, or it holds its last test waiting for them."""
        broken = []
        for worker, plan in enumerate(self.workers):
            if plan.promised and not plan.ready:
                plan.promised = False
                broken.append(worker)
        return broken

    def _stealable(self, thief: int) -> bool:
        """Whether another worker queues work this one might still steal."""
        for worker, plan in enumerate(self.workers):
            if worker == thief or plan.isolated:
                continue
            busy = bool(plan.outstanding or plan.collecting)
            if plan.files_todo and (busy or len(plan.files_todo) > 1):
                return True
            for unit in plan.ready:
                if self._cuttable(unit):
                    return True
                if not unit.started and (busy or len(plan.ready) > 1):
                    return True
        return False

    def _collect_batch(self, plan: WorkerPlan) -> list[int]:
        # A quarter of the worker's uncollected load per batch: enough to amortise
        # the round trip, small enough that idle workers can still steal files. In
        # pytest's order, whatever the order they were dealt or stolen in: modules can
        # depend on what was imported before them (a registry, shared state), and a
        # worker collects all its files before it runs a test anyway.
        plan.files_todo.sort()
        pending = sum(self.file_est[i] for i in plan.files_todo)
        batch: list[int] = []
        batch_est = 0.0
        while plan.files_todo and (not batch or batch_est < pending / 4):
            if batch and (plan.files_todo[0] in self.isolate or batch[0] in self.isolate):
                break
            index = plan.files_todo.pop(0)
            batch.append(index)
            batch_est += self.file_est[index]
        return batch

    def _take_chunk(self, worker: int) -> list[str]:
        plan = self.workers[worker]
        chunk: list[str] = []
        est = plan.outstanding_est()
        while plan.ready and (len(plan.outstanding) < 2 or est < RUN_AHEAD):
            if len(chunk) >= MAX_CHUNK:
                break
            unit = plan.ready[0]
            if self._group_busy_elsewhere(unit.nodeids[0], worker):
                break  # sent once the other worker is done with the group's tests
            if len(plan.outstanding) >= PROBE and self._unmeasured(unit.nodeids[0]):
                # Nothing is known of this file's tests yet: send a few, and size the
                # next chunk by what the first one took. A sent test can no longer be
                # stolen, and a guess from other files could send a whole file of slow
                # tests at once.
                break
            unit.started = True
            nodeid = unit.nodeids.popleft()
            unit.last_sent = nodeid
            # Re-estimated now: the prior may have learnt since the unit was made.
            test_est = self.test_est(nodeid)
            unit.est = max(0.0, unit.est - test_est)
            if not unit.nodeids:
                plan.ready.pop(0)
            chunk.append(nodeid)
            plan.push(nodeid, test_est)
            est += test_est
        return chunk

    def _unmeasured(self, nodeid: str) -> bool:
        """No history, and no test of the file has finished in this run."""
        if self._has_history:
            return False
        return nodeid.split("::", 1)[0] not in self._seen

    def _group_busy_elsewhere(self, nodeid: str, worker: int) -> bool:
        """Whether another worker has a test of ``nodeid``'s serial group in hand.
        Its group's tests normally all queue on one worker; a retry or a tier re-run
        elsewhere waits for that worker to be done with them, and the other way round."""
        group = self.group_of.get(nodeid)
        if group is None:
            return False
        return any(
            self.group_of.get(other) == group
            for slot, plan in enumerate(self.workers)
            if slot != worker
            for other, _ in plan.outstanding
        )

    def _steal(self, thief: int) -> None:
        plan = self.workers[thief]
        victims = sorted(
            (w for w in range(len(self.workers)) if w != thief and not self.workers[w].isolated),
            key=lambda w: (
                -(
                    self.workers[w].ready_est()
                    + sum(self.file_est[i] for i in self.workers[w].files_todo)
                )
            ),
        )
        for victim_id in victims:
            victim = self.workers[victim_id]
            if victim.files_todo:
                # Uncollected files move for free. The victim keeps the first half
                # (it collects those next); a lone file moves only off a busy victim.
                busy = victim.collecting or victim.ready or victim.outstanding
                keep = len(victim.files_todo) // 2 if len(victim.files_todo) > 1 else 0
                movable = [
                    i for i in victim.files_todo[keep:]
                    if not victim.stolen.get(i, set()) & victim.pinned
                ]  # fmt: skip
                if (keep or busy) and movable:
                    moved = movable
                    victim.files_todo = [i for i in victim.files_todo if i not in moved]
                    plan.files_todo.extend(moved)
                    # A file the victim was to collect only for some of its tests
                    # moves with exactly those tests.
                    for index in moved:
                        if index in victim.stolen:
                            wanted = victim.stolen.pop(index)
                            plan.stolen.setdefault(index, set()).update(wanted)
                    return
            if self._steal_tests(plan, victim):
                return

    @staticmethod
    def _stuck(victim: WorkerPlan, cost: float) -> bool:
        """The victim's running test has run longer than taking work costs the thief.
        Durations are heavy-tailed, so it will likely run about as long again, and
        whatever the victim has not been sent waits behind it however little the
        estimates say it is (on a first run they come from the few tests seen)."""
        return bool(victim.outstanding) and victim.head_elapsed > 2 * cost + 0.02

    def _unit_est(self, unit: Unit) -> float:
        return sum(self.test_est(n) for n in unit.nodeids)

    def _steal_cost(self, plan: WorkerPlan, file: int) -> float:
        if file < 0 or file in plan.collected:
            return 0.0
        return self.collect_est[file] or 0.05

    def _steal_tests(self, plan: WorkerPlan, victim: WorkerPlan) -> bool:
        """Take about half of a victim's queued work: whole files that have not
        started, else the contiguous tail of one file when splitting is allowed."""
        if not victim.ready:
            return False
        ests = [self._unit_est(unit) for unit in victim.ready]
        half = (sum(ests) + victim.busy_est()) / 2
        taken: list[Unit] = []
        stolen_est = 0.0
        for unit, est in sorted(zip(victim.ready, ests, strict=True), key=lambda pair: -pair[1]):
            if unit.started or stolen_est + est > half * 1.25:
                continue
            if victim.pinned and victim.pinned.intersection(unit.nodeids):
                continue
            taken.append(unit)
            stolen_est += est
        cost = sum(self._steal_cost(plan, f) for f in {u.file for u in taken})
        if taken and (stolen_est > 2 * cost + 0.02 or self._stuck(victim, cost)):
            victim.ready = [unit for unit in victim.ready if unit not in taken]
            self._give(plan, taken)
            return True
        return self._steal_tail(plan, victim, ests, half)

    def _steal_tail(
        self, plan: WorkerPlan, victim: WorkerPlan, ests: list[float], half: float
    ) -> bool:
        candidates = [
            (est, position)
            for position, (unit, est) in enumerate(zip(victim.ready, ests, strict=True))
            if self._cuttable(unit)
        ]
        if not candidates:
            return False
        _, position = max(candidates)
        unit = victim.ready[position]
        cost = self._steal_cost(plan, unit.file)
        if self._stuck(victim, cost):
            want = ests[position]  # all of it: it would wait behind the running test
        else:
            want = min(ests[position], half - cost / 2)
            if want <= 2 * cost + 0.02:
                return False
        # A started unit's victim keeps the tests it was already sent, so the thief
        # may take all that is left of it; otherwise the victim keeps the head.
        cut = self._cut(
            list(unit.nodeids),
            want,
            0 if unit.started else 1,
            after=unit.last_sent if unit.started else "",
            classes_only=unit.classes_only,
        )
        if cut is None:
            return False
        tail = deque(list(unit.nodeids)[cut:])
        for _ in range(len(tail)):
            unit.nodeids.pop()
        tail_est = sum(self.test_est(n) for n in tail)
        unit.est = max(0.0, unit.est - tail_est)
        if not unit.nodeids:
            victim.ready.remove(unit)
        self._give(
            plan,
            [Unit(tail, unit.file, tail_est, unit.splittable, classes_only=unit.classes_only)],
        )
        return True

    def _cut(
        self,
        nodeids: list[str],
        want: float,
        first: int = 1,
        after: str = "",
        classes_only: bool = False,
    ) -> int | None:
        """Where to cut (at ``first`` or later) so the tail holds about ``want``
        seconds: preferably where the class changes, else where the function does.
        ``after``: the test before ``nodeids[0]`` on its worker ("": none);
        ``classes_only``: only where the class changes, or inside a dominant class."""
        suffix = 0.0
        best: tuple[float, int] | None = None
        for position in range(len(nodeids) - 1, first - 1, -1):
            suffix += self.test_est(nodeids[position])
            if suffix < want / 2:
                continue
            if suffix > want * 1.5 and best is not None:
                break
            before, after_cut = nodeids[position - 1] if position else after, nodeids[position]
            same_class = _scope(before) == _scope(after_cut)
            if classes_only and same_class and _scope(after_cut) not in self.dominant:
                continue
            if not same_class:
                rank = 0
            elif _function(before) != _function(after_cut):
                rank = 1
            else:
                rank = 2
            score = rank + abs(suffix - want) / max(want, 1e-9)
            if best is None or score < best[0]:
                best = (score, position)
        return None if best is None else best[1]

    def _single(self, nodeid: str) -> Unit:
        """A unit of one test that stays where it is put."""
        return Unit(deque([nodeid]), self._file_index(nodeid), self.test_est(nodeid), False)

    def _give(self, plan: WorkerPlan, units: list[Unit]) -> None:
        """Queue units on ``plan``; a file it has not collected is collected first,
        for exactly these tests."""
        ready: list[Unit] = []
        for unit in units:
            if unit.file >= 0 and unit.file not in plan.collected:
                plan.stolen.setdefault(unit.file, set()).update(unit.nodeids)
                if unit.file not in plan.files_todo and unit.file not in plan.collecting:
                    plan.files_todo.append(unit.file)
            else:
                ready.append(unit)
        plan.add_ready(ready)


def _sticky_files(estimates: Mapping[str, Estimate]) -> set[str]:
    """Files with an expensive module or class fixture, kept whole by ``split=auto``.

    Such a fixture costs its setup once per module or class, on the first test that
    uses it; a function fixture costs it on every test that uses it. So a file is
    sticky when some setups are expensive (long, and far above the file's usual setup)
    and no more tests pay one than the file has scopes (the module and its classes):
    werkzeug's function-scoped server fixture made a 28-test file unsplittable."""
    by_file: dict[str, dict[str, Estimate]] = {}
    for nodeid, estimate in estimates.items():
        by_file.setdefault(nodeid.split("::", 1)[0], {})[nodeid] = estimate
    sticky = set()
    for path, tests in by_file.items():
        usual = statistics.median(e.setup for e in tests.values())
        expensive = [
            nodeid
            for nodeid, e in tests.items()
            if e.setup >= STICKY_SETUP_SECONDS and e.setup >= 5 * usual
        ]
        if expensive and len(expensive) <= len({_scope(nodeid) for nodeid in tests}):
            sticky.add(path)
    return sticky


def _dominant_classes(estimates: Mapping[str, Estimate], workers: int) -> set[str]:
    """Classes whose tests add up, by history, to ``DOMINANT_CLASS_SHARE`` of a
    worker's fair share of the run or more: kept whole, one would bound the run
    (setUpClass then runs once more on each worker that takes part of it)."""
    if not estimates:
        return set()
    by_class: dict[str, float] = {}
    for nodeid, estimate in estimates.items():
        scope = _scope(nodeid)
        if "::" in scope:
            by_class[scope] = by_class.get(scope, 0.0) + estimate.total
    fair = sum(e.total for e in estimates.values()) / max(workers, 1)
    return {scope for scope, total in by_class.items() if total >= DOMINANT_CLASS_SHARE * fair}


_NUMBERED = re.compile(r"[A-Za-z]*?_?(\d+)[a-z]?(?:_|[A-Z]|$)")


def _numbered_classes(nodeids: Iterable[str]) -> bool:
    """A file's classes are numbered in sequence: two or more carry different
    numbers after their prefix (``Test01_Init``, ``Test02_WithoutPackrat``,
    ``Test3Mode``), as unittest suites whose classes must run in order name them."""
    numbers: set[str] = set()
    for nodeid in nodeids:
        parts = nodeid.split("::")
        if len(parts) > 2 and (match := _NUMBERED.match(parts[1])):
            numbers.add(match.group(1).lstrip("0"))
            if len(numbers) > 1:
                return True
    return False


def _scope(nodeid: str) -> str:
    """The file or class a test belongs to."""
    return nodeid.rsplit("::", 1)[0]


def _function(nodeid: str) -> str:
    """The test function, without parametrize ids."""
    return nodeid.split("[", 1)[0]
