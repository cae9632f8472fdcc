"""What becomes of an ended attempt: every branch of ``_verdicts.decide`` and its helpers."""

from __future__ import annotations

from aqe._model import TestResult
from aqe._verdicts import (
    Attempt,
    Attempts,
    AwaitTwin,
    Final,
    Hedges,
    Isolate,
    Retry,
    Situation,
    decide,
    isolation_tiers,
    memory_figures,
    memory_note,
    memory_verdict,
    numbered,
)

ALL = frozenset({"crash", "timeout", "memory"})


def _result(outcome: str = "passed", **changes: object) -> TestResult:
    fields: dict[str, object] = {
        "nodeid": "t.py::test_a",
        "file": "t.py",
        "line": 1,
        "outcome": outcome,
        "phases": {"call": 0.1},
        "worker": 0,
    }
    fields.update(changes)
    return TestResult(**fields)  # type: ignore[arg-type]


def test_a_pass_is_final() -> None:
    assert decide(Attempt("passed"), Situation()) == Final("passed")


def test_a_failure_asks_for_a_retry_while_the_run_goes_on() -> None:
    assert decide(Attempt("failed"), Situation()) == Retry()
    assert decide(Attempt("error"), Situation()) == Retry()


def test_a_failure_is_final_once_the_run_stops() -> None:
    assert decide(Attempt("failed"), Situation(stopping=True)) == Final("failed")


def test_an_attempt_that_may_not_repeat_is_final_whatever_else_holds() -> None:
    attempt = Attempt("crashed", isolate_reason="crash", may_repeat=False)
    assert decide(attempt, Situation(isolate_on=ALL, twins_running=True)) == Final("crashed")


def test_a_flaky_pass_is_final_as_flaky() -> None:
    assert decide(Attempt("flaky"), Situation()) == Final("flaky")


def test_a_crash_on_a_shared_worker_runs_alone_on_the_warm_tier() -> None:
    attempt = Attempt("crashed", tier="hot", isolate_reason="crash")
    assert decide(attempt, Situation()) == Isolate(("warm",))


def test_a_crash_on_the_warm_tier_goes_cold_and_on_the_cold_one_is_retried() -> None:
    warm = Attempt("crashed", tier="warm", isolate_reason="crash")
    assert decide(warm, Situation()) == Isolate(("cold",))
    cold = Attempt("crashed", tier="cold", isolate_reason="crash")
    assert decide(cold, Situation()) == Retry()


def test_a_timeout_on_a_shared_worker_runs_warm_and_cold_side_by_side() -> None:
    attempt = Attempt("timeout", tier="hot", isolate_reason="timeout")
    assert decide(attempt, Situation()) == Isolate(("warm", "cold"))


def test_isolation_only_for_the_reasons_asked_for() -> None:
    attempt = Attempt("crashed", isolate_reason="crash")
    assert decide(attempt, Situation(isolate_on=frozenset({"timeout"}))) == Retry()
    assert isolation_tiers(Attempt("failed"), Situation(isolate_on=ALL)) == ()


def test_no_isolation_after_a_hedge_or_while_stopping() -> None:
    attempt = Attempt("timeout", tier="warm", isolate_reason="timeout")
    assert decide(attempt, Situation(hedged=True)) == Retry()
    assert decide(attempt, Situation(stopping=True)) == Final("timeout")


def test_a_passing_attempt_past_the_memory_limit_runs_alone_on_the_next_tier() -> None:
    attempt = Attempt("passed", tier="hot", isolate_reason="memory")
    assert decide(attempt, Situation(isolate_on=ALL)) == Isolate(("warm",))
    last = Attempt("passed", tier="cold", isolate_reason="memory")
    assert decide(last, Situation(isolate_on=ALL)) == Final("passed")


def test_a_failed_hedged_attempt_waits_for_its_twin_a_passing_one_decides() -> None:
    failed = Attempt("timeout", tier="warm", isolate_reason="timeout")
    assert decide(failed, Situation(hedged=True, twins_running=True)) == AwaitTwin()
    passing = Attempt("passed", tier="cold")
    assert decide(passing, Situation(hedged=True, twins_running=True)) == Final("passed")


def test_a_quarantined_failure_is_final_and_quarantined_a_quarantined_pass_is_not() -> None:
    failed = Attempt("failed", quarantined=True)
    assert decide(failed, Situation(stopping=True)) == Final("failed", quarantined=True)
    assert decide(Attempt("passed", quarantined=True), Situation()) == Final("passed")


def test_hedges_a_pass_cancels_the_twins_the_last_failure_decides() -> None:
    hedges = Hedges()
    hedges.start("t", [3, 4])
    hedges.start("single", [5])
    assert "t" in hedges and "single" not in hedges
    assert hedges.ended("t", 3, passing=False) == (True, [])
    assert hedges.ended("t", 4, passing=False) == (False, [])
    assert "t" in hedges  # no tier after a hedge
    hedges.start("u", [1, 2])
    assert hedges.ended("u", 2, passing=True) == (False, [1])
    assert hedges.ended("other", 0, passing=False) == (False, [])


def test_attempts_are_numbered_and_a_pass_after_a_failure_is_flaky() -> None:
    attempts = Attempts(quarantined={"t.py::q"})
    first = _result("failed")
    assert attempts.number(first) is first  # nothing changed: no copy
    second = attempts.number(_result("passed"), tier="warm")
    assert (second.attempt, second.outcome, second.tier) == (2, "flaky", "warm")
    quarantined = attempts.number(_result("failed", nodeid="t.py::q"))
    assert quarantined.quarantined and quarantined.attempt == 1


def test_numbered_adds_a_memory_note_in_the_same_copy() -> None:
    result = numbered(_result("passed"), 1, False, False, error_type="MemoryLimit", message="past")
    assert (result.outcome, result.error_type, result.message) == ("passed", "MemoryLimit", "past")
    assert numbered(_result("passed"), 2, False, False).outcome == "passed"


def test_memory_texts_name_the_limit_and_every_breach() -> None:
    breaches = [("hot", 234.4), ("warm", 239.0)]
    assert memory_figures(breaches) == "234 MB hot, 239 MB warm"
    assert "200 MB limit" in memory_verdict(200, breaches)
    assert memory_verdict(200, breaches).endswith("234 MB hot, 239 MB warm")
    assert memory_note(250.2, 200) == (
        "worker at 250 MB after this test, past the 200 MB limit (--max-worker-memory)"
    )
