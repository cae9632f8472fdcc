"""``aqe detect-flaky``: run a selection again and again, in varied orders, and judge.

The first round is pytest's own order: the whole selection in one fresh pytest
process, as plain ``pytest`` runs it, so a victim that fails there (its polluter
runs just before it in the same file) is never missed because no shuffle happened
to put the two on one worker. Each later round shuffles the selection (seeded: a
round can be replayed; every second one is the shuffle before it reversed) and
deals it to ``workers`` fresh pytest processes, each running its share in exactly
the given order, so the tests that ran before a test are known. A test whose
outcome varies, or that failed in every round, is then run alone a few times, each
in a fresh process:

* it fails alone every time: **brittle** (it passes only after other tests set
  state up);
* its outcome varies alone too: **flaky** (not order-dependent);
* it passes alone every time: **order-dependent victim**; the tests that ran
  before it on its worker in a failing round are bisected (keeping their order)
  down to the one that makes it fail: its **polluter**.

Every test execution beyond the rounds themselves is counted as a rerun spent.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._record import ENV

Verdict = Literal["stable", "failing", "flaky", "brittle", "order-dependent"]

FAIL = frozenset({"failed", "error"})
#: Most predecessors bisected: beyond this the polluter search is left out.
MAX_BISECT = 2000


@dataclass
class TestVerdict:
    __test__ = False
    nodeid: str
    verdict: Verdict
    #: Outcome letter per round: P passed, F failed, E error, S skipped, - not run.
    rounds: str
    alone: str = ""
    polluter: str | None = None
    #: Why no polluter was named, when a victim has none.
    note: str = ""


@dataclass
class Report:
    runs: int
    seed: int
    workers: int
    tests: list[TestVerdict] = field(default_factory=list)
    executions: int = 0
    reruns: int = 0


class Runner:
    """Runs node ids in fresh pytest processes, in the order given; counts executions."""

    def __init__(self, root: Path, pytest_args: Sequence[str] = (), timeout: float = 600) -> None:
        self.root = root
        self.pytest_args = list(pytest_args)
        self.timeout = timeout
        self.executions = 0
        self._lock = threading.Lock()

    def run_many(self, orders: Sequence[Sequence[str]]) -> list[dict[str, str]]:
        """Run each order in its own process, all at once; outcomes per order."""
        with tempfile.TemporaryDirectory(prefix="aqe-detect-") as tmp:
            started = []
            for number, order in enumerate(orders):
                out = Path(tmp) / f"{number}.json"
                env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_ADDOPTS")}
                env[ENV] = str(out)
                command = [
                    sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-p", "no:randomly", "-p", "aqe._knowledge._record", "-o", "addopts=",
                    *self.pytest_args, *order,
                ]  # fmt: skip
                process = subprocess.Popen(
                    command,
                    cwd=self.root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                started.append((process, out, order))
                with self._lock:
                    self.executions += len(order)
            results = []
            for process, out, order in started:
                try:
                    process.wait(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                try:
                    outcomes = json.loads(out.read_text())
                except (OSError, ValueError):
                    outcomes = {}
                # A test the process never reported (it crashed) failed.
                results.append({n: outcomes.get(n, "error") for n in order})
            return results

    def fails(self, order: Sequence[str]) -> bool:
        """Whether the last test of ``order`` fails when run after the others."""
        return self.run_many([order])[0][order[-1]] in FAIL


def _letter(outcome: str | None) -> str:
    return {"passed": "P", "failed": "F", "error": "E", "skipped": "S", "xfailed": "S"}.get(
        outcome or "", "-"
    )


def _deal(order: list[str], workers: int) -> list[list[str]]:
    size = -(-len(order) // workers)
    return [order[i : i + size] for i in range(0, len(order), size)]


def detect(
    runner: Runner,
    nodeids: Sequence[str],
    runs: int,
    workers: int = 2,
    seed: int = 0,
    alone_repeats: int = 3,
    judge: set[str] | None = None,
) -> Report:
    """Judge ``judge`` (default: every test) from rounds of all ``nodeids``, given in
    pytest's order: a new test is only order-dependent among the tests it runs with."""
    rng = random.Random(seed)
    report = Report(runs=runs, seed=seed, workers=workers)
    history: dict[str, list[str | None]] = {n: [] for n in nodeids}
    before: dict[str, list[list[str]]] = {n: [] for n in nodeids}  # predecessors when failing
    order: list[str] = list(nodeids)
    for number in range(runs):
        # Every second shuffled round runs the one before backwards: each pair of tests
        # that shared a worker then ran once in each order, so a polluter cannot always
        # come after its victim by chance.
        if number == 0:
            chunks = [list(nodeids)]  # pytest's own order, in one process
        else:
            if number % 2 == 0:
                order.reverse()
            else:
                order = list(nodeids)
                rng.shuffle(order)
            chunks = _deal(order, max(1, min(workers, len(order))))
        for chunk, outcomes in zip(chunks, runner.run_many(chunks), strict=True):
            for index, nodeid in enumerate(chunk):
                history[nodeid].append(outcomes.get(nodeid))
                if outcomes.get(nodeid) in FAIL:
                    before[nodeid].append(chunk[:index])
    base = runner.executions
    suspects = []
    for nodeid in nodeids:
        if judge is not None and nodeid not in judge:
            continue
        seen = [o for o in history[nodeid] if o in FAIL or o == "passed"]
        letters = "".join(_letter(o) for o in history[nodeid])
        if not seen or all(o == "passed" for o in seen):
            report.tests.append(TestVerdict(nodeid, "stable", letters))
        else:
            suspects.append((nodeid, letters, all(o in FAIL for o in seen)))
    # Every suspect alone, `alone_repeats` times, all in parallel rounds.
    alone: dict[str, list[str]] = {n: [] for n, _, _ in suspects}
    for _ in range(alone_repeats):
        singles = [[n] for n, _, _ in suspects]
        for single, outcomes in zip(singles, runner.run_many(singles), strict=True):
            alone[single[0]].append(outcomes[single[0]])
    victims = []
    for nodeid, letters, always in suspects:
        by_itself = "".join(_letter(o) for o in alone[nodeid])
        failed_alone = sum(o in FAIL for o in alone[nodeid])
        if failed_alone == len(alone[nodeid]):
            verdict: Verdict = "failing" if always else "brittle"
            report.tests.append(TestVerdict(nodeid, verdict, letters, by_itself))
        elif failed_alone:
            report.tests.append(TestVerdict(nodeid, "flaky", letters, by_itself))
        else:
            victims.append(TestVerdict(nodeid, "order-dependent", letters, by_itself))

    def search(found: TestVerdict) -> TestVerdict:
        found.polluter, found.note = _bisect(runner, found.nodeid, before[found.nodeid])
        if found.polluter is None and found.note.startswith("did not fail again"):
            found.verdict = "flaky"
        return found

    # Victims are bisected side by side, one process per check and worker.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        report.tests.extend(pool.map(search, victims))
    report.executions = runner.executions
    report.reruns = runner.executions - base
    order_of = {n: i for i, n in enumerate(nodeids)}
    rank = {"order-dependent": 0, "flaky": 1, "brittle": 2, "failing": 3, "stable": 4}
    report.tests.sort(key=lambda t: (rank[t.verdict], order_of[t.nodeid]))
    return report


