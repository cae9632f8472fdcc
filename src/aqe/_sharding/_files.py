"""The file-level plan: which shard collects each test file, without importing any.

A shard that collected the whole suite to learn every test id paid the whole suite's
imports in every job. Here the plan reads only what every job sees alike without
importing test modules: the test files pytest's own collection finds (it stops at
file nodes, as the engine's shallow collection does), their sizes, and the history's
tests per file. A file the history knows enters the partition as its known tests; a
file it does not know as one unit (its size-based guess), so it is never cut. A shard
then collects only its files; a file the partition cut between shards is collected
by each shard that holds part of it, and its collected tests are assigned by
:func:`assign` alone, the same in every job: a test the plan placed goes to its
shard, a new one to the shard of its class or function, else to one of the file's
shards by a hash of its id.

Serial groups and ``depends`` can bind tests across files, and markers are only known
after import: files that name either marker (or sit under a ``conftest.py`` that
does) form one unit, so they land in one shard whole.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .._engine._plan import Estimate, Planner
from ._estimate import COLLECT_PRIOR, DEFAULT_PER_TEST
from ._partition import Constraints, Partition, ShardLoad, ShardTest, partition

#: A test file that applies aqe's binding markers (``pytest.mark.serial``, ``.depends``).
_MARKED = re.compile(rb"\bmark\s*\.\s*(?:serial|depends)\b")
#: A conftest.py that may apply them (a hook's ``add_marker("serial")`` too).
_MARKED_CONFTEST = re.compile(rb"\b(?:serial|depends)\b")
#: Test ids per byte of a test file, when the history knows no file to learn it from.
TESTS_PER_BYTE = 1 / 400


@dataclass(frozen=True, slots=True)
class FilePlan:
    """The partition of a suite's files and, where it cuts one, of its known tests."""

    partition: Partition
    #: Each file's shards (1-based, sorted); most files have one.
    shards_of: Mapping[str, tuple[int, ...]]
    #: For each file the plan cuts: the shard of each test the history knew in it.
    cut: Mapping[str, Mapping[str, int]]

    def files_of(self, index: int) -> list[str]:
        return sorted(path for path, shards in self.shards_of.items() if index in shards)


def bound_files(paths: Mapping[str, Path], root: Path) -> frozenset[str]:
    """The files (node id -> path on disk) whose tests may be bound to other files'
    by serial groups or ``depends`` (see the module's docstring); read as bytes,
    never imported. Conftests are looked for from a file's directory up to ``root``."""
    marked_dirs: dict[Path, bool] = {}

    def conftest_marks(directory: Path) -> bool:
        if directory not in marked_dirs:
            try:
                text = (directory / "conftest.py").read_bytes()
            except OSError:
                text = b""
            marked_dirs[directory] = bool(_MARKED_CONFTEST.search(text))
        return marked_dirs[directory]

    bound = set()
    top = root.resolve()
    for path, full in sorted(paths.items()):
        try:
            if _MARKED.search(full.read_bytes()):
                bound.add(path)
                continue
        except OSError:
            pass
        directory = full.resolve().parent
        while True:
            if conftest_marks(directory):
                bound.add(path)
                break
            if directory == top or top not in directory.parents:
                break
            directory = directory.parent
    return frozenset(bound)


def plan_files(
    files: Mapping[str, int],
    count: int,
    estimates: Mapping[str, Estimate],
    collect: Mapping[str, float],
    *,
    direct: Sequence[str] = (),
    bound: Iterable[str] = (),
    per_test: float = DEFAULT_PER_TEST,
) -> FilePlan:
    """The plan for ``files`` (path -> size in bytes) and ``direct`` items (ids
    pytest's collection gave outside any file node). ``estimates`` are the history's
    per test id, ``collect`` its seconds to collect each file; ``per_test`` is aqe's
    own cost per test, which the durations leave out."""
    paths = sorted(files)
    known = {n: e for n, e in estimates.items() if n.split("::", 1)[0] in files}
    planner = Planner(paths, [files[p] for p in paths], 1, known, collect)
    by_file: dict[str, list[str]] = {}
    for nodeid in sorted(known):
        by_file.setdefault(nodeid.split("::", 1)[0], []).append(nodeid)
    known_bytes = sum(files[p] for p in by_file)
    known_tests = sum(len(ids) for ids in by_file.values())
    per_byte = known_tests / known_bytes if known_bytes and known_tests else TESTS_PER_BYTE
    tests: list[ShardTest] = []
    for index, path in enumerate(paths):
        ids = by_file.get(path)
        if ids:
            tests.extend(ShardTest(n, planner.test_est(n) + per_test) for n in ids)
            continue
        guessed = max(1.0, files[path] * per_byte)
        by_size = max(planner.file_est[index] - planner.collect_est[index], 0.0)
        tests.append(ShardTest(path, by_size + guessed * per_test))
    prior = planner.test_est("\0") + per_test
    tests.extend(
        ShardTest(n, (e.total if (e := estimates.get(n)) else prior) + per_test) for n in direct
    )
    bound_set = set(bound) & set(files)
    bond = frozenset(
        nodeid for test in tests if (nodeid := test.nodeid).split("::", 1)[0] in bound_set
    )
    # A class stays whole unless it alone is more than a shard's share: its class
    # fixtures (and a unittest class's setUpClass) are paid once, and whether it is a
    # unittest class is only known after import.
    by_class: dict[str, float] = {}
    for test in tests:
        if (base := test.nodeid.split("[", 1)[0]).count("::") >= 2:
            scope = base.rsplit("::", 1)[0]
            by_class[scope] = by_class.get(scope, 0.0) + test.seconds
    share = sum(test.seconds for test in tests) / count
    scopes = frozenset(scope for scope, seconds in by_class.items() if seconds <= share)
    rules = Constraints(
        whole_files=frozenset(planner.sticky) | frozenset(bound_set),
        whole_scopes=scopes,
        bonds=(bond,) if len(bond) > 1 else (),
        # Each file is collected only by the shards that run its tests.
        collect_seconds={p: collect[p] for p in paths if p in collect},
        collect_prior=COLLECT_PRIOR,
    )
    plan = _spread(partition(tests, count, rules), {t.nodeid: t.seconds for t in tests})
    shards_of: dict[str, set[int]] = {}
    placed: dict[str, dict[str, int]] = {}
    direct_ids = set(direct)
    for shard in plan.shards:
        for nodeid in shard.nodeids:
            if nodeid in direct_ids:
                continue
            path = nodeid.split("::", 1)[0]
            shards_of.setdefault(path, set()).add(shard.index)
            if nodeid != path:  # a file the history does not know: no ids to place
                placed.setdefault(path, {})[nodeid] = shard.index
    cut = {path: placed.get(path, {}) for path, shards in shards_of.items() if len(shards) > 1}
    return FilePlan(
        partition=plan,
        shards_of={path: tuple(sorted(shards)) for path, shards in shards_of.items()},
        cut=cut,
    )


