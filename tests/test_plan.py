"""The planner's decisions: who collects what, longest first, stealing at the tail."""

from __future__ import annotations

from aqe._engine._plan import Estimate, Planner
from aqe._messages import Collect, RunTests, Shutdown


def _planner(
    files: dict[str, list[tuple[str, float, float]]], workers: int = 2, split: str = "auto"
) -> Planner:
    """``files``: path -> [(test name, setup seconds, total seconds)] known from history."""
    estimates = {
        f"{path}::{name}": Estimate(setup=setup, total=total)
        for path, tests in files.items()
        for name, setup, total in tests
    }
    return Planner(
        files=list(files),
        file_sizes=[1000] * len(files),
        workers=workers,
        estimates=estimates,
        collect_estimates={path: 0.01 for path in files},
        split=split,
    )


def _drain(planner: Planner, worker: int, tests: dict[str, list[str]] | None = None) -> list[str]:
    """Every test id the worker is sent until it is told to shut down; it finishes
    each at once and collects ``tests`` for every file it is asked to collect."""
    sent: list[str] = []
    for _ in range(10_000):
        messages = planner.next_messages(worker)
        for message in messages:
            if isinstance(message, RunTests):
                sent.extend(message.nodeids)
            if isinstance(message, Collect):
                assert tests is not None, message
                ids = _ids(planner, message.files, tests)
                planner.on_collected(worker, message.files, ids)
        if any(isinstance(m, Shutdown) for m in messages):
            return sent
        for nodeid in [n for n, _ in planner.workers[worker].outstanding]:
            planner.on_finished(worker, nodeid)
    raise AssertionError("never shut down")


def _collect(planner: Planner, worker: int) -> tuple[int, ...]:
    messages = planner.next_messages(worker)
    collect = [m for m in messages if isinstance(m, Collect)]
    assert collect, messages
    return collect[0].files


def _ids(planner: Planner, files: tuple[int, ...], tests: dict[str, list[str]]) -> list[str]:
    return [f"{planner.files[i]}::{name}" for i in files for name in tests[planner.files[i]]]


def test_files_are_dealt_longest_first_to_the_least_loaded_worker() -> None:
    planner = _planner(
        {
            "a.py": [("t", 0.0, 5.0)],
            "b.py": [("t", 0.0, 4.0)],
            "c.py": [("t", 0.0, 3.0)],
            "d.py": [("t", 0.0, 2.0)],
        }
    )
    todo = [[planner.files[i] for i in w.files_todo] for w in planner.workers]
    assert todo == [["a.py", "d.py"], ["b.py", "c.py"]]


def test_a_files_tests_run_in_pytest_order_and_the_longest_file_first() -> None:
    tests = {"a.py": ["fast", "slow"], "b.py": ["t0", "t1", "t2"]}
    planner = _planner(
        {
            "a.py": [("fast", 0.0, 0.1), ("slow", 0.0, 3.0)],
            "b.py": [("t0", 0.0, 1.0), ("t1", 0.0, 0.1), ("t2", 0.0, 5.0)],
        },
        workers=1,
    )
    assert _drain(planner, 0, tests) == [
        "b.py::t0", "b.py::t1", "b.py::t2", "a.py::fast", "a.py::slow"
    ]  # fmt: skip


def test_expensive_module_fixture_keeps_a_file_together_in_collection_order() -> None:
    names = ["t0", "t1", "t2", "t3"]
    history = [("t0", 2.0, 2.1), ("t1", 0.0, 0.5), ("t2", 0.0, 3.0), ("t3", 0.0, 0.2)]
    planner = _planner({"a.py": history}, workers=1)
    assert "a.py" in planner.sticky
    files = _collect(planner, 0)
    planner.on_collected(0, files, _ids(planner, files, {"a.py": names}))
    assert len(planner.workers[0].ready) == 1  # one unit, in collection order
    assert not planner.workers[0].ready[0].splittable
    assert _drain(planner, 0) == [f"a.py::{n}" for n in names]


