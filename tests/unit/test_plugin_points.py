"""The plugin points in-process: verdicts, the shared run loop, loading, choosing.

Real parts throughout (the SQLite store on a tmp file, the real reporters); no
subprocess, no fork: these run in milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from aqe._adapters import RunOptions, load_adapter, pick_adapter, selection_args
from aqe._adapters._neutral import exit_code, next_attempt
from aqe._adapters.pytest import PytestAdapter, detects, pytest_args
from aqe._config import Config
from aqe._exceptions import PluginError
from aqe._mcp._runs import RunRequest as McpRunRequest
from aqe._reporting.summary import TerminalSummary, summary_lines
from aqe._runner import RunRecorder, chosen_reporters, load_reporter
from aqe._store import HistoryStore, Store, open_history
from aqe._verdicts import Attempts, Retries
from aqe.plugins import (
    Adapter,
    CollectedTest,
    CollectionFailed,
    CollectionFinished,
    DurationEstimate,
    Event,
    FilesCollected,
    Reporter,
    RetryRules,
    RunRecord,
    RunRequest,
    RunSummary,
    Selection,
    TestFinished,
    TestResult,
    TestStarted,
    run_tests,
)


def result(nodeid: str, outcome: Any = "passed", attempt: int = 1, **more: Any) -> TestResult:
    return TestResult(
        nodeid=nodeid, file=nodeid, line=1, outcome=outcome, phases={"call": 0.01},
        worker=0, attempt=attempt, **more,
    )  # fmt: skip


# -- verdicts ------------------------------------------------------------------------


def test_a_pass_after_a_failed_attempt_is_flaky() -> None:
    numbering = Attempts()
    assert numbering.number(result("t", "failed")).outcome == "failed"
    again = numbering.number(result("t", "passed"))
    assert (again.outcome, again.attempt) == ("flaky", 2)
    assert numbering.number(result("u", "passed")).outcome == "passed"


def test_a_failure_runs_again_while_its_retries_and_the_budget_last() -> None:
    retries = Retries(RetryRules(retries=2, budget=0.1))
    failed = result("t", "failed", 1, error_type="AssertionError", message="boom")
    assert next_attempt(failed, retries, 10, stopping=False) == 0.0  # no backoff: not transient
    assert next_attempt(result("t", "failed", 3), retries, 10, stopping=False) is None  # 2 retries
    assert next_attempt(failed, retries, 10, stopping=False) is None  # budget: 1 of 10 tests
    assert next_attempt(result("t", "passed"), Retries(RetryRules(2)), 10, False) is None
    assert next_attempt(failed, Retries(RetryRules(2)), 10, stopping=True) is None


def test_the_error_filters_choose_what_is_retried() -> None:
    failed = result("t", "failed", error_type="OSError", message="connection refused")
    assert next_attempt(failed, Retries(RetryRules(1, retry_on="Timeout")), 9, False) is None
    assert next_attempt(failed, Retries(RetryRules(1, retry_except="refused")), 9, False) is None
    delay = next_attempt(failed, Retries(RetryRules(1, retry_on="connection")), 9, False)
    assert delay is not None and delay > 0  # "connection refused" waits (backoff)


def test_exit_codes_are_pytests() -> None:
    assert exit_code([], False, False) == 5
    assert exit_code([result("a")], False, True) == 2
    assert exit_code([result("a"), result("b", "failed")], False, False) == 1
    assert exit_code([result("b", "failed", quarantined=True)], False, False) == 0
    assert exit_code([result("a", "flaky")], False, False) == 0
    assert exit_code([result("a", "flaky")], True, False) == 1


# -- the shared loop -----------------------------------------------------------------


class Events:
    """A RunEvents that keeps what it was given, and the calling threads."""

    def __init__(self) -> None:
        self.batches: list[tuple[Event, ...]] = []
        self.threads: set[int] = set()

    def emit(self, *events: Event) -> None:
        self.threads.add(threading.get_ident())
        self.batches.append(events)

    def estimates(self) -> Mapping[str, DurationEstimate]:
        return {}

    def file_estimates(self) -> Mapping[str, float]:
        return {}

    def finished(self) -> list[TestResult]:
        return [e.result for b in self.batches for e in b if isinstance(e, TestFinished)]


def scripted(outcomes: dict[str, list[str]]) -> Any:
    """run_one giving each test's outcomes in turn."""
    lock = threading.Lock()

    def run_one(test: CollectedTest) -> TestResult:
        with lock:
            outcome = outcomes[test.nodeid].pop(0)
        return result(test.nodeid, outcome, error_type="E", message="m")

    return run_one


