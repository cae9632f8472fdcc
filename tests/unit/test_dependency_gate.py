"""The dependency gate: holding, release, skips naming the dependency, cycles."""

from __future__ import annotations

from aqe._engine._deps import DependencyGate, find_cycle


def test_a_test_waits_until_its_dependency_passed_then_is_released() -> None:
    gate = DependencyGate()
    gate.hold("t::b", ("t::a",))
    assert list(gate.review()) == []
    assert gate.waiting == {"t::b": ("t::a",)}
    gate.end("t::a", "passed")
    assert list(gate.review()) == [("t::b", None)]
    assert not gate.waiting


def test_a_failed_dependency_skips_naming_it_and_how_it_ended() -> None:
    gate = DependencyGate()
    gate.hold("t::b", ("t::a",))
    gate.hold("t::c", ("t::x",))
    gate.end("t::a", "crashed")
    gate.end("t::x", "xfailed")
    assert list(gate.review()) == [
        ("t::b", "depends on t::a, which crashed"),
        ("t::c", "depends on t::x, which failed (xfail)"),
    ]


def test_a_parametrized_ref_stands_for_all_its_instances_a_failing_one_first() -> None:
    gate = DependencyGate()
    gate.hold("t::b", ("t::a",))
    gate.end("t::a[1]", "passed")
    gate.end("t::a[2]", "failed")
    assert gate.states(["t::a"]) == [("t::a", "failed")]
    assert list(gate.review()) == [("t::b", "depends on t::a, which failed")]


def test_a_test_is_held_once_and_never_after_it_ended() -> None:
    gate = DependencyGate()
    gate.hold("t::b", ("t::a",))
    gate.end("t::a", "passed")
    list(gate.review())
    gate.hold("t::b", ("t::a",))  # its file collected again
    gate.end("t::c", "passed")
    gate.hold("t::c", ("t::a",))
    assert not gate.waiting


def test_a_skip_recorded_while_reviewing_settles_later_tests_first() -> None:
    gate = DependencyGate()
    gate.hold("t::b", ("t::a",))
    gate.hold("t::c", ("t::b",))
    gate.end("t::a", "failed")
    seen = []
    for nodeid, reason in gate.review():
        seen.append((nodeid, reason))
        gate.end(nodeid, "skipped")
        seen.extend(gate.review())  # what the coordinator does on each skip
    assert seen == [
        ("t::b", "depends on t::a, which failed"),
        ("t::c", "depends on t::b, which was skipped"),
    ]


def test_settle_names_a_dependency_that_never_ran_and_a_cycle() -> None:
    gate = DependencyGate()
    gate.hold("t::a", ("t::b",))
    gate.hold("t::b", ("t::a",))
    gate.hold("t::c", ("t::gone",))
    settled = dict(gate.settle())
    assert gate.usage_error == "dependency cycle: t::a -> t::b -> t::a"
    assert settled["t::a"] == "in a dependency cycle: t::a -> t::b -> t::a"
    assert settled["t::c"] == "depends on t::gone, which did not run"
    assert not gate.waiting


def test_find_cycle() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": []}) == []
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c"]
    assert find_cycle({"a": ["a"]}) == ["a"]