def test_idle_worker_steals_uncollected_files_before_tests() -> None:
    planner = _planner({f"f{i}.py": [("t", 0.0, 1.0)] for i in range(8)})
    # Worker 1 somehow finished its share: it must take files worker 0 has not collected.
    planner.workers[1].files_todo.clear()
    _collect(planner, 0)
    stolen_before = list(planner.workers[0].files_todo)
    messages = planner.next_messages(1)
    collect = [m for m in messages if isinstance(m, Collect)]
    assert collect and set(collect[0].files) <= set(stolen_before)
    assert not set(collect[0].files) & set(planner.workers[0].files_todo)


def test_idle_worker_steals_the_tail_half_of_a_file_and_collects_it() -> None:
    tests = {"a.py": [f"t{i}" for i in range(10)]}
    planner = _planner({"a.py": [(f"t{i}", 0.0, 1.0) for i in range(10)]})
    planner.workers[1].files_todo.clear()
    files = _collect(planner, 0)
    planner.on_collected(0, files, _ids(planner, files, tests))
    planner.next_messages(0)  # worker 0 takes its first chunk (t0, t1)
    messages = planner.next_messages(1)
    assert any(isinstance(m, Collect) and m.files == files for m in messages)
    stolen = planner.workers[1].stolen[files[0]]
    # Half of the ten seconds left, cut so each side keeps a contiguous run.
    assert stolen == {f"a.py::t{i}" for i in range(5, 10)}
    # After collecting, the thief runs only what it stole; the owner keeps the rest.
    planner.on_collected(1, files, _ids(planner, files, tests))
    mine = {n for u in planner.workers[1].ready for n in u.nodeids}
    theirs = {n for u in planner.workers[0].ready for n in u.nodeids}
    assert mine == stolen and not mine & theirs


def test_an_idle_worker_waits_while_another_collects() -> None:
    tests = {"a.py": ["t0"], "b.py": ["t0"]}
    planner = _planner({"a.py": [("t0", 0.0, 0.1)], "b.py": [("t0", 0.0, 0.1)]})
    planner.workers[0].files_todo.clear()
    files1 = _collect(planner, 1)
    # Worker 1's collection may bring work worker 0 could take: it must wait.
    assert planner.next_messages(0) == []
    planner.on_collected(1, files1, _ids(planner, files1, tests))
    assert planner.next_messages(0) == [Shutdown()]  # one test is not worth stealing


def test_dead_workers_work_goes_to_its_replacement() -> None:
    tests = {"a.py": ["t0", "t1", "t2"]}
    planner = _planner({"a.py": [(n, 0.0, 0.1) for n in tests["a.py"]]}, workers=1)
    files = _collect(planner, 0)
    planner.on_collected(0, files, _ids(planner, files, tests))
    planner.next_messages(0)
    crashed = planner.workers[0].outstanding.popleft()[0]
    planner.orphan(0)
    assert planner.has_work(0)
    replacement = planner.workers[0]
    assert replacement.files_todo == [files[0]]
    assert crashed not in replacement.stolen[files[0]]
    assert replacement.stolen[files[0]] == {"a.py::t1", "a.py::t2"}


def test_a_first_run_of_fast_tests_is_fed_in_chunks_not_one_message_per_test() -> None:
    planner = Planner(
        files=["a.py"], file_sizes=[1000], workers=1, estimates={}, collect_estimates={}
    )
    files = _collect(planner, 0)
    planner.on_collected(0, files, [f"a.py::t{i}" for i in range(500)])
    queue: list[str] = []
    run_messages = finished = 0
    while True:
        messages = planner.next_messages(0)
        if any(isinstance(m, Shutdown) for m in messages):
            break
        for message in messages:
            if isinstance(message, RunTests):
                run_messages += 1
                queue.extend(message.nodeids)
        assert queue, "the worker was left without work"
        planner.on_finished(0, queue.pop(0), 0.0003)
        finished += 1
    assert finished + len(queue) == 500
    # Without history the prior starts at 10 ms a test; it learns that they take
    # 0.3 ms, after which a message carries up to a full chunk.
    assert run_messages < 500 / 10, run_messages