def collected(*names: str) -> list[CollectedTest]:
    return [CollectedTest(name, name, 1) for name in names]


def test_the_shared_loop_retries_labels_flaky_and_quarantines(tmp_path: Path) -> None:
    events = Events()
    request = RunRequest(
        root=tmp_path, workers=2, retry=RetryRules(retries=1, budget=1.0),
        quarantined=frozenset({"q"}),
    )  # fmt: skip
    run_one = scripted({"ok": ["passed"], "flaky": ["failed", "passed"], "q": ["failed", "failed"]})
    code = run_tests(request, events, collected("ok", "flaky", "q"), run_one)
    assert code == 0  # the only failure is quarantined
    by_attempt = {(r.nodeid, r.attempt): r for r in events.finished()}
    assert by_attempt["flaky", 1].outcome == "failed"
    assert by_attempt["flaky", 2].outcome == "flaky"
    assert by_attempt["q", 2].quarantined and by_attempt["q", 2].outcome == "failed"
    assert {r.worker for r in events.finished()} <= {0, 1}
    assert events.threads == {threading.get_ident()}  # events come on the caller's thread
    first, last = events.batches[0], events.batches[-1]
    assert first == (CollectionFinished(tuple(collected("ok", "flaky", "q"))),)
    assert last == (RunSummary(workers=2, collected=3, ran=3),)
    started = [e for b in events.batches for e in b if isinstance(e, TestStarted)]
    assert len(started) == 5


def test_the_shared_loop_keeps_the_tier_the_adapter_gave(tmp_path: Path) -> None:
    """An adapter that ran a test alone in a fresh process says so (tier "cold"); the
    loop's numbering must not turn it back into "hot"."""
    events = Events()
    alone = result("t", "timeout", tier="cold")
    code = run_tests(RunRequest(root=tmp_path), events, collected("t"), lambda test: alone)
    assert code == 1
    assert [r.tier for r in events.finished()] == ["cold"]


def test_the_shared_loop_fails_on_flaky_when_asked(tmp_path: Path) -> None:
    request = RunRequest(root=tmp_path, retry=RetryRules(retries=1), fail_on_flaky=True)
    code = run_tests(request, Events(), collected("f"), scripted({"f": ["failed", "passed"]}))
    assert code == 1


def test_exitfirst_stops_scheduling_after_the_first_failure(tmp_path: Path) -> None:
    events = Events()
    request = RunRequest(root=tmp_path, workers=1, selection=Selection(exitfirst=True))
    run_one = scripted({"a": ["failed"], "b": ["passed"], "c": ["passed"]})
    assert run_tests(request, events, collected("a", "b", "c"), run_one) == 1
    assert [r.nodeid for r in events.finished()] == ["a"]  # b and c were never handed out


def test_an_adapters_exception_ends_the_loop(tmp_path: Path) -> None:
    def broken(test: CollectedTest) -> TestResult:
        raise RuntimeError("no shell")

    with pytest.raises(RuntimeError, match="no shell"):
        run_tests(RunRequest(root=tmp_path), Events(), collected("a"), broken)


def test_no_tests_is_exit_5(tmp_path: Path) -> None:
    assert run_tests(RunRequest(root=tmp_path), Events(), [], scripted({})) == 5


