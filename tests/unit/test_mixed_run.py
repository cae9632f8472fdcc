"""One run over several suites (``aqe._adapters._mixed``): parts, ids, codes, summary.

The parts here are small in-memory adapters that emit what a real one would; the
mixed adapter, the runner's recorder and the picking are aqe's own. Milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aqe._adapters import load_adapters, pick_adapter
from aqe._adapters._mixed import MixedAdapter, Part, combined_code, merged, part_request
from aqe._exceptions import UsageError
from aqe._model import TestResult
from aqe.plugins import (
    CollectedTest,
    CollectionFinished,
    DurationEstimate,
    Event,
    Outcome,
    RunEvents,
    RunRequest,
    RunSummary,
    Selection,
    TestFinished,
)

VITEST = {"devDependencies": {"vitest": "^4.0.0"}}


def result(nodeid: str, outcome: Outcome = "passed") -> TestResult:
    file = nodeid.split("::")[0].split(" > ")[0]
    return TestResult(
        nodeid=nodeid, file=file, line=1, outcome=outcome, phases={"call": 0.1}, worker=0
    )


@dataclass
class Suite:
    """An adapter that reports fixed results and remembers what it was asked."""

    name: str
    results: tuple[TestResult, ...]
    code: int = 0
    asked: list[RunRequest] = field(default_factory=list)
    seen_estimates: list[Mapping[str, DurationEstimate]] = field(default_factory=list)

    def detect(self, root: Path) -> bool:
        return True

    def collect(self, request: RunRequest) -> list[CollectedTest]:
        return [CollectedTest(r.nodeid, r.file, r.line) for r in self.results]

    def run(self, request: RunRequest, events: RunEvents) -> int:
        self.asked.append(request)
        self.seen_estimates.append(events.estimates())
        events.emit(CollectionFinished(tuple(self.collect(request))))
        events.emit(*(TestFinished(r) for r in self.results))
        events.emit(RunSummary(workers=2, collected=len(self.results), ran=len(self.results)))
        return self.code


@dataclass
class Recorder:
    events: list[Event] = field(default_factory=list)
    known: dict[str, DurationEstimate] = field(default_factory=dict)

    def emit(self, *events: Event) -> None:
        self.events.extend(events)

    def estimates(self) -> Mapping[str, DurationEstimate]:
        return self.known

    def file_estimates(self) -> Mapping[str, float]:
        return {}


def finished(recorder: Recorder) -> list[tuple[str, str, str]]:
    return [
        (e.result.nodeid, e.result.file, e.result.outcome)
        for e in recorder.events
        if isinstance(e, TestFinished)
    ]


def test_parts_run_in_order_with_nested_ids_prefixed_and_one_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    python = Suite("pytest", (result("tests/test_a.py::test_x"),))
    front = Suite("vitest", (result("tests/a.test.ts > x", "failed"),), code=1)
    (tmp_path / "web").mkdir()
    mixed = MixedAdapter([Part(python, tmp_path), Part(front, tmp_path / "web", "web/")])
    recorder = Recorder()
    code = mixed.run(RunRequest(root=tmp_path, quarantined=frozenset({"web/q > t"})), recorder)
    assert code == 1
    assert finished(recorder) == [
        ("tests/test_a.py::test_x", "tests/test_a.py", "passed"),
        ("web/tests/a.test.ts > x", "web/tests/a.test.ts", "failed"),
    ]
    summaries = [e for e in recorder.events if isinstance(e, RunSummary)]
    assert summaries == [RunSummary(workers=2, collected=2, ran=2)]
    collected = [e for e in recorder.events if isinstance(e, CollectionFinished)]
    assert collected[1].tests[0].nodeid == "web/tests/a.test.ts > x"
    # Each part runs in its own directory; quarantined ids reach it as its own.
    assert front.asked[0].root == tmp_path / "web"
    assert front.asked[0].quarantined == frozenset({"q > t"})
    printed = capsys.readouterr().out
    assert "aqe: the vitest suite in web/\n" in printed
    assert printed.endswith("aqe: all 2 suites: pytest suite, vitest suite in web/\n")


def test_a_nested_part_sees_the_history_under_its_own_ids(tmp_path: Path) -> None:
    front = Suite("vitest", (result("a.test.ts > x"),))
    recorder = Recorder()
    estimate = DurationEstimate("web/a.test.ts > x", 0.0, 1.0, 0.0, 1.0, 3)
    other = DurationEstimate("tests/t.py::t", 0.0, 2.0, 0.0, 2.0, 3)
    recorder.known = {"web/a.test.ts > x": estimate, "tests/t.py::t": other}
    MixedAdapter([Part(front, tmp_path / "web", "web/")]).run(RunRequest(root=tmp_path), recorder)
    assert dict(front.seen_estimates[0]) == {"a.test.ts > x": estimate}


def test_paths_go_to_the_part_they_are_in(tmp_path: Path) -> None:
    (tmp_path / "web" / "tests").mkdir(parents=True)
    (tmp_path / "tests").mkdir()
    python, front = (
        Part(Suite("pytest", ()), tmp_path),
        Part(Suite("vitest", ()), tmp_path / "web", "web/"),
    )
    only_web = RunRequest(
        root=tmp_path,
        selection=Selection(
            paths=(str(tmp_path / "web" / "tests"),),
            deselect=("web/tests/a.test.ts > x", "tests/t.py::t"),
            extra_args=("--tb=short",),
        ),
    )
    assert part_request(python, only_web, True, [front.root]) is None
    asked = part_request(front, only_web, False)
    assert asked is not None
    assert asked.selection.paths == (str(tmp_path / "web" / "tests"),)
    assert asked.selection.deselect == ("tests/a.test.ts > x",)
    assert asked.selection.extra_args == ()  # pytest's arguments are not Vitest's
    everything = RunRequest(root=tmp_path, selection=Selection(extra_args=("--tb=short",)))
    first = part_request(python, everything, True, [front.root])
    assert first is not None and first.selection.extra_args == ("--tb=short",)


def test_exit_codes_combine_as_pytest_would() -> None:
    assert combined_code([0, 5]) == 0
    assert combined_code([5, 5]) == 5
    assert combined_code([]) == 5
    assert combined_code([0, 1]) == 1
    assert combined_code([1, 4]) == 4
    assert combined_code([1, 2]) == 2


def test_summaries_add_their_counts() -> None:
    one = RunSummary(workers=2, collected=3, ran=3, tail_idle={0: 0.5})
    two = RunSummary(workers=4, collected=2, ran=1)
    assert merged([one, two]) == RunSummary(workers=4, collected=5, ran=4, tail_idle={0: 0.5})


def test_exitfirst_skips_the_suites_after_a_failure(tmp_path: Path) -> None:
    first = Suite("pytest", (result("t.py::a", "failed"),), code=1)
    second = Suite("vitest", (result("a.test.ts > b"),))
    mixed = MixedAdapter([Part(first, tmp_path), Part(second, tmp_path)])
    assert (
        mixed.run(RunRequest(root=tmp_path, selection=Selection(exitfirst=True)), Recorder()) == 1
    )
    assert second.asked == []


def site(tmp_path: Path, package: bool = True) -> Path:
    root = tmp_path / "site"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_views.py").write_text("def test_x(): pass\n", encoding="utf-8")
    if package:
        (root / "package.json").write_text(json.dumps(VITEST), encoding="utf-8")
    return root


def test_a_repository_with_a_python_and_a_javascript_suite_runs_both(tmp_path: Path) -> None:
    assert "vitest" in load_adapters(), "install adapters/aqe-vitest (pip install -e)"
    root = site(tmp_path)
    picked = pick_adapter(root)
    assert isinstance(picked, MixedAdapter)
    assert [(p.adapter.name, p.prefix) for p in picked.parts] == [("pytest", ""), ("vitest", "")]
    assert pick_adapter(root, "vitest").name == "vitest"  # --adapter still picks one
    assert pick_adapter(root, "pytest").name == "pytest"


def test_a_nested_front_end_joins_through_the_suites_setting(tmp_path: Path) -> None:
    root = site(tmp_path, package=False)
    assert pick_adapter(root).name == "pytest"  # nothing below the root is scanned
    (root / "web").mkdir()
    (root / "web" / "package.json").write_text(json.dumps(VITEST), encoding="utf-8")
    assert pick_adapter(root).name == "pytest"
    picked = pick_adapter(root, suites=["web"])
    assert isinstance(picked, MixedAdapter)
    assert [(p.adapter.name, p.prefix) for p in picked.parts] == [
        ("pytest", ""),
        ("vitest", "web/"),
    ]
    named = pick_adapter(root, "vitest", suites=["web"])
    assert isinstance(named, MixedAdapter)  # the named adapter wherever it claims a suite
    assert [(p.adapter.name, p.prefix) for p in named.parts] == [("vitest", ""), ("vitest", "web/")]
    (root / "docs").mkdir()
    with pytest.raises(UsageError, match="no installed adapter claims suite 'docs'"):
        pick_adapter(root, suites=["docs"])
    with pytest.raises(UsageError, match="suite 'nowhere'"):
        pick_adapter(root, suites=["nowhere"])