def _bisect(
    runner: Runner, victim: str, failing_befores: list[list[str]]
) -> tuple[str | None, str]:
    """The one test that makes ``victim`` fail when it runs first (order kept)."""
    if not failing_befores:
        return None, "failed in no round after other tests"
    candidates = min(failing_befores, key=len)[-MAX_BISECT:]
    if not candidates:
        return None, "failed as the first test of its worker: not order-dependent"
    if not runner.fails([*candidates, victim]):
        return None, "did not fail again after the same tests: flaky"
    while len(candidates) > 1:
        half = len(candidates) // 2
        first, second = candidates[:half], candidates[half:]
        if runner.fails([*first, victim]):
            candidates = first
        elif runner.fails([*second, victim]):
            candidates = second
        else:
            return None, "fails only after several tests together"
    # Twice more, so that a test that fails at random is not given a polluter by luck.
    pair = [candidates[0], victim]
    if all(outcomes[victim] in FAIL for outcomes in runner.run_many([pair, pair, pair])):
        return candidates[0], ""
    return None, "did not fail again after the same tests: flaky"


def report_json(report: Report) -> dict[str, Any]:
    return {
        "schema": "aqe-detect-flaky",
        "version": 1,
        "runs": report.runs,
        "seed": report.seed,
        "workers": report.workers,
        "executions": report.executions,
        "reruns": report.reruns,
        "tests": [
            {
                "nodeid": t.nodeid,
                "verdict": t.verdict,
                "rounds": t.rounds,
                "alone": t.alone,
                "polluter": t.polluter,
                "note": t.note,
            }
            for t in report.tests
        ],
    }


def report_lines(report: Report, show_stable: bool = False) -> list[str]:
    lines = []
    for t in report.tests:
        if t.verdict == "stable" and not show_stable:
            continue
        extra = f"  polluter: {t.polluter}" if t.polluter else (f"  ({t.note})" if t.note else "")
        alone = f" alone {t.alone}" if t.alone else ""
        lines.append(f"{t.verdict:15} {t.rounds}{alone}  {t.nodeid}{extra}")
    counts: dict[str, int] = {}
    for t in report.tests:
        counts[t.verdict] = counts.get(t.verdict, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    lines.append(
        f"{len(report.tests)} tests, {report.runs} rounds (seed {report.seed}, "
        f"{report.workers} workers): {summary}; {report.reruns} reruns spent to judge"
    )
    return lines
