"""``aqe run --shard I/N`` for adapters whose unit of work is a file (Vitest, Jest).

Such a framework runs files, and lists a file's tests only by importing or running
it, so its shards are made of whole files: each file is one unit of the same
partition pytest's shards use (``aqe._sharding``), weighed by the history's seconds
for its tests, else by its size in bytes at the rate of the timed files. Every CI
job computes the same split from the same history, as pytest's shards do.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from .._reporting.json_report import ShardInfo
from .._sharding import Constraints, ShardTest, partition

#: Seconds per byte of a test file when the history has timed none (any constant
#: would do: every file is then weighed alike).
_RATE_PRIOR = 1e-5


@dataclass(frozen=True, slots=True)
class FileShard:
    """This job's files, and the shard's account for the reports and ``aqe merge``."""

    files: tuple[str, ...]
    info: ShardInfo


def shard_files(
    seconds: Mapping[str, float | None],
    sizes: Mapping[str, int],
    shard: tuple[int, int],
    tests: Mapping[str, int] | None = None,
) -> FileShard:
    """The files of shard ``I`` of ``N``. ``seconds``: each file's measured seconds
    (None: not timed); ``sizes``: bytes, for the untimed; ``tests``: each file's
    number of tests where known (else 1), for the counts the reports show."""
    index, count = shard
    timed = {f: s for f, s in seconds.items() if s is not None and s > 0}
    rates = [timed[f] / sizes[f] for f in timed if sizes.get(f)]
    rate = statistics.median(rates) if rates else _RATE_PRIOR
    weights = {
        file: timed.get(file) or max(sizes.get(file, 0), 1) * rate for file in sorted(seconds)
    }
    # A file's import is in its measured seconds: no collection cost on top.
    units = [ShardTest(file, weight) for file, weight in weights.items()]
    plan = partition(units, count, Constraints(collect_prior=0.0))
    counted = tests or {}

    def tests_of(files: tuple[str, ...]) -> int:
        return sum(max(counted.get(file, 1), 1) for file in files)

    mine = plan.shards[index - 1]
    info = ShardInfo(
        index=index,
        count=count,
        tests=tests_of(mine.nodeids),
        predicted=mine.predicted,
        planned=tuple(s.predicted for s in plan.shards),
        planned_tests=tuple(tests_of(s.nodeids) for s in plan.shards),
        total=tests_of(tuple(weights)),
        digest=plan.digest,
    )
    return FileShard(mine.nodeids, info)


def announce(kept: FileShard, total_files: int) -> None:
    """The line a shard run starts with, as pytest's shards print theirs."""
    info = kept.info
    sys.stdout.write(
        f"aqe: shard {info.index}/{info.count}: {len(kept.files)} of "
        f"{total_files} files, predicted {info.predicted:.1f}s (shards "
        f"{min(info.planned, default=0):.1f}-{max(info.planned, default=0):.1f}s; "
        f"plan {info.digest})\n"
    )
    sys.stdout.flush()