def _spread(plan: Partition, seconds: Mapping[str, float]) -> Partition:
    """Shards left empty (fewer units than shards) share the largest files the
    history does not know: such a file cannot be cut by its ids before it is
    imported, so each shard that shares it collects it and takes its share of the
    collected tests (:func:`assign`). Without this, a suite of two files the history
    has not seen would leave two of four shards idle."""
    empty = [shard.index for shard in plan.shards if not shard.nodeids]
    whole = sorted(
        (n for shard in plan.shards for n in shard.nodeids if "::" not in n and n in seconds),
        key=lambda n: (-seconds[n], n),
    )
    if not empty or not whole:
        return plan
    sharers: dict[str, list[int]] = {n: [] for n in whole}
    for position, index in enumerate(empty):
        sharers[whole[position % len(whole)]].append(index)
    owner = plan.shard_of()
    ids: dict[int, list[str]] = {shard.index: list(shard.nodeids) for shard in plan.shards}
    loads = {shard.index: shard.predicted for shard in plan.shards}
    files = {shard.index: shard.files for shard in plan.shards}
    for path, extra in sharers.items():
        if not extra:
            continue
        share = seconds[path] / (len(extra) + 1)
        loads[owner[path]] -= seconds[path] - share
        for index in extra:
            ids[index].append(path)
            loads[index] += share
            files[index] += 1
    digest = hashlib.sha256()
    shards = []
    for index in sorted(ids):
        ordered = tuple(sorted(ids[index]))
        digest.update(f"{index}\0".encode())
        digest.update("\0".join(ordered).encode("utf-8", "surrogatepass"))
        shards.append(ShardLoad(index, ordered, round(loads[index], 6), files[index]))
    return replace(plan, shards=tuple(shards), digest=digest.hexdigest()[:16])


def assign(
    nodeids: Iterable[str], planned: Mapping[str, int], shards: Sequence[int]
) -> dict[str, int]:
    """Each collected test of a cut file -> its shard, from that file's tests alone
    (so every job that collects the file agrees): planned tests where the plan put
    them, a new test with its function's or class's planned tests (the shard holding
    most of them, the lowest on ties), else the rest dealt in turn over ``shards``
    in the order of their ids."""
    groups: dict[str, dict[int, int]] = {}
    for nodeid, planned_shard in planned.items():
        for key in _keys(nodeid):
            tally = groups.setdefault(key, {})
            tally[planned_shard] = tally.get(planned_shard, 0) + 1
    out: dict[str, int] = {}
    rest: list[str] = []
    for nodeid in nodeids:
        shard: int | None = planned.get(nodeid)
        if shard is None:
            for key in _keys(nodeid):
                votes = groups.get(key)
                if votes:
                    shard = min(votes.items(), key=lambda vote: (-vote[1], vote[0]))[0]
                    break
        if shard is None:
            rest.append(nodeid)
        else:
            out[nodeid] = shard
    order = sorted(set(shards))
    for position, nodeid in enumerate(sorted(set(rest))):
        out[nodeid] = order[position % len(order)]
    return out


def _keys(nodeid: str) -> list[str]:
    """A test's enclosing groups, finest first: its function, then its class."""
    base = nodeid.split("[", 1)[0]
    parts = base.split("::")
    keys = [base] if base != nodeid else []
    if len(parts) > 2:
        keys.append("::".join(parts[:-1]))
    return keys
