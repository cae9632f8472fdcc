"""Predicted seconds per test for the partition, from the planner's own estimates.

The planner (``_engine._plan``) already turns the history into a test's expected
seconds, with its priors for tests it has not seen (its file's median, else the
suite's) and its file-size prior for files the history does not know; the shards
use exactly those, so ``aqe run --shard`` and the run's own schedule agree. A file
the history does not know at all is guessed from both what was collected and its
size: the mean of (its test count x the planner's per-test prior) and the planner's
size-based guess, spread evenly over its tests.

The history's durations are each test's setup, call and teardown, measured in the
worker; what aqe spends around a test (pytest's hooks, the report's round trip to the
coordinator, the next test handed over) is not in them, and a shard of many tiny tests
runs long by it. :func:`per_test_cost` reads it off the history (the gaps between one
worker's consecutive tests), and every test's prediction carries it.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._engine._plan import Estimate, Planner
from ._partition import ShardTest

if TYPE_CHECKING:
    from .._store import Store

#: What collecting a file the history has not timed costs a shard (the planner's
#: guess for collecting a file again when it steals tests).
COLLECT_PRIOR = 0.05
#: aqe's own seconds per test when the history has no run to measure it on (the
#: median gap between one worker's tests on a quiet 2-core machine, click's suite).
DEFAULT_PER_TEST = 0.002
#: The measured cost is kept within these bounds: a run under heavy load, or a worker
#: idle between batches, must not make every test look long.
PER_TEST_BOUNDS = (0.0002, 0.05)
#: The newest finished runs with at least this many tests are read.
PER_TEST_MIN_TESTS = 20


def per_test_cost(store: Store | None) -> float:
    """aqe's seconds per test beyond the tests' own durations, from the newest
    finished run of the history with enough tests: the median gap between a test's
    end and the next test's start on the same worker (collection and idle gaps are
    few, so the median skips them). Rounded to 0.1 ms so every job that imported
    the same history computes the same plan."""
    if store is None:
        return DEFAULT_PER_TEST
    for row in store.recent_runs(limit=5):
        if row.end is None:
            continue
        results = [
            r for r in store.results_for_run(row.run_id) if r.when != "collect" and r.stop > 0
        ]
        if len(results) < PER_TEST_MIN_TESTS:
            continue
        results.sort(key=lambda r: (r.worker, r.start, r.nodeid))
        gaps = [
            b.start - a.stop
            for a, b in itertools.pairwise(results)
            if a.worker == b.worker and b.start >= a.stop
        ]
        if not gaps:
            continue
        low, high = PER_TEST_BOUNDS
        return round(min(max(statistics.median(gaps), low), high), 4)
    return DEFAULT_PER_TEST


@dataclass(frozen=True, slots=True)
class Predicted:
    tests: tuple[ShardTest, ...]
    #: Files with an expensive module or class fixture (the planner's sticky files).
    sticky: frozenset[str]
    collect_seconds: Mapping[str, float]
    #: Whether the history knew any of the tests.
    from_history: bool


def predict(
    nodeids: Sequence[str],
    sizes: Mapping[str, int],
    estimates: Mapping[str, Estimate],
    collect_estimates: Mapping[str, float],
    per_test: float = 0.0,
) -> Predicted:
    """Each test's predicted seconds (with aqe's ``per_test`` cost); ``sizes`` are the
    files' sizes in bytes."""
    files = sorted({nodeid.split("::", 1)[0] for nodeid in nodeids})
    known = {n: e for n, e in estimates.items() if n.split("::", 1)[0] in sizes}
    planner = Planner(
        files, [sizes.get(path, 0) for path in files], 1, known, collect_estimates
    )
    counts: dict[str, int] = {}
    for nodeid in nodeids:
        path = nodeid.split("::", 1)[0]
        counts[path] = counts.get(path, 0) + 1
    timed_files = {n.split("::", 1)[0] for n in known}
    per_test_prior = planner.test_est("\0")  # no such file: the suite's prior
    unknown_file: dict[str, float] = {}
    for index, path in enumerate(files):
        if path in timed_files:
            continue
        by_size = max(planner.file_est[index] - planner.collect_est[index], 0.0)
        unknown_file[path] = (counts[path] * per_test_prior + by_size) / 2 / counts[path]
    tests = tuple(
        ShardTest(n, (unknown_file.get(n.split("::", 1)[0]) or planner.test_est(n)) + per_test)
        for n in nodeids
    )
    return Predicted(
        tests,
        frozenset(planner.sticky),
        {path: collect_estimates.get(path, 0.0) for path in files},
        bool(known),
    )