def _one_big_file(split: str, order_bound: tuple[str, ...] = ()) -> Planner:
    tests = {"a.py": [f"t{i}" for i in range(10)], "b.py": ["t0"]}
    planner = _planner(
        {"a.py": [(f"t{i}", 0.0, 1.0) for i in range(10)], "b.py": [("t0", 0.0, 0.1)]},
        split=split,
    )
    files = _collect(planner, 0)
    planner.on_collected(0, files, _ids(planner, files, tests), order_bound=order_bound)
    planner.next_messages(0)
    other = _collect(planner, 1)
    planner.on_collected(1, other, _ids(planner, other, tests))
    return planner


def test_split_file_never_cuts_a_file() -> None:
    planner = _one_big_file("file")
    assert _drain(planner, 1) == ["b.py::t0"]
    assert len(_drain(planner, 0)) == 8  # the two sent before, then eight more


def test_auto_keeps_unittest_files_whole_but_cuts_plain_ones() -> None:
    assert _drain(_one_big_file("auto", order_bound=("a.py",)), 1) == ["b.py::t0"]
    planner = _one_big_file("auto")
    # Worker 1 steals while it still runs its last test.
    assert _steps(planner, 1) == [RunTests(("b.py::t0",)), Collect((0,))]
    # The tail of a.py, half of the ten seconds left; the owner keeps the head.
    assert planner.workers[1].stolen[0] == {f"a.py::t{i}" for i in range(5, 10)}
    planner.on_collected(1, (0,), [f"a.py::t{i}" for i in range(10)])
    planner.on_finished(1, "b.py::t0")
    # More of the tail follows: worker 1 keeps t6 until it knows its next test.
    assert _steps(planner, 1) == [RunTests(("a.py::t5", "a.py::t6"), more=True)]
    assert [list(u.nodeids) for u in planner.workers[0].ready] == [
        [f"a.py::t{i}" for i in range(2, 5)]
    ]
    assert planner.broken_promises() == []


def test_a_worker_promised_more_tests_hears_when_they_were_stolen() -> None:
    planner = _one_big_file("test")  # worker 0 was sent the head of a.py, told more follows
    assert planner.workers[0].promised and planner.workers[0].ready
    assert planner.broken_promises() == []
    while planner.workers[0].ready:  # worker 1 takes what worker 0 was promised
        planner.workers[1].add_ready([planner.workers[0].ready.pop()])
    assert planner.broken_promises() == [0]
    assert planner.broken_promises() == []  # said once


def _steps(planner: Planner, worker: int) -> list[object]:
    return list(planner.next_messages(worker))


def test_a_cut_falls_where_the_class_changes() -> None:
    names = [f"TestA::t{i}" for i in range(3)] + [f"TestB::t{i}" for i in range(7)]
    planner = _planner({"a.py": [(n, 0.0, 1.0) for n in names]}, split="test")
    planner.workers[1].files_todo.clear()
    files = _collect(planner, 0)
    planner.on_collected(0, files, [f"a.py::{n}" for n in names])
    planner.next_messages(0)
    planner.next_messages(1)
    assert planner.workers[1].stolen[files[0]] == {f"a.py::TestB::t{i}" for i in range(7)}


