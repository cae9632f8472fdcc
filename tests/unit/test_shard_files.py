"""The file-level shard plan: files dealt whole without import, cut files' tests
assigned from their own ids alone, bound files kept together; aqe's per-test cost."""

from __future__ import annotations

import time
from pathlib import Path

from aqe._engine._plan import Estimate
from aqe._model import RunRecord, TestResult
from aqe._sharding._estimate import DEFAULT_PER_TEST, PER_TEST_BOUNDS, per_test_cost
from aqe._sharding._files import assign, bound_files, plan_files
from aqe._sharding._select import WorkerPlan, keep_mine
from aqe._store import HistoryStore


def _history(spec: dict[str, list[float]]) -> dict[str, Estimate]:
    return {
        f"{path}::test_{i}": Estimate(setup=0.0, total=seconds)
        for path, durations in spec.items()
        for i, seconds in enumerate(durations)
    }


def test_known_files_are_dealt_whole_when_that_balances() -> None:
    spec = {f"tests/test_{f}.py": [0.1] * 10 for f in range(8)}
    files = {path: 2000 for path in spec}
    plan = plan_files(files, 4, _history(spec), {})
    assert plan.cut == {}
    assert sorted(len(plan.files_of(i)) for i in range(1, 5)) == [2, 2, 2, 2]
    assert plan.partition.balance() < 1.02
    # Every file in exactly one shard.
    assert sorted(p for i in range(1, 5) for p in plan.files_of(i)) == sorted(files)


def test_a_plan_is_the_same_whatever_the_order_of_its_inputs() -> None:
    spec = {f"t/test_{f}.py": [0.01 * (f + i) for i in range(9)] for f in range(20)}
    files = {path: 100 * (n + 1) for n, path in enumerate(spec)}
    first = plan_files(files, 3, _history(spec), {})
    again = plan_files(dict(reversed(list(files.items()))),
                       3, dict(reversed(list(_history(spec).items()))), {})  # fmt: skip
    assert first.partition.digest == again.partition.digest
    assert first.shards_of == again.shards_of


def test_a_file_the_history_does_not_know_is_one_unit_by_its_size() -> None:
    spec = {"tests/test_known.py": [0.5] * 4}
    files = {"tests/test_known.py": 1000, "tests/test_new.py": 4000}
    plan = plan_files(files, 2, _history(spec), {})
    ids = {n for shard in plan.partition.shards for n in shard.nodeids}
    assert "tests/test_new.py" in ids  # the whole file, never cut (its ids are unknown)
    assert plan.shards_of["tests/test_new.py"] in ((1,), (2,))
    assert plan.partition.from_history is False  # set by the caller, who knows


def test_without_history_files_are_dealt_by_size() -> None:
    files = {f"t/test_{n}.py": 1000 * (n + 1) for n in range(6)}
    plan = plan_files(files, 3, {}, {})
    assert all(plan.files_of(i) for i in (1, 2, 3))
    assert plan.cut == {}
    # Sizes 1..6 (thousands of bytes) dealt longest first: 6+1, 5+2, 4+3.
    assert sorted(tuple(sorted(plan.files_of(i))) for i in (1, 2, 3)) == sorted(
        [("t/test_0.py", "t/test_5.py"), ("t/test_1.py", "t/test_4.py"),
         ("t/test_2.py", "t/test_3.py")]
    )  # fmt: skip


def test_one_long_file_is_cut_between_shards_and_its_tests_assigned_by_id() -> None:
    spec = {"t/test_big.py": [1.0] * 12, "t/test_small.py": [0.1]}
    plan = plan_files({"t/test_big.py": 5000, "t/test_small.py": 100}, 3, _history(spec), {})
    assert set(plan.cut) == {"t/test_big.py"}
    assert plan.shards_of["t/test_big.py"] == (1, 2, 3)
    planned = plan.cut["t/test_big.py"]
    collected = [f"t/test_big.py::test_{i}" for i in range(12)] + ["t/test_big.py::test_new"]
    owner = assign(collected, planned, plan.shards_of["t/test_big.py"])
    assert all(owner[n] == planned[n] for n in planned)
    assert owner["t/test_big.py::test_new"] in (1, 2, 3)
    # The same from any order, and the same again (another job).
    assert assign(list(reversed(collected)), planned, (3, 1, 2)) == owner


def test_new_tests_follow_their_function_then_their_class() -> None:
    planned = {
        "t.py::TestA::test_x[1]": 2,
        "t.py::TestA::test_x[2]": 2,
        "t.py::TestA::test_y": 3,
        "t.py::TestB::test_z": 1,
    }
    owner = assign(
        ["t.py::TestA::test_x[3]", "t.py::TestA::test_new", "t.py::TestB::test_w"],
        planned,
        (1, 2, 3),
    )
    assert owner == {
        "t.py::TestA::test_x[3]": 2,  # its function's shard
        "t.py::TestA::test_new": 2,  # its class's majority (2 of 3)
        "t.py::TestB::test_w": 1,
    }


