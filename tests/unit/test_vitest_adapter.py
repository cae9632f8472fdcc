"""The Vitest and Jest adapters' pure parts: the JSON reports as aqe's results, ids,
selection, the batch plan and detection. No Node.js, no processes: milliseconds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ADAPTER_SRC = Path(__file__).parents[2] / "adapters" / "aqe-vitest" / "src"
if str(ADAPTER_SRC) not in sys.path:  # importable whether or not it is pip-installed
    sys.path.insert(0, str(ADAPTER_SRC))

from aqe_vitest import (  # noqa: E402
    JestAdapter,
    VitestAdapter,
    exact_name,
    keep,
    keyword_matches,
    names_pattern,
    plan,
    select,
)
from aqe_vitest._report import console_lines, parse_list, parse_run, to_result  # noqa: E402

from aqe.plugins import CollectedTest, DurationEstimate, RunRequest, Selection  # noqa: E402

ROOT = Path("/project")
FAILURE = (
    "AssertionError: expected 2 to be 3 // Object.is equality\n"
    "    at /project/tests/math.test.ts:10:19\n"
    "    at file:///project/node_modules/@vitest/runner/dist/chunk.js:302:11\n"
    "    at new Promise (<anonymous>)"
)


def report(*results: dict[str, object], message: str = "") -> str:
    module = {"name": "/project/tests/math.test.ts", "message": message}
    return json.dumps({"testResults": [{**module, "assertionResults": list(results)}]})


def result(
    title: str, status: str, ancestors: tuple[str, ...] = (), **more: object
) -> dict[str, object]:
    return {"ancestorTitles": list(ancestors), "title": title, "status": status, **more}


def test_a_case_id_is_the_file_and_the_name_path_as_vitest_prints_it() -> None:
    cases, errors = parse_run(
        ROOT,
        report(
            result("squares", "passed", ("math", "nested"), duration=12.5, location={"line": 21}),
            result("sum(2, 3) = 6", "failed", ("math",), failureMessages=[FAILURE]),
        ),
    )
    assert errors == []
    assert [c.nodeid for c in cases] == [
        "tests/math.test.ts > math > nested > squares",
        "tests/math.test.ts > math > sum(2, 3) = 6",
    ]
    assert (cases[0].line, cases[0].seconds) == (21, 0.0125)


def test_outcomes_errors_and_stacks_become_aqe_results() -> None:
    cases, _ = parse_run(
        ROOT,
        report(
            result("a", "failed", failureMessages=[FAILURE]),
            result("b", "failed", failureMessages=["Error: Test timed out in 2000ms.\nmore"]),
            result("c", "todo"),
            result("d", "skipped"),
            result("e", "passed", duration=3),
        ),
    )
    failed, timed_out, todo, skipped, passed = (to_result(c, 1.0, 2.0) for c in cases)
    assert (failed.outcome, failed.error_type) == ("failed", "AssertionError")
    assert failed.message == "expected 2 to be 3 // Object.is equality"
    assert failed.traceback is not None and "math.test.ts:10:19" in failed.traceback
    assert "node_modules" not in failed.traceback and "<anonymous>" in failed.traceback
    assert timed_out.outcome == "timeout"
    assert (todo.outcome, todo.message, skipped.outcome) == ("skipped", "todo", "skipped")
    assert (passed.outcome, passed.when, passed.phases) == ("passed", None, {"call": 0.003})


def test_a_file_that_failed_without_results_is_a_collection_error() -> None:
    _, errors = parse_run(ROOT, report(message="SyntaxError: Unexpected token"))
    assert [(e.file, e.text) for e in errors] == [
        ("tests/math.test.ts", "SyntaxError: Unexpected token")
    ]


def test_vitest_list_and_console_lines_key_on_the_same_ids() -> None:
    listed = parse_list(
        ROOT,
        json.dumps(
            [{"name": "math > adds", "file": "/project/t.test.ts", "location": {"line": 4}}]
        ),
    )
    assert listed == [CollectedTest("t.test.ts > math > adds", "t.test.ts", 4)]
    lines = "\n".join(
        json.dumps(
            {"file": "/project/t.test.ts", "path": ["math", "adds"], "type": t, "content": c}
        )
        for t, c in [("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n")]
    )
    assert console_lines(ROOT, lines) == {"t.test.ts > math > adds": ("one\nthree\n", "two\n")}


def test_names_become_an_exact_escaped_vitest_pattern() -> None:
    test = CollectedTest("t.test.ts > math > sum(2, 3) = 6", "t.test.ts", 1)
    assert exact_name(test) == r"math sum\(2, 3\) = 6"
    other = CollectedTest("t.test.ts > a.b", "t.test.ts", 2)
    assert names_pattern([test, other]) == r"^(?:a\.b|math sum\(2, 3\) = 6)$"


def test_a_name_used_twice_in_a_file_is_two_ids_numbered_by_their_place() -> None:
    cases, _ = parse_run(
        ROOT,
        report(
            result("adds", "passed", ("math",)),
            result("adds", "failed", ("math",), failureMessages=[FAILURE]),
            result("adds", "skipped", ("math",)),
            result("adds [2]", "passed"),
        ),
    )
    assert [(c.nodeid, c.status) for c in cases] == [
        ("tests/math.test.ts > math > adds", "passed"),
        ("tests/math.test.ts > math > adds [2]", "failed"),
        ("tests/math.test.ts > math > adds [3]", "skipped"),
        ("tests/math.test.ts > adds [2]", "passed"),
    ]
    listed = json.dumps([
        {"name": "math > adds", "file": "/project/tests/math.test.ts"},
        {"name": "math > adds", "file": "/project/tests/math.test.ts"},
    ])  # fmt: skip
    assert [t.nodeid for t in parse_list(ROOT, listed)] == [c.nodeid for c in cases[:2]]
    # A copy re-runs alone under a pattern matching its name (and a test named so).
    copy = CollectedTest("tests/math.test.ts > math > adds [2]", "tests/math.test.ts", None)
    assert exact_name(copy) == r"(?:math adds \[2\]|math adds)"


def test_keyword_expressions_follow_pytest_k() -> None:
    nodeid = "tests/math.test.ts > Math > sum(2, 2) = 4"
    assert keyword_matches("math and sum", nodeid)
    assert not keyword_matches("sum and not math", nodeid)
    assert keyword_matches("(adds or SUM) and not divides", nodeid)


def test_selection_filters_by_keyword_and_deselect(tmp_path: Path) -> None:
    tests = [CollectedTest(f"t.test.ts > {name}", "t.test.ts", 1) for name in ("a1", "a2", "b1")]
    request = RunRequest(
        root=tmp_path, selection=Selection(keyword="1", deselect=("t.test.ts > b",))
    )
    assert [t.nodeid for t in select(request, tests)] == ["t.test.ts > a1"]
    last_failed = RunRequest(root=tmp_path, selection=Selection(last_failed=True))
    assert select(last_failed, tests) == tests  # no failures known: everything, as pytest


def test_the_plan_deals_long_files_first_and_unknown_ones_before_them() -> None:
    estimates = {
        "short.ts > a": DurationEstimate("short.ts > a", 0, 1.0, 0, 1.0, 3),
        "long.ts > a": DurationEstimate("long.ts > a", 0, 4.0, 0, 4.0, 3),
        "long.ts > b": DurationEstimate("long.ts > b", 0, 5.0, 0, 5.0, 3),
    }
    files = {"short.ts": 0, "long.ts": 0, "new.ts": 0, "given.ts": 7}
    assert plan(files, estimates, workers=1) == [
        (["new.ts"], 1),  # unknown: one test at least, for its time limit
        (["given.ts"], 7),
        (["long.ts", "short.ts"], 3),  # known: one batch per worker, longest first
    ]
    more = {f"f{i}.ts > t": DurationEstimate(f"f{i}.ts > t", 0, i, 0, i, 3) for i in range(1, 6)}
    known = dict.fromkeys((f"f{i}.ts" for i in range(1, 6)), 0)
    # Balanced by measured seconds (5+2+1 against 4+3), the longer batch first.
    assert plan(known, more, workers=2) == [
        (["f5.ts", "f2.ts", "f1.ts"], 3),
        (["f4.ts", "f3.ts"], 2),
    ]
    # A file's overhead (its imports and setup, outside its tests) weighs with them:
    # f1's 6 s of imports make it the heaviest file.
    assert plan(known, more, workers=2, overheads={"f1.ts": 6.0}) == [
        (["f5.ts", "f4.ts", "f2.ts"], 3),  # 5 + 4 + 2
        (["f1.ts", "f3.ts"], 2),  # (1 + 6) + 3
    ]
    # Unknown files: two batches per worker, balanced by their size in bytes.
    unknown = dict.fromkeys(("a.ts", "b.ts", "c.ts", "d.ts"), 0)
    sizes = {"a.ts": 900, "b.ts": 500, "c.ts": 300, "d.ts": 200}
    assert plan(unknown, {}, workers=1, sizes=sizes) == [
        (["b.ts", "c.ts", "d.ts"], 3),  # 1000 bytes, then 900
        (["a.ts"], 1),
    ]


def test_detection_reads_package_json_or_a_vitest_config(tmp_path: Path) -> None:
    adapter = VitestAdapter()
    assert not adapter.detect(tmp_path)
    (tmp_path / "package.json").write_text('{"devDependencies": {"jest": "29"}}')
    assert not adapter.detect(tmp_path)
    (tmp_path / "package.json").write_text('{"devDependencies": {"vitest": "4.1.12"}}')
    assert adapter.detect(tmp_path)
    (tmp_path / "package.json").write_text("{ not json")
    assert not adapter.detect(tmp_path)
    (tmp_path / "vitest.config.ts").write_text("export default {}\n")
    assert adapter.detect(tmp_path)


def test_jest_messages_carry_expected_and_received() -> None:
    failure = (
        "Error: expect(received).toBe(expected) // Object.is equality\n\n"
        "Expected: 3\nReceived: 2\n    at Object.toBe (/project/tests/math.test.js:7:17)"
    )
    cases, _ = parse_run(ROOT, report(result("a", "failed", failureMessages=[failure])))
    failed = to_result(cases[0], 1.0, 2.0)
    assert failed.error_type == "Error"
    assert failed.message == (
        "expect(received).toBe(expected) // Object.is equality (Expected: 3, Received: 2)"
    )
    timeout = 'thrown: "Exceeded timeout of 2000 ms for a test.\n'
    cases, _ = parse_run(ROOT, report(result("b", "failed", failureMessages=[timeout])))
    assert to_result(cases[0], 1.0, 2.0).outcome == "timeout"


def test_jest_is_detected_by_its_own_dependency_or_config(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text('{"devDependencies": {"vitest": "4.1.12"}}')
    assert not JestAdapter().detect(tmp_path)
    (tmp_path / "package.json").write_text('{"devDependencies": {"jest": "30.2.0"}}')
    assert JestAdapter().detect(tmp_path) and not VitestAdapter().detect(tmp_path)


def test_tests_found_by_running_them_are_kept_by_keyword_and_deselect(tmp_path: Path) -> None:
    request = RunRequest(root=tmp_path, selection=Selection(keyword="sum", deselect=("a > sum(1",)))
    assert keep(request, CollectedTest("a > sum(2)", "a", 1))
    assert not keep(request, CollectedTest("a > sum(1)", "a", 1))
    assert not keep(request, CollectedTest("a > adds", "a", 1))


def test_a_javascript_project_inside_a_python_repository_picks_its_framework(
    tmp_path: Path,
) -> None:
    from aqe._adapters import load_adapters, pick_adapter

    assert "vitest" in load_adapters(), "install adapters/aqe-vitest (pip install -e)"
    package = {"devDependencies": {"vitest": "^4.0.0"}}
    # Its pytest config is above it; run from there, it is its own project.
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    front = tmp_path / "front"
    front.mkdir()
    (front / "package.json").write_text(json.dumps(package), encoding="utf-8")
    assert pick_adapter(front).name == "vitest"
    assert pick_adapter(front, "pytest").name == "pytest"