def test_a_file_to_collect_for_some_tests_moves_with_exactly_those_tests() -> None:
    tests = {"a.py": ["t0", "t1", "t2"], "b.py": ["t0"], "c.py": ["t0"]}
    planner = _planner(
        {
            "a.py": [(n, 0.0, 1.0) for n in tests["a.py"]],
            "b.py": [("t0", 0.0, 0.5)],
            "c.py": [("t0", 0.0, 0.5)],
        }
    )
    files = _collect(planner, 0)
    planner.on_collected(0, files, _ids(planner, files, tests))
    planner.next_messages(0)  # t0 and t1 go out
    planner.workers[0].outstanding.popleft()  # t0 killed the worker
    planner.orphan(0)  # the replacement must collect a.py again, for t1 and t2 only
    assert planner.workers[0].stolen == {0: {"a.py::t1", "a.py::t2"}}
    # It also has c.py to do, so an idle worker 1 steals the file at the back: a.py.
    planner.workers[1].files_todo.remove(2)
    planner.workers[0].files_todo.insert(0, 2)
    ran = _drain(planner, 1, tests) + _drain(planner, 0, tests)
    assert sorted(ran) == ["a.py::t1", "a.py::t2", "b.py::t0", "c.py::t0"]


def test_a_thief_takes_more_from_a_worker_stuck_in_a_long_test() -> None:
    # Estimates say every test takes 0.1 s; a test that has already run for 5 s
    # says more about the victim's remaining work than the estimates do.
    def stolen_when_head_ran(seconds: float) -> int:
        tests = {"a.py": [f"t{i}" for i in range(10)]}
        planner = _planner({"a.py": [(f"t{i}", 0.0, 0.1) for i in range(10)]})
        planner.workers[1].files_todo.clear()
        files = _collect(planner, 0)
        planner.on_collected(0, files, _ids(planner, files, tests))
        planner.next_messages(0)  # t0 runs, t1 waits behind it
        planner.workers[0].head_elapsed = seconds
        planner.next_messages(1)
        return len(planner.workers[1].stolen.get(0, ()))

    assert stolen_when_head_ran(0.0) == 5  # about half of the 1 s left
    assert stolen_when_head_ran(5.0) == 8  # everything not yet sent to worker 0


def test_a_serial_groups_test_waits_while_another_worker_has_one_of_the_group() -> None:
    tests = {"a.py": ["db1", "db2", "db3"], "b.py": ["free"]}
    planner = _planner({path: [(n, 0.0, 0.01) for n in names] for path, names in tests.items()})
    groups = {f"a.py::{name}": "db" for name in tests["a.py"]}
    for worker in (0, 1):
        files = _collect(planner, worker)
        planner.on_collected(worker, files, _ids(planner, files, tests), groups=groups)
    home = planner.group_home["db"]
    sent = [n for m in planner.next_messages(home) if isinstance(m, RunTests) for n in m.nodeids]
    assert sent == ["a.py::db1", "a.py::db2", "a.py::db3"]
    # db1 crashed its worker: it runs again alone on a fresh process (a new slot),
    # which stays its own but waits while the group's worker has db2 or db3 in hand.
    planner.on_finished(home, "a.py::db1")
    slot = planner.isolate_test("a.py::db1")
    files = _collect(planner, slot)
    planner.on_collected(slot, files, ["a.py::db1"], groups=groups)
    for finished in ("a.py::db2", "a.py::db3"):
        assert not [m for m in planner.next_messages(slot) if isinstance(m, RunTests)]
        planner.on_finished(home, finished)
    assert [m.nodeids for m in planner.next_messages(slot) if isinstance(m, RunTests)] == [
        ("a.py::db1",)
    ]
    # And the other way round: the group's worker waits while the re-run is in hand.
    planner.retry_later("a.py::db2", slot, 0.0)
    planner.release_due(1.0, {home})
    assert not [m for m in planner.next_messages(home) if isinstance(m, RunTests)]
    planner.on_finished(slot, "a.py::db1")
    assert [m.nodeids for m in planner.next_messages(home) if isinstance(m, RunTests)] == [
        ("a.py::db2",)
    ]