# -- the pytest adapter's seam -------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"pytest.ini": "[pytest]\n"}, True),
        ({"conftest.py": ""}, True),
        ({"pyproject.toml": "[tool.pytest.ini_options]\n"}, True),
        ({"tox.ini": "[pytest]\naddopts = -q\n"}, True),
        ({"tests/unit/test_x.py": ""}, True),
        ({"test_x.py": ""}, True),
        ({"pyproject.toml": "[project]\nname = 'x'\n", "shell_tests/a.sh": ""}, False),
        ({}, False),
    ],
)
def test_pytest_detection_is_real(tmp_path: Path, files: dict[str, str], expected: bool) -> None:
    root = tmp_path / "project"
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    assert detects(root) is expected
    assert PytestAdapter().detect(root) is expected


def test_pytest_stays_the_default_and_an_explicit_choice_wins(tmp_path: Path) -> None:
    assert pick_adapter(tmp_path).name == "pytest"  # nothing claims an empty directory
    assert pick_adapter(tmp_path, "pytest").name == "pytest"
    with pytest.raises(PluginError, match=r"no adapter named 'nose' \(installed: .*pytest"):
        pick_adapter(tmp_path, "nose")


def test_selection_flags_are_written_once_for_pytest_and_mcp(tmp_path: Path) -> None:
    selection = Selection(
        paths=("tests",), keyword="k", marker="m", deselect=("t::a",), last_failed=True,
        failed_first=True, exitfirst=True, maxfail=3, extra_args=("-p", "no:xdist"),
    )  # fmt: skip
    flags = ["-k", "k", "-m", "m", "--deselect", "t::a", "--lf", "--ff", "-x", "--maxfail=3"]
    assert selection_args(selection) == flags
    request = RunRequest(root=tmp_path, selection=selection, verbosity=-1, capture=False)
    assert pytest_args(request) == [*flags, "-s", "-q", "-p", "no:xdist", "tests"]
    mcp = McpRunRequest(paths=("tests",), keyword="k", maxfail=3, last_failed=True)
    assert mcp.argv(tmp_path, "r")[-5:] == ["-k", "k", "--lf", "--maxfail=3", "tests"]


def test_the_clis_engine_settings_reach_the_pytest_adapter_as_its_options(tmp_path: Path) -> None:
    from aqe._adapters.pytest import engine_settings
    from aqe._engine._limits import EngineSettings
    from aqe._engine._retry import RetryPolicy

    settings = EngineSettings(
        workers=3, timeout=5.0, retry=RetryPolicy(retries=2, retry_on="x"), split="file",
        quarantined=frozenset({"q"}), status_path="s.json",
    )  # fmt: skip
    request = RunOptions(root=tmp_path, workers=3, engine=settings).request(Selection(), "id")
    assert request.adapter_options is settings and engine_settings(request) is settings
    assert (request.timeout, request.retry, request.quarantined) == (
        5.0, RetryRules(retries=2, retry_on="x"), frozenset({"q"}),
    )  # fmt: skip
    neutral = RunRequest(root=tmp_path, workers=2, timeout=1.0, retry=RetryRules(retries=1))
    built = engine_settings(neutral)
    assert (built.workers, built.timeout, built.retry.retries) == (2, 1.0, 1)


# -- loading plugins -----------------------------------------------------------------


def test_an_entry_point_that_fails_to_import_is_one_line_naming_it() -> None:
    entry = EntryPoint("broken", "aqe_no_such_module_here:Adapter", "aqe.adapters")
    with pytest.raises(PluginError) as caught:
        load_adapter(entry)
    message = str(caught.value)
    assert "adapter entry point 'broken'" in message and "ModuleNotFoundError" in message
    assert "\n" not in message


def test_an_entry_point_lacking_methods_is_named() -> None:
    with pytest.raises(PluginError, match=r"'half' .* lacks detect, collect, run"):
        load_adapter(EntryPoint("half", "builtins:object", "aqe.adapters"))
    with pytest.raises(PluginError, match=r"reporter .*'junit'|no reporter named 'nope'"):
        load_reporter("nope")


def test_aqes_own_parts_satisfy_the_protocols(tmp_path: Path) -> None:
    assert isinstance(PytestAdapter(), Adapter)
    assert isinstance(TerminalSummary(), Reporter)
    for name in ("junit", "json", "terminal"):
        assert load_reporter(name).name == name
    with HistoryStore(tmp_path / "h.db") as store:
        assert isinstance(store, Store)


