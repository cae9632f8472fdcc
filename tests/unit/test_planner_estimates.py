"""The work left, as the live view and the status file read it many times a second:
kept in O(units), equal to the sum of every queued test's estimate."""

from __future__ import annotations

from aqe._engine._plan import Estimate, Planner
from aqe._messages import Collect


def _collected(history: bool) -> tuple[Planner, list[str]]:
    ids = [f"a.py::test_{i}" for i in range(40)] + [f"b.py::test_{i}" for i in range(10)]
    estimates = {nodeid: Estimate(0.0, 0.01 * (n + 1)) for n, nodeid in enumerate(ids)}
    planner = Planner(
        files=["a.py", "b.py"],
        file_sizes=[4000, 1000],
        workers=1,
        estimates=estimates if history else {},
        collect_estimates={},
    )
    (collect,) = [m for m in planner.next_messages(0) if isinstance(m, Collect)]
    planner.on_collected(0, collect.files, [n for n in ids if n.startswith(planner.files[0])])
    for message in planner.next_messages(0):
        if isinstance(message, Collect):
            planner.on_collected(0, message.files, ids[40:] if 1 in message.files else ids[:40])
    return planner, ids


def _summed(planner: Planner) -> float:
    plan = planner.workers[0]
    ready = sum(planner.test_est(n) for unit in plan.ready for n in unit.nodeids)
    return ready + plan.outstanding_est() + sum(planner.file_est[i] for i in plan.files_todo)


def test_with_history_the_work_left_is_the_sum_of_the_tests_estimates() -> None:
    planner, _ = _collected(history=True)
    planner.next_messages(0)
    assert abs((planner.remaining_est() or 0.0) - _summed(planner)) < 1e-9


def test_without_history_the_work_left_follows_what_the_run_has_learnt() -> None:
    planner, ids = _collected(history=False)
    planner.next_messages(0)
    for nodeid in [n for n, _ in planner.workers[0].outstanding]:
        planner.on_finished(0, nodeid, 0.002)
    for nodeid in ids[40:48]:  # b.py's tests, learnt while a.py's wait (as if elsewhere)
        planner.observe(nodeid, 0.5)
    assert abs((planner.remaining_est() or 0.0) - _summed(planner)) < 1e-9