def test_a_worker_collects_all_its_files_before_it_runs_any_test() -> None:
    """As pytest imports every test module before the first test: a test that
    re-imports a library must not change what a module collected after it sees."""
    names = ["t0", "t1"]
    planner = _planner({f"f{i}.py": [(n, 0.0, 1.0) for n in names] for i in range(6)}, workers=1)
    collected: list[int] = []
    for _ in range(20):
        messages = planner.next_messages(0)
        runs = [m for m in messages if isinstance(m, RunTests)]
        if runs:
            break
        for message in messages:
            assert isinstance(message, Collect), message
            collected.extend(message.files)
            planner.on_collected(
                0,
                message.files,
                _ids(planner, message.files, {planner.files[i]: names for i in message.files}),
            )
    assert runs and sorted(collected) == list(range(6))
    assert len(planner.workers[0].collected) == 6 and not planner.workers[0].files_todo


def test_a_first_run_steals_a_queued_file_of_slow_tests_after_many_trivial_ones() -> None:
    """Without history, 300 trivial tests must not make a file of slow tests look free
    (werkzeug's suite: an idle worker left two queued files of 0.25 s tests alone)."""
    files = {"fast.py": 300, "slow1.py": 8, "slow2.py": 8}
    planner = Planner(
        files=list(files), file_sizes=[3000, 1000, 1000], workers=2, estimates={},
        collect_estimates={},
    )  # fmt: skip
    ids = {path: [f"{path}::t{i}" for i in range(n)] for path, n in files.items()}
    for worker, plan in enumerate(planner.workers):
        while plan.files_todo or plan.collecting:
            for message in planner.next_messages(worker):
                if isinstance(message, Collect):
                    found = [n for i in message.files for n in ids[planner.files[i]]]
                    planner.on_collected(worker, message.files, found)
    slow_worker = next(w for w, p in enumerate(planner.workers) if len(p.ready) == 2)
    idle = 1 - slow_worker
    # The worker with the fast file ran it; the other has run one slow test so far.
    for nodeid in ids["fast.py"]:
        planner.on_finished(idle, nodeid, 0.0002)
    planner.workers[idle].ready.clear()
    planner.workers[idle].outstanding.clear()
    first_slow = planner.workers[slow_worker].ready[0].nodeids[0]
    planner.next_messages(slow_worker)
    planner.on_finished(slow_worker, first_slow, 0.25)
    messages = planner.next_messages(idle)
    assert not any(isinstance(m, Shutdown) for m in messages), messages
    taken = {n for u in planner.workers[idle].ready for n in u.nodeids} | {
        n for ns in planner.workers[idle].stolen.values() for n in ns
    }
    assert len(taken) >= 4, messages


def test_split_test_cuts_even_a_file_with_an_expensive_module_fixture() -> None:
    history = [("t0", 2.0, 2.1), ("t1", 0.0, 0.5), ("t2", 0.0, 3.0), ("t3", 0.0, 0.2)]
    assert "a.py" in _planner({"a.py": history}).sticky
    assert _planner({"a.py": history}, split="test").splittable("a.py")
    assert not _planner({"a.py": history}, split="auto").splittable("a.py")
    assert not _planner({"a.py": history}, split="file").splittable("a.py")


def test_an_expensive_function_fixture_does_not_keep_a_file_whole() -> None:
    """A module or class fixture is paid once per module or class; a function fixture
    on every test that uses it, so many expensive setups are no reason to keep the
    tests together."""
    function_fixture = [(f"t{i}", 0.3 if i % 3 == 0 else 0.0, 0.5) for i in range(12)]
    assert "a.py" not in _planner({"a.py": function_fixture}).sticky
    class_fixtures = [(f"TestA::t{i}", 0.3 if i == 0 else 0.0, 0.5) for i in range(4)] + [
        (f"TestB::t{i}", 0.4 if i == 0 else 0.0, 0.5) for i in range(4)
    ]
    assert "b.py" in _planner({"b.py": class_fixtures}).sticky


