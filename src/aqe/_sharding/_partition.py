"""The partition: which of N shards runs each collected test.

Every CI job computes it on its own, so it is a pure function of its inputs (the
tests with their predicted seconds, what must stay together, each file's collection
cost) and never of their order: ties fall to node ids, sets are sorted. Work units
are dealt longest first to the least loaded shard (LPT). A unit starts as a whole
file, which a shard then collects (imports) once; a file is cut, at its classes,
then its functions, then its tests, only when whole files cannot balance the shards,
and never when it must stay whole (expensive module fixtures, unittest classes).
Tests that are bound (a serial group, dependencies) always share a unit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field

#: Predicted seconds below this count as this: a history of zero durations still
#: deals tests by their number.
FLOOR_SECONDS = 1e-4
#: Cut files further until the slowest shard is predicted within this of the mean.
GOOD_ENOUGH = 1.02
#: How many times finer than a shard's mean a unit may still be, at the last level.
FINEST = 64


@dataclass(frozen=True, slots=True)
class ShardTest:
    """One collected test as the partition sees it."""

    nodeid: str
    #: Predicted seconds (history, else the planner's priors).
    seconds: float

    @property
    def file(self) -> str:
        return self.nodeid.split("::", 1)[0]


@dataclass(frozen=True, slots=True)
class Constraints:
    """What keeps tests together across shards."""

    #: Files whose tests stay in one shard (expensive module/class fixtures).
    whole_files: frozenset[str] = frozenset()
    #: Scopes (``file::Class``) whose tests stay in one shard (unittest classes).
    whole_scopes: frozenset[str] = frozenset()
    #: Sets of node ids that share a shard (a serial group, a test and what it depends on).
    bonds: tuple[frozenset[str], ...] = ()
    #: Seconds to collect each file, paid once by every shard that runs any of its tests.
    collect_seconds: Mapping[str, float] = field(default_factory=dict)
    #: Collection seconds of a file the history has not timed.
    collect_prior: float = 0.05


@dataclass(frozen=True, slots=True)
class ShardLoad:
    """One shard of the plan: its tests (sorted) and predicted seconds."""

    index: int  # 1-based, as on the command line
    nodeids: tuple[str, ...]
    predicted: float
    files: int


@dataclass(frozen=True, slots=True)
class Partition:
    count: int
    shards: tuple[ShardLoad, ...]
    #: Short hash of the whole assignment: shards of one plan carry the same.
    digest: str
    #: Units dealt (after cutting and bonding).
    units: int
    #: The predictions came from the history (else from counts and file sizes).
    from_history: bool = False

    def shard_of(self) -> dict[str, int]:
        return {nodeid: shard.index for shard in self.shards for nodeid in shard.nodeids}

    @property
    def total(self) -> int:
        return sum(len(shard.nodeids) for shard in self.shards)

    def to_json(self, ids: bool = True) -> dict[str, object]:
        """``aqe shards N --json``."""
        return {
            "count": self.count,
            "tests": self.total,
            "digest": self.digest,
            "from_history": self.from_history,
            "balance": round(self.balance(), 4),
            "shards": [
                {
                    "index": shard.index,
                    "tests": len(shard.nodeids),
                    "predicted": shard.predicted,
                    "files": shard.files,
                    **({"nodeids": list(shard.nodeids)} if ids else {}),
                }
                for shard in self.shards
            ],
        }

    def balance(self) -> float:
        """Slowest shard's predicted seconds over the mean (1.0: perfect)."""
        loads = [shard.predicted for shard in self.shards]
        mean = sum(loads) / len(loads) if loads else 0.0
        return max(loads) / mean if mean > 0 else 1.0


@dataclass(slots=True)
class _Unit:
    key: str  # the smallest node id: ties and order
    nodeids: list[str]
    seconds: float
    files: frozenset[str]
    level: int  # 0 file, 1 class or function, 2 function, 3 test
    cuttable: bool