def test_classes_stay_whole_when_a_file_is_cut() -> None:
    history = {
        f"t/test_db.py::Test{c}::test_{i}": Estimate(setup=0.0, total=0.2)
        for c in "ABCD"
        for i in range(5)
    }
    plan = plan_files({"t/test_db.py": 9000}, 4, history, {})
    for klass in "ABCD":
        shards = {plan.cut["t/test_db.py"][f"t/test_db.py::Test{klass}::test_{i}"]
                  for i in range(5)}  # fmt: skip
        assert len(shards) == 1, klass


def test_files_naming_serial_or_depends_stay_in_one_shard(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "u").mkdir()
    sources = {
        "t/test_a.py": "import pytest\n\n@pytest.mark.serial(group='db')\ndef test_a(): pass\n",
        "t/test_b.py": "import pytest\n\n@pytest.mark.depends(on=['test_x'])\ndef test_b(): pass\n",
        "t/test_c.py": "def test_c(): pass\n",
        "u/test_d.py": "def test_d(): pass\n",
        "u/conftest.py": "def pytest_collection_modifyitems(items):\n"
                         "    items[0].add_marker('serial')\n",
    }  # fmt: skip
    for name, text in sources.items():
        (tmp_path / name).write_text(text)
    paths = {n: tmp_path / n for n in sources if n.rsplit("/", 1)[-1].startswith("test_")}
    bound = bound_files(paths, tmp_path)
    assert bound == {"t/test_a.py", "t/test_b.py", "u/test_d.py"}
    spec = {n: [1.0] * 3 for n in paths}
    plan = plan_files({n: 100 for n in paths}, 4, _history(spec), {}, bound=bound)
    assert len({plan.shards_of[n] for n in bound}) == 1
    assert all(len(plan.shards_of[n]) == 1 for n in bound)


def test_direct_items_are_planned_by_their_ids() -> None:
    plan = plan_files({}, 2, {}, {}, direct=["a.py::test_1", "a.py::test_2"])
    assert sorted(len(s.nodeids) for s in plan.partition.shards) == [1, 1]
    assert plan.shards_of == {}


def test_no_files_is_an_empty_plan() -> None:
    plan = plan_files({}, 3, {}, {})
    assert plan.partition.total == 0 and plan.cut == {}


def test_the_worker_plan_round_trips_and_keeps_this_shards_tests() -> None:
    plan = WorkerPlan(
        pid=1,
        index=2,
        dropped=("/x/t/test_other.py",),
        cut={"t/test_big.py": ({"t/test_big.py::test_0": 1, "t/test_big.py::test_1": 2}, (1, 2))},
    )
    again = WorkerPlan.from_json(plan.to_json())
    assert again == plan

    class Item:
        def __init__(self, nodeid: str) -> None:
            self.nodeid = nodeid

    items = [Item("t/test_big.py::test_0"), Item("t/test_big.py::test_1"), Item("t/other.py::t")]
    keep, drop = keep_mine(again, items)
    assert [i.nodeid for i in keep] == ["t/test_big.py::test_1", "t/other.py::t"]
    assert [i.nodeid for i in drop] == ["t/test_big.py::test_0"]


def _result(nodeid: str, worker: int, start: float, seconds: float) -> TestResult:
    return TestResult(
        nodeid=nodeid, file=nodeid.split("::")[0], line=1, outcome="passed",
        phases={"setup": 0.0, "call": seconds, "teardown": 0.0}, worker=worker,
        start=start, stop=start + seconds,
    )  # fmt: skip


def test_per_test_cost_is_the_median_gap_between_a_workers_tests(tmp_path: Path) -> None:
    assert per_test_cost(None) == DEFAULT_PER_TEST
    store = HistoryStore(tmp_path / "h.db")
    try:
        assert per_test_cost(store) == DEFAULT_PER_TEST  # no run yet
        now = time.time()
        results = []
        for worker in (0, 1):
            clock = now
            for i in range(30):
                results.append(_result(f"t.py::test_{worker}_{i}", worker, clock, 0.01))
                clock += 0.01 + (0.004 if i != 10 else 2.0)  # one collection gap
        run = RunRecord(run_id="r1", start=now, command=["aqe"], root=str(tmp_path), workers=2)
        store.begin_run(run)
        store.add_results("r1", results)
        run.results = results
        run.end = now + 3
        store.finish_run(run)
        assert per_test_cost(store) == 0.004
    finally:
        store.close()
    assert PER_TEST_BOUNDS[0] < DEFAULT_PER_TEST < PER_TEST_BOUNDS[1]


def test_empty_shards_share_the_largest_files_the_history_does_not_know() -> None:
    plan = plan_files({"t/test_one.py": 300}, 3, {}, {})
    assert plan.shards_of == {"t/test_one.py": (1, 2, 3)}
    assert plan.cut == {"t/test_one.py": {}}
    assert all(shard.nodeids == ("t/test_one.py",) for shard in plan.partition.shards)
    owner = assign(["t/test_one.py::test_b", "t/test_one.py::test_a"], {}, (1, 2, 3))
    assert owner == {"t/test_one.py::test_a": 1, "t/test_one.py::test_b": 2}
    # Two unknown files, four shards: each file shared by two.
    two = plan_files({"a.py": 500, "b.py": 400}, 4, {}, {})
    assert sorted(len(shards) for shards in two.shards_of.values()) == [2, 2]
    assert all(shard.nodeids for shard in two.partition.shards)