def test_a_worker_stuck_in_a_long_test_gives_up_its_unsent_tests_whatever_their_estimate() -> None:
    """On a first run the estimates come from the few tests seen: a file's remaining
    tests can look free while they wait behind a test that has run for seconds."""
    names = [f"t{i}" for i in range(10)]
    planner = Planner(
        files=["a.py", "b.py"], file_sizes=[1000, 10], workers=2, estimates={},
        collect_estimates={},
    )  # fmt: skip
    for worker in (0, 1):
        files = _collect(planner, worker)
        planner.on_collected(worker, files, _ids(planner, files, {"a.py": names, "b.py": []}))
    sent = [n for m in planner.next_messages(0) if isinstance(m, RunTests) for n in m.nodeids]
    planner.on_finished(0, sent[0], 0.001)  # the file looks fast...
    planner.next_messages(0)
    victim = planner.workers[0]
    unsent = [n for u in victim.ready for n in u.nodeids]
    assert unsent, "the victim has tests it has not been sent"
    victim.head_elapsed = 0.01  # ...and its running test has only just started
    assert not any(isinstance(m, (RunTests, Collect)) for m in planner.next_messages(1))
    victim.head_elapsed = 2.0  # two seconds in: the rest would wait behind it
    planner.next_messages(1)
    thief = planner.workers[1]
    taken = {n for ns in thief.stolen.values() for n in ns} | {
        n for u in thief.ready for n in u.nodeids
    }
    assert taken == set(unsent)


def test_without_history_a_worker_runs_its_files_in_pytests_order() -> None:
    """Suites lean on pytest's order (a test that re-imports a library breaks what runs
    after it); without history "longest first" would only follow file sizes."""
    planner = Planner(
        files=["a.py", "b.py", "c.py"], file_sizes=[10, 3000, 20], workers=1, estimates={},
        collect_estimates={},
    )  # fmt: skip
    names = {"a.py": ["t"], "b.py": ["t"], "c.py": ["t"]}
    assert [f"{path}::t" for path in ("a.py", "b.py", "c.py")] == _drain_in_order(planner, names)


def _drain_in_order(planner: Planner, names: dict[str, list[str]]) -> list[str]:
    sent: list[str] = []
    for _ in range(100):
        messages = planner.next_messages(0)
        for message in messages:
            if isinstance(message, Collect):
                planner.on_collected(0, message.files, _ids(planner, message.files, names))
            if isinstance(message, RunTests):
                sent.extend(message.nodeids)
        if any(isinstance(m, Shutdown) for m in messages):
            return sent
        for nodeid in [n for n, _ in planner.workers[0].outstanding]:
            planner.on_finished(0, nodeid, 0.01)
    raise AssertionError("never shut down")


def test_a_worker_imports_its_files_in_pytests_order_whatever_order_they_were_dealt_in() -> None:
    """pytest imports the test modules in its order, and import-time side effects (a
    registry, shared state) make later modules depend on it. Dealing is longest first;
    collecting need not be, as a worker collects all its files before any test."""
    planner = Planner(
        files=["a.py", "c.py", "d.py"], file_sizes=[3000, 1000, 1500], workers=2, estimates={},
        collect_estimates={},
    )  # fmt: skip
    assert planner.workers[1].files_todo == [2, 1]  # dealt by size: d.py, then c.py
    collected: list[int] = []
    for _ in range(4):
        for message in planner.next_messages(1):
            if isinstance(message, Collect):
                collected.extend(message.files)
                planner.on_collected(
                    1, message.files, [f"{planner.files[i]}::t" for i in message.files]
                )
    assert collected == [1, 2]
    # Files that arrive later (stolen, handed over) are collected in that order too.
    planner.workers[0].files_todo = [2, 0, 1]
    first = next(m for m in planner.next_messages(0) if isinstance(m, Collect))
    assert first.files[0] == 0
