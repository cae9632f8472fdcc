"""What the coordinator asks of the planner and tells it, through the planner's own methods."""

from __future__ import annotations

from collections.abc import Sequence

from aqe._engine._plan import Planner
from aqe._messages import Collect, RunTests, Shutdown, ToWorker


def _planner(files: int = 2, workers: int = 2) -> Planner:
    paths = [f"t{i}.py" for i in range(files)]
    return Planner(
        files=paths,
        file_sizes=[1000] * files,
        workers=workers,
        estimates={},
        collect_estimates={},
    )


def _collect(
    planner: Planner, worker: int, tests: int = 3, held: frozenset[str] = frozenset()
) -> list[str]:
    """The worker asks for work, collects every file it is given and finds ``tests``
    tests in each; returns their ids."""
    ids: list[str] = []
    for message in planner.next_messages(worker):
        assert isinstance(message, Collect), message
        found = [f"t{i}.py::test_{n}" for i in message.files for n in range(tests)]
        planner.on_collected(worker, message.files, found, held=held)
        ids += found
    return ids


def _sent(messages: Sequence[ToWorker]) -> list[str]:
    return [n for m in messages if isinstance(m, RunTests) for n in m.nodeids]


def test_the_running_test_is_the_head_of_what_the_worker_was_sent() -> None:
    planner = _planner(files=1, workers=1)
    _collect(planner, 0)
    assert planner.running(0) is None and planner.queued(0) == 0
    sent = _sent(planner.next_messages(0))
    assert planner.running(0) == sent[0]
    assert planner.queued(0) == len(sent)
    planner.on_finished(0, sent[0], 0.01)
    assert planner.running(0) == (sent[1] if len(sent) > 1 else None)


def test_drop_pending_forgets_what_was_not_sent_and_the_worker_shuts_down() -> None:
    planner = _planner(files=1, workers=1)
    _collect(planner, 0, tests=50)
    sent = _sent(planner.next_messages(0))
    assert sent and planner.has_work(0)
    planner.drop_pending()
    assert not planner.has_work(0)
    for nodeid in sent:
        planner.on_finished(0, nodeid, 0.01)
    assert planner.idle()
    assert any(isinstance(m, Shutdown) for m in planner.next_messages(0))
    assert planner.done_with(0)


def test_a_held_test_keeps_idle_workers_until_released() -> None:
    planner = _planner(files=1, workers=1)
    held = frozenset({"t0.py::test_2"})
    _collect(planner, 0, held=held)
    planner.hold(True)
    sent = _sent(planner.next_messages(0))
    assert "t0.py::test_2" not in sent
    for nodeid in sent:
        planner.on_finished(0, nodeid, 0.01)
    assert not any(isinstance(m, Shutdown) for m in planner.next_messages(0))
    planner.retry_later("t0.py::test_2", -1, 0.0)  # the gate released it
    planner.hold(False)
    assert planner.retries_waiting() and planner.retry_due(0.0)
    assert planner.release_due(0.0, alive={0}) == [0]
    assert _sent(planner.next_messages(0)) == ["t0.py::test_2"]


def test_a_retry_is_due_only_at_its_time() -> None:
    planner = _planner()
    planner.retry_later("t0.py::test_0", 0, due=5.0)
    assert planner.retries_waiting()
    assert not planner.retry_due(4.9) and planner.retry_due(5.0)
    assert not planner.idle()


def test_expect_retries_keeps_an_idle_worker_while_another_runs() -> None:
    planner = _planner(files=2, workers=2)
    _collect(planner, 0)
    _collect(planner, 1)
    first = _sent(planner.next_messages(0))
    second = _sent(planner.next_messages(1))
    planner.expect_retries()
    for nodeid in first:
        planner.on_finished(0, nodeid, 0.01)
    assert second and not any(isinstance(m, Shutdown) for m in planner.next_messages(0))


def test_set_elapsed_marks_a_long_running_head_for_stealing() -> None:
    planner = _planner(files=1, workers=2)
    planner.set_elapsed(0, 12.5)
    assert planner.workers[0].head_elapsed == 12.5
    planner.set_elapsed(9, 1.0)  # a slot the planner does not know: ignored


def test_collect_alone_splits_the_batch_that_killed_a_worker() -> None:
    planner = _planner(files=4, workers=1)
    planner.collect_alone({0, 1, 2, 3})
    message = planner.next_messages(0)[0]
    assert isinstance(message, Collect) and len(message.files) == 1


def test_collecting_anywhere_while_files_wait_or_are_collected() -> None:
    planner = _planner(files=1, workers=1)
    assert planner.collecting_anywhere()
    planner.next_messages(0)
    assert planner.collecting_anywhere()  # being collected now
    planner.on_collected(0, (0,), ["t0.py::test_0"])
    assert not planner.collecting_anywhere()
