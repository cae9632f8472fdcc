"""The settler carries verdicts out: tiers started, twins stopped, retries scheduled."""

from __future__ import annotations

from aqe._engine._blame import Crash
from aqe._engine._limits import EngineSettings
from aqe._engine._retry import RetryPolicy
from aqe._engine._settler import Settler
from aqe._model import Outcome, TestResult
from aqe._verdicts import AwaitTwin, Final, Isolate, Retry


class Actions:
    """What the settler asked the coordinator to do, in order."""

    def __init__(self) -> None:
        self.done: list[tuple[object, ...]] = []
        self._slots = 10

    def spawn_alone(self, nodeid: str, tier: str) -> int:
        self._slots += 1
        self.done.append(("spawn", nodeid, tier, self._slots))
        return self._slots

    def cancel(self, slot: int) -> None:
        self.done.append(("cancel", slot))

    def retry_later(self, nodeid: str, worker: int, due: float) -> None:
        self.done.append(("retry", nodeid, worker))


def _settler(**settings: object) -> tuple[Settler, Actions]:
    actions = Actions()
    engine = EngineSettings(workers=2, **settings)  # type: ignore[arg-type]
    settler = Settler(
        engine,
        {},
        spawn_alone=actions.spawn_alone,
        cancel=actions.cancel,
        retry_later=actions.retry_later,
    )
    return settler, actions


def _result(outcome: Outcome = "passed", tier: str = "hot") -> TestResult:
    return TestResult("t.py::a", "t.py", 1, outcome, {"call": 0.2}, 0, tier=tier)


def test_a_failure_is_retried_while_the_budget_lasts_then_final() -> None:
    settler, actions = _settler(retry=RetryPolicy(retries=1, budget=0.0))
    failed = settler.attempt(_result("failed"), 0, "hot", None)
    assert isinstance(failed, TestResult)
    assert settler.settle(failed, 0, "", True, stopping=False, known=10) == Retry()
    assert actions.done == [("retry", "t.py::a", 0)]
    again = settler.attempt(_result("failed"), 1, "hot", None)
    assert isinstance(again, TestResult) and again.attempt == 2
    assert settler.settle(again, 1, "", True, stopping=False, known=10) == Final("failed")
    assert settler.budget_note(10) is None  # refused by the per-test limit, not the budget


def test_the_budget_refuses_and_says_so() -> None:
    settler, _ = _settler(retry=RetryPolicy(retries=3, budget=0.0))
    for _ in range(2):
        settler.settle(_result("failed"), 0, "", True, stopping=False, known=10)
    note = settler.budget_note(10)
    assert note is not None and note.startswith("aqe: retry budget spent: 1 retries")


def test_a_timeout_is_hedged_and_a_passing_twin_stops_the_other() -> None:
    settler, actions = _settler()
    timeout = settler.attempts.number(_result("timeout"))
    assert settler.settle(timeout, 0, "timeout", True, stopping=False, known=1) == Isolate(
        ("warm", "cold")
    )
    assert actions.done == [("spawn", "t.py::a", "warm", 11), ("spawn", "t.py::a", "cold", 12)]
    passing = settler.attempt(_result("passed", "cold"), 12, "cold", None)
    assert isinstance(passing, TestResult) and passing.outcome == "flaky"
    assert settler.settle(passing, 12, "", True, stopping=False, known=1) == Final("flaky")
    assert actions.done[-1] == ("cancel", 11)
    assert settler.isolation_passes == [("t.py::a", "cold")]


def test_a_failing_hedged_attempt_waits_for_its_twin() -> None:
    settler, _ = _settler()
    settler.settle(_result("timeout"), 0, "timeout", True, stopping=False, known=1)
    warm = _result("timeout", "warm")
    assert settler.settle(warm, 11, "timeout", True, stopping=False, known=1) == AwaitTwin()
    cold = _result("timeout", "cold")
    assert settler.settle(cold, 12, "timeout", True, stopping=False, known=1) == Final("timeout")


def test_memory_past_the_limit_goes_to_the_next_tier_and_is_a_crash_on_the_last() -> None:
    settler, _ = _settler(max_worker_memory=100.0, isolate_on=frozenset({"memory"}))
    hot = settler.attempt(_result("passed"), 0, "hot", 150.0)
    assert isinstance(hot, TestResult) and hot.error_type == "MemoryLimit"
    assert settler.settle(hot, 0, "memory", True, stopping=False, known=1) == Isolate(("warm",))
    settler.attempt(_result("passed", "warm"), 11, "warm", 140.0)
    last = settler.attempt(_result("passed", "cold"), 12, "cold", 130.0)
    assert isinstance(last, Crash)
    assert (last.outcome, last.error_type, last.retry) == ("crashed", "MemoryLimit", False)
    assert last.message.endswith("150 MB hot, 140 MB warm, 130 MB cold")


def test_a_quarantined_failure_is_listed() -> None:
    settler, _ = _settler(quarantined=frozenset({"t.py::a"}))
    failed = settler.attempt(_result("failed"), 0, "hot", None)
    assert isinstance(failed, TestResult) and failed.quarantined
    verdict = settler.settle(failed, 0, "", True, stopping=True, known=1)
    assert verdict == Final("failed", quarantined=True)
    assert settler.quarantined_failures == ["t.py::a"]