def partition(
    tests: Iterable[ShardTest], count: int, constraints: Constraints | None = None
) -> Partition:
    """Split ``tests`` into ``count`` shards of about equal predicted time."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rules = constraints or Constraints()
    by_id = {test.nodeid: test for test in tests}
    seconds = {nodeid: max(test.seconds, FLOOR_SECONDS) for nodeid, test in by_id.items()}
    if not seconds:
        return _result([[] for _ in range(count)], [0.0] * count, [0] * count, 0)
    total = sum(seconds[n] for n in sorted(seconds))
    mean = total / count
    units = _file_units(seconds, rules, mean)
    best: tuple[list[list[str]], list[float], list[int]] | None = None
    best_units = 0
    threshold = mean / 2
    while True:
        bonded = _bond(units, rules.bonds)
        dealt = _deal(bonded, count, rules)
        if best is None or max(dealt[1]) < max(best[1]) - 1e-12:
            best, best_units = dealt, len(bonded)
        loads = dealt[1]
        balanced = max(loads) <= GOOD_ENOUGH * (sum(loads) / count)
        if (balanced and len(bonded) >= count) or threshold < mean / FINEST:
            break
        finer = _cut_larger(units, threshold, seconds, rules.whole_scopes, rules.whole_files, mean)
        threshold /= 2
        if finer is None:
            if len(bonded) >= count or not any(u.cuttable for u in units):
                break
            continue
        units = finer
    return _result(*best, best_units)


def _file_units(seconds: Mapping[str, float], rules: Constraints, mean: float) -> list[_Unit]:
    by_file: dict[str, list[str]] = {}
    for nodeid in sorted(seconds):
        by_file.setdefault(nodeid.split("::", 1)[0], []).append(nodeid)
    units = []
    for path, ids in by_file.items():
        total = sum(seconds[n] for n in ids)
        # A file kept whole for its fixtures is still cut when it alone is more than a
        # shard's share: its module fixture then runs twice, not the whole suite waits.
        cuttable = path not in rules.whole_files or total > mean
        units.append(_Unit(ids[0], ids, total, frozenset([path]), 0, cuttable))
    return units


def _level_key(nodeid: str, level: int) -> str:
    """The group a test belongs to when its unit is cut to ``level``."""
    if level == 1:  # a class, or a module-level function
        return "::".join(nodeid.split("[", 1)[0].split("::")[:2])
    if level == 2:  # a function (a class's method)
        return nodeid.split("[", 1)[0]
    return nodeid


def _cut_larger(
    units: list[_Unit],
    threshold: float,
    seconds: Mapping[str, float],
    whole: Set[str],
    whole_files: Set[str],
    mean: float,
) -> list[_Unit] | None:
    """Units above ``threshold`` cut one level finer; None when none could be."""
    out: list[_Unit] = []
    changed = False
    for unit in units:
        if not unit.cuttable or unit.seconds <= threshold or unit.level >= 3:
            out.append(unit)
            continue
        level = unit.level + 1
        groups: dict[str, list[str]] = {}
        for nodeid in unit.nodeids:
            groups.setdefault(_level_key(nodeid, level), []).append(nodeid)
        changed = True
        sticky = next(iter(unit.files)) in whole_files
        for key, ids in groups.items():
            total = sum(seconds[n] for n in ids)
            # A class is the finest cut of a file kept whole for its fixtures (its
            # class fixtures stay whole too), unless it alone is more than a share.
            cuttable = level < 3 and not (level == 1 and key in whole)
            cuttable = cuttable and (not sticky or total > mean)
            out.append(_Unit(ids[0], ids, total, unit.files, level, cuttable))
    return out if changed else None


def _bond(units: list[_Unit], bonds: Sequence[frozenset[str]]) -> list[_Unit]:
    """Units joined where a bond spans them (union-find over unit positions)."""
    where: dict[str, int] = {n: i for i, unit in enumerate(units) for n in unit.nodeids}
    parent = list(range(len(units)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for bond in bonds:
        members = sorted({where[n] for n in bond if n in where})
        for other in members[1:]:
            a, b = find(members[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    joined: dict[int, _Unit] = {}
    for i, unit in enumerate(units):
        root = find(i)
        if root not in joined:
            joined[root] = _Unit(unit.key, list(unit.nodeids), unit.seconds, unit.files,
                                 unit.level, unit.cuttable)  # fmt: skip
            continue
        into = joined[root]
        into.nodeids.extend(unit.nodeids)
        into.seconds += unit.seconds
        into.files = into.files | unit.files
        into.key = min(into.key, unit.key)
    return list(joined.values())


def _deal(
    units: list[_Unit], count: int, rules: Constraints
) -> tuple[list[list[str]], list[float], list[int]]:
    """Longest first, each to the shard where it ends soonest (a file new to a shard
    costs its collection there); the first ``count`` units open a shard each."""
    collect = rules.collect_seconds

    def cost(files: Iterable[str]) -> float:
        return sum(collect.get(f) or rules.collect_prior for f in sorted(files))

    order = sorted(units, key=lambda u: (-(u.seconds + cost(u.files)), u.key))
    assigned: list[list[str]] = [[] for _ in range(count)]
    loads = [0.0] * count
    files: list[set[str]] = [set() for _ in range(count)]
    for position, unit in enumerate(order):
        if position < count:
            target = position
        else:
            target = min(
                range(count),
                key=lambda s: (loads[s] + unit.seconds + cost(unit.files - files[s]), s),
            )
        loads[target] += unit.seconds + cost(unit.files - files[target])
        files[target] |= unit.files
        assigned[target].extend(unit.nodeids)
    return assigned, loads, [len(f) for f in files]


def _result(
    assigned: list[list[str]], loads: list[float], files: list[int], units: int
) -> Partition:
    digest = hashlib.sha256()
    shards = []
    for index, ids in enumerate(assigned, start=1):
        ordered = tuple(sorted(ids))
        digest.update(f"{index}\0".encode())
        digest.update("\0".join(ordered).encode("utf-8", "surrogatepass"))
        shards.append(ShardLoad(index, ordered, round(loads[index - 1], 6), files[index - 1]))
    return Partition(len(assigned), tuple(shards), digest.hexdigest()[:16], units)
