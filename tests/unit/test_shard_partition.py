"""The shard partition: deterministic, balanced, unit-preserving; empty cases."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from aqe._engine._plan import Estimate
from aqe._sharding import Constraints, ShardTest, partition
from aqe._sharding._estimate import predict


def _tests(spec: dict[str, list[float]]) -> list[ShardTest]:
    return [
        ShardTest(f"{path}::test_{i}", seconds)
        for path, durations in spec.items()
        for i, seconds in enumerate(durations)
    ]


def _assigned(plan_shards: object) -> list[str]:
    return [n for shard in plan_shards for n in shard.nodeids]  # type: ignore[attr-defined]


def test_every_test_in_exactly_one_shard() -> None:
    tests = _tests({f"t/test_{f}.py": [0.1 * (f % 5 + 1)] * 7 for f in range(13)})
    plan = partition(tests, 4)
    ids = _assigned(plan.shards)
    assert sorted(ids) == sorted(t.nodeid for t in tests)
    assert len(ids) == len(set(ids))
    assert [shard.index for shard in plan.shards] == [1, 2, 3, 4]


def test_same_plan_whatever_the_order_given() -> None:
    tests = _tests({f"t/test_{f}.py": [0.01 * (f + i) for i in range(9)] for f in range(20)})
    first = partition(tests, 3)
    shuffled = list(tests)
    random.Random(7).shuffle(shuffled)
    again = partition(shuffled, 3)
    assert again == first
    assert again.digest == first.digest


def test_balanced_by_predicted_time_not_by_count() -> None:
    # One file of a few slow tests, many files of fast ones.
    spec = {"t/test_slow.py": [4.0, 4.0, 4.0]}
    spec.update({f"t/test_fast_{f}.py": [0.01] * 50 for f in range(16)})
    plan = partition(_tests(spec), 4)
    assert plan.balance() <= 1.10
    counts = [len(shard.nodeids) for shard in plan.shards]
    assert max(counts) > 2 * min(counts)  # the slow tests' shards run fewer of them


def test_files_stay_whole_when_whole_files_balance() -> None:
    tests = _tests({f"t/test_{f}.py": [0.1] * 10 for f in range(8)})
    plan = partition(tests, 4)
    for shard in plan.shards:
        assert len({n.split("::")[0] for n in shard.nodeids}) == 2


def test_a_big_file_is_cut_at_classes_first() -> None:
    tests = [ShardTest(f"t/test_big.py::Test{c}::test_{i}", 0.1) for c in "ABCD" for i in range(10)]
    plan = partition(tests, 4)
    for shard in plan.shards:
        assert len({n.rsplit("::", 1)[0] for n in shard.nodeids}) == 1
    assert plan.balance() == pytest.approx(1.0)


def test_whole_files_and_scopes_and_bonds_are_kept_together() -> None:
    tests = [ShardTest(f"t/test_fixture.py::test_{i}", 1.0) for i in range(8)]
    tests += [ShardTest(f"t/test_case.py::TestCase::test_{i}", 1.0) for i in range(8)]
    tests += [ShardTest(f"t/test_other.py::test_{i}", 1.0) for i in range(16)]
    bond = frozenset({"t/test_other.py::test_0", "t/test_other.py::test_15"})
    rules = Constraints(
        whole_files=frozenset({"t/test_fixture.py"}),
        whole_scopes=frozenset({"t/test_case.py::TestCase"}),
        bonds=(bond,),
    )
    plan = partition(tests, 4, rules)
    shard_of = plan.shard_of()
    assert len({shard_of[t.nodeid] for t in tests if "fixture" in t.nodeid}) == 1
    assert len({shard_of[t.nodeid] for t in tests if "TestCase" in t.nodeid}) == 1
    assert len({shard_of[n] for n in bond}) == 1


def test_a_whole_file_larger_than_a_share_is_cut_all_the_same() -> None:
    tests = [ShardTest(f"t/test_big.py::test_{i:02}", 1.0) for i in range(40)]
    tests += [ShardTest(f"t/test_s{i}.py::test", 1.0) for i in range(20)]
    rules = Constraints(whole_files=frozenset({"t/test_big.py"}))
    plan = partition(tests, 4, rules)
    assert plan.balance() <= 1.05
    big = {plan.shard_of()[t.nodeid] for t in tests if "big" in t.nodeid}
    assert len(big) > 1


def test_a_whole_file_cut_all_the_same_keeps_its_classes_whole() -> None:
    tests = [
        ShardTest(f"t/test_big.py::Test{c}::test_{i}", 1.0) for c in "ABCDEF" for i in range(5)
    ]
    tests += [ShardTest(f"t/test_s{i}.py::test", 1.0) for i in range(10)]
    plan = partition(tests, 4, Constraints(whole_files=frozenset({"t/test_big.py"})))
    shard_of = plan.shard_of()
    for c in "ABCDEF":
        assert len({shard_of[t.nodeid] for t in tests if f"::Test{c}::" in t.nodeid}) == 1
    assert plan.balance() <= 1.05


def test_no_empty_shard_while_there_are_enough_units() -> None:
    tests = [ShardTest("t/test_one.py::test_a", 5.0), ShardTest("t/test_one.py::test_b", 0.01),
             ShardTest("t/test_two.py::test_c", 0.01)]  # fmt: skip
    plan = partition(tests, 3)
    assert all(shard.nodeids for shard in plan.shards)


def test_more_shards_than_units_leaves_some_empty() -> None:
    tests = [ShardTest("t/test_one.py::test_a", 1.0), ShardTest("t/test_one.py::test_b", 1.0)]
    plan = partition(tests, 4)
    assert sorted(len(shard.nodeids) for shard in plan.shards) == [0, 0, 1, 1]


def test_nothing_to_split() -> None:
    plan = partition([], 3)
    assert [shard.nodeids for shard in plan.shards] == [(), (), ()]
    assert plan.total == 0
    with pytest.raises(ValueError):
        partition([], 0)


def test_a_new_file_costs_its_collection_in_each_shard() -> None:
    # Cutting the file would save nothing: importing it costs more than its tests.
    tests = [ShardTest(f"t/test_heavy_import.py::test_{i}", 0.01) for i in range(4)]
    tests += [ShardTest(f"t/test_x{i}.py::test", 0.4) for i in range(2)]
    rules = Constraints(collect_seconds={"t/test_heavy_import.py": 3.0})
    plan = partition(tests, 2, rules)
    heavy = {plan.shard_of()[t.nodeid] for t in tests if "heavy" in t.nodeid}
    assert len(heavy) == 1


def test_without_history_by_counts_and_file_sizes() -> None:
    ids = [f"t/test_many.py::test_{i}" for i in range(200)]
    ids += ["t/test_few.py::test_0", "t/test_few.py::test_1"]
    sizes = {"t/test_many.py": 4_000, "t/test_few.py": 4_000}
    predicted = predict(ids, sizes, {}, {})
    seconds = {t.nodeid: t.seconds for t in predicted.tests}
    assert not predicted.from_history
    assert seconds["t/test_many.py::test_0"] * 200 > seconds["t/test_few.py::test_0"] * 2


def test_history_and_the_planner_priors() -> None:
    ids = ["t/test_a.py::test_known", "t/test_a.py::test_new", "t/test_b.py::test_new"]
    history = {"t/test_a.py::test_known": Estimate(setup=0.0, total=3.0)}
    predicted = predict(ids, {"t/test_a.py": 100, "t/test_b.py": 100}, history, {})
    seconds = {t.nodeid: t.seconds for t in predicted.tests}
    assert seconds["t/test_a.py::test_known"] == 3.0
    assert seconds["t/test_a.py::test_new"] == 3.0  # its file's median
    assert predicted.from_history


def test_the_shard_setting(tmp_path: Path) -> None:
    from aqe._config import load_config
    from aqe._exceptions import ConfigError

    assert load_config(tmp_path, {}, {"AQE_SHARD": "2/4"}).shard == (2, 4)
    assert load_config(tmp_path, {"shard": "1/1"}, {}).shard == (1, 1)
    for bad in ("0/4", "5/4", "a/b", "1/0", "2", "-1/2"):
        with pytest.raises(ConfigError, match="expected I/N with 1 <= I <= N"):
            load_config(tmp_path, {"shard": bad}, {})
    (tmp_path / "pyproject.toml").write_text('[tool.aqe]\nshard = "1/2"\n')
    with pytest.raises(ConfigError, match="a shard is per CI job"):
        load_config(tmp_path, {}, {})