def test_a_history_location_names_its_store(tmp_path: Path) -> None:
    for location in (tmp_path / "a.db", f"sqlite://{tmp_path / 'b.db'}"):
        store = open_history(location)
        assert isinstance(store, HistoryStore)
        store.close()
    assert (tmp_path / "a.db").exists() and (tmp_path / "b.db").exists()
    with pytest.raises(PluginError, match=r"no store named .mysql. \(installed: .*postgres"):
        open_history("mysql://localhost/aqe")


def test_reports_are_chosen_by_name(tmp_path: Path) -> None:
    config = Config(junit_xml="out.xml", json="out.json", reports=("terminal=sum.txt",))
    chosen = chosen_reporters(config, tmp_path, PytestAdapter())
    assert [(r.name, p) for r, p in chosen] == [
        ("junit", Path("out.xml")), ("json", Path("out.json")), ("terminal", Path("sum.txt")),
    ]  # fmt: skip

    class Quiet:
        name = "quiet"

    assert [r.name for r, _ in chosen_reporters(Config(), tmp_path, Quiet())] == ["terminal"]  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="no reporter named 'pdf'"):
        chosen_reporters(Config(reports=("pdf=r.pdf",)), tmp_path, PytestAdapter())


# -- the recorder: events into the record and the history ---------------------------


def test_events_become_the_run_record_and_history(tmp_path: Path) -> None:
    run = RunRecord(run_id="r1", start=1.0, command=["aqe"], root=str(tmp_path), workers=4)
    with HistoryStore(tmp_path / "h.db") as store:
        store.begin_run(run)
        recorder = RunRecorder(store, run)
        recorder.emit(
            CollectionFinished(tuple(collected("a", "b"))),
            TestFinished(result("a")),
            TestFinished(result("b", "failed", message="AssertionError: 1 != 2")),
            FilesCollected({"a": 0.5}),
        )
        recorder.emit(CollectionFailed("c.sh", "unreadable"))
        recorder.emit(RunSummary(workers=2, collected=2, ran=2, tail_idle={0: 0.1}))
        assert [r.nodeid for r in store.results_for_run("r1")] == ["a", "b"]
        assert store.collect_estimates() == {"a": 0.5}
        assert set(recorder.estimates()) == {"a", "b"}
    assert [r.nodeid for r in run.results] == ["a", "b"]
    assert run.collection_errors == [("c.sh", "unreadable")]
    assert (run.workers, run.collected, run.ran, run.tail_idle) == (2, 2, 2, {0: 0.1})


def test_a_live_reporter_that_raises_is_reported_after_the_run(tmp_path: Path) -> None:
    class Boom:
        name = "boom"

        def write(self, run: RunRecord, destination: Path | None) -> None:
            pass

        def event(self, event: Event) -> None:
            raise ValueError("bad event")

    run = RunRecord(run_id="r", start=0.0, command=[], root=str(tmp_path), workers=1)
    recorder = RunRecorder(None, run, [Boom()])
    recorder.emit(TestFinished(result("a")), TestFinished(result("b")))
    assert [r.nodeid for r in run.results] == ["a", "b"]
    assert recorder.failed is not None
    assert "reporter 'boom' failed on an event: ValueError: bad event" == str(recorder.failed)


def test_the_terminal_summary_reads_like_pytests_closing_lines() -> None:
    run = RunRecord(run_id="r", start=10.0, end=11.5, command=[], root="/", workers=1)
    run.results += [
        result("a"),
        result("b", "failed", message="expected 3\nmore"),
        result("c", "failed", attempt=1),
        result("c", "flaky", attempt=2),
    ]
    assert summary_lines(run) == ["FAILED b - expected 3", "1 failed, 1 passed, 1 flaky in 1.50s"]


def test_the_public_module_exports_what_it_lists() -> None:
    import aqe.plugins

    assert sorted(aqe.plugins.__all__) == sorted(set(aqe.plugins.__all__))
    missing = [name for name in aqe.plugins.__all__ if not hasattr(aqe.plugins, name)]
    assert missing == []
