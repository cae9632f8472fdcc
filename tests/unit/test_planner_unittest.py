"""How ``split=auto`` cuts files of ``unittest.TestCase`` tests: where the class
changes, inside a class only when history shows it dominating, never when the
classes are numbered (a suite that runs them in sequence)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aqe._engine._plan import Estimate, Planner, _numbered_classes
from aqe._messages import Collect, RunTests


def _planner(names: list[str], seconds: float = 1.0, history: bool = True) -> Planner:
    """One unittest file ``u.py`` of ``names`` plus a quick plain file ``p.py``."""
    estimates = {f"u.py::{name}": Estimate(0.0, seconds) for name in names} if history else {}
    if history:
        estimates["p.py::t0"] = Estimate(0.0, 0.1)
    return Planner(
        files=["u.py", "p.py"],
        file_sizes=[100_000, 10],
        workers=2,
        estimates=estimates,
        collect_estimates={"u.py": 0.01, "p.py": 0.01},
    )


def _stolen_by_worker_1(planner: Planner, names: list[str]) -> set[str]:
    """Worker 0 collects the unittest file and starts it; worker 1 runs ``p.py``
    and then steals what it may: the ids it is to collect ``u.py`` for."""
    (collect,) = [m for m in planner.next_messages(0) if isinstance(m, Collect)]
    assert planner.files[collect.files[0]] == "u.py"
    planner.on_collected(0, collect.files, [f"u.py::{n}" for n in names], order_bound=["u.py"])
    planner.next_messages(0)
    (other,) = [m for m in planner.next_messages(1) if isinstance(m, Collect)]
    planner.on_collected(1, other.files, ["p.py::t0"])
    for _ in range(3):
        for message in planner.next_messages(1):
            if isinstance(message, RunTests):
                for nodeid in message.nodeids:
                    planner.on_finished(1, nodeid)
    return planner.workers[1].stolen.get(0, set())


def test_a_unittest_file_is_cut_where_the_class_changes() -> None:
    names = [f"TestA::test_{i}" for i in range(4)] + [f"TestB::test_{i}" for i in range(6)]
    stolen = _stolen_by_worker_1(_planner(names), names)
    assert stolen == {f"u.py::TestB::test_{i}" for i in range(6)}


def test_a_class_that_does_not_dominate_is_never_cut() -> None:
    # Worker 1 may take a whole class, not a part of one: TestA and TestB are a
    # third of the run each, less than half of a worker's fair share.
    names = [f"TestA::test_{i:02}" for i in range(10)] + [f"TestB::test_{i:02}" for i in range(10)]
    stolen = _stolen_by_worker_1(_planner(names), names)
    assert stolen in (set(), {f"u.py::TestB::test_{i:02}" for i in range(10)})


def test_a_class_that_dominates_the_run_by_history_is_cut_inside() -> None:
    names = [f"TestBig::test_{i:02}" for i in range(20)]
    stolen = _stolen_by_worker_1(_planner(names), names)
    assert stolen, "the one class is the whole run: it is shared"
    tail = sorted(stolen)
    # The contiguous tail of the class, in its order; the owner keeps the head.
    assert tail == [f"u.py::{n}" for n in names[-len(tail) :]]
    assert len(tail) < len(names) - 1


def test_without_history_a_single_class_stays_on_one_worker() -> None:
    names = [f"TestBig::test_{i:02}" for i in range(20)]
    assert _stolen_by_worker_1(_planner(names, history=False), names) == set()


def test_numbered_classes_run_in_sequence_so_their_file_is_never_cut() -> None:
    names = (
        ["Test01_Init::runTest"]
        + [f"Test02_Plain::test_{i}" for i in range(6)]
        + ["Test03_EnableFast::runTest"]
        + [f"Test04_Fast::test_{i}" for i in range(6)]
    )
    planner = _planner(names)
    assert _stolen_by_worker_1(planner, names) == set()
    assert "u.py" in planner.sequenced


def test_a_started_class_is_not_cut_at_the_head_of_what_is_left() -> None:
    planner = _planner([f"TestA::test_{i}" for i in range(2)])
    planner.dominant.clear()
    (collect,) = [m for m in planner.next_messages(0) if isinstance(m, Collect)]
    ids = [f"u.py::TestA::test_{i}" for i in range(6)] + [
        f"u.py::TestB::test_{i}" for i in range(2)
    ]
    planner.on_collected(0, collect.files, ids, order_bound=["u.py"])
    unit = planner.workers[0].ready[0]
    assert unit.classes_only
    # Sent the first test of TestA: the rest may be cut only at TestB.
    assert planner._cut(list(unit.nodeids)[1:], 2.0, 0, ids[0], classes_only=True) == 5
    # Sent all of TestA: what is left may go whole.
    assert planner._cut(ids[6:], 2.0, 0, ids[5], classes_only=True) == 0


def test_numbered_classes_need_two_different_numbers() -> None:
    assert _numbered_classes(["a.py::Test01_A::t", "a.py::Test02_B::t"])
    assert _numbered_classes(["a.py::Test1Mode::t", "a.py::Test2Mode::t"])
    assert not _numbered_classes(["a.py::TestHTTP2Client::t", "a.py::TestHTTP2Server::t"])
    assert not _numbered_classes(["a.py::TestA::t", "a.py::TestB::t", "a.py::test_01"])


def test_fewer_files_than_workers_get_every_worker_when_large_and_cuttable(
    tmp_path: Path,
) -> None:
    from aqe._engine._coordinator import SHARE_BYTES, pool_size

    big, small = tmp_path / "test_big.py", tmp_path / "test_small.py"
    big.write_text("#" * SHARE_BYTES)
    small.write_text("def test_x(): pass\n")
    files: Any = [SimpleNamespace(path=big)]
    assert pool_size(2, 1, files, "auto") == 2
    assert pool_size(2, 1, files, "test") == 2
    assert pool_size(2, 1, files, "file") == 1  # never cut: one worker has it all
    assert pool_size(2, 1, [SimpleNamespace(path=small)], "auto") == 1
    assert pool_size(4, 8, files, "auto") == 4


def test_numbered_classes_collected_up_front_are_never_cut_either() -> None:
    # --lf & co. collect in the coordinator: the planner gets the items directly.
    names = ["Test01_Init::runTest"] + [f"Test02_Plain::test_{i}" for i in range(6)]
    planner = Planner(
        files=[],
        file_sizes=[],
        workers=2,
        estimates={},
        collect_estimates={},
        direct_items=[(f"u.py::{name}", "u.py") for name in names],
        order_bound=["u.py"],
    )
    assert "u.py" in planner.sequenced
    assert all(not unit.splittable for plan in planner.workers for unit in plan.ready)
