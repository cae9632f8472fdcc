"""Predicted seconds per test for the partition, from the planner's own estimates.

The planner (``_engine._plan``) already turns the history into a test's expected
seconds, with its priors for tests it has not seen (its file's median, else the
suite's) and its file-size prior for files the history does not know; the shards
use exactly those, so ``aqe run --shard`` and the run's own schedule agree. A file
the history does not know at all is guessed from both what was collected and its
size: the mean of (its test count x the planner's per-test prior) and the planner's
size-based guess, spread evenly over its tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._engine._plan import Estimate, Planner
from ._partition import ShardTest

#: What collecting a file the history has not timed costs a shard (the planner's
#: guess for collecting a file again when it steals tests).
COLLECT_PRIOR = 0.05


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
) -> Predicted:
    """Each test's predicted seconds; ``sizes`` are the files' sizes in bytes."""
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
        ShardTest(n, unknown_file.get(n.split("::", 1)[0]) or planner.test_est(n))
        for n in nodeids
    )
    return Predicted(
        tests,
        frozenset(planner.sticky),
        {path: collect_estimates.get(path, 0.0) for path in files},
        bool(known),
    )
