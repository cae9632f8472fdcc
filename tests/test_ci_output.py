"""CI-native and agent-native output: GitHub annotations and job summary, the agent reporter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import MakeProject, RunAqe

from aqe._adapters.pytest import PytestAdapter
from aqe._model import RunRecord, TestResult
from aqe._options import Config
from aqe._reporting.agent import MAX_DETAILED, MAX_LISTED, agent_lines
from aqe._reporting.github import (
    GithubReporter,
    annotation_lines,
    escape_data,
    escape_property,
    failing_line,
    summary,
)
from aqe._runner import chosen_reporters, console_reporter

TRACEBACK = """\
def test_total():
>       assert total([1, 2]) == 4
E       assert 3 == 4

tests/test_shop.py:7: AssertionError"""


def result(nodeid: str, outcome: str = "passed", **more: object) -> TestResult:
    file = nodeid.split("::", 1)[0]
    fields: dict[str, object] = {"line": 5, "phases": {"call": 0.01}, "worker": 0}
    fields.update(more)
    return TestResult(nodeid, file, outcome=outcome, **fields)  # type: ignore[arg-type]


def record(*results: TestResult, **more: object) -> RunRecord:
    run = RunRecord("r1", 100.0, ["aqe", "run"], "/proj", 2, end=103.5, exit_code=1)
    run.results.extend(results)
    for key, value in more.items():
        setattr(run, key, value)
    return run


def failing(nodeid: str = "tests/test_shop.py::test_total", **more: object) -> TestResult:
    fields: dict[str, object] = {
        "when": "call",
        "error_type": "AssertionError",
        "message": "assert 3 == 4",
        "traceback": TRACEBACK,
    }
    fields.update(more)
    return result(nodeid, "failed", **fields)


# -- GitHub Actions ------------------------------------------------------------------


def test_workflow_commands_escape_as_github_requires() -> None:
    assert escape_data("100% sure\r\nnext") == "100%25 sure%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"


def test_an_annotation_points_at_the_failing_line() -> None:
    assert failing_line(failing()) == 7
    # A frame in a helper of the project when the test's own file is not in it.
    helper = failing(traceback="src/shop.py:12: ValueError")
    assert failing_line(helper) == 12
    # No frame at all: the test's definition.
    assert failing_line(failing(traceback=None)) == 5
    lines = annotation_lines(record(failing(), result("tests/test_ok.py::test_ok")))
    assert lines == [
        "::error file=tests/test_shop.py,line=7,"
        "title=failed%3A tests/test_shop.py%3A%3Atest_total::assert 3 == 4"
    ]


def test_flaky_quarantined_and_collection_errors_are_annotated() -> None:
    flaky = [
        failing("tests/test_a.py::test_f", message="boom\nsecond line"),
        result("tests/test_a.py::test_f", "flaky", attempt=2),
    ]
    quarantined = failing("tests/test_b.py::test_q", quarantined=True)
    run = record(
        *flaky, quarantined, collection_errors=[("tests/test_c.py", "E   SyntaxError: bad")]
    )
    lines = annotation_lines(run)
    assert lines[0] == (
        "::error file=tests/test_c.py,title=collecting tests/test_c.py::E   SyntaxError: bad"
    )
    assert lines[1].startswith("::warning file=tests/test_a.py,line=5,title=flaky%3A ")
    assert lines[1].endswith("::boom%0Asecond line")
    assert lines[2].startswith("::warning file=tests/test_b.py,line=7,title=failed%3A ")


def test_annotations_are_bounded() -> None:
    run = record(*(failing(f"tests/test_shop.py::test_{n}") for n in range(80)))
    lines = annotation_lines(run)
    assert len(lines) == 51
    assert lines[-1] == "::notice::aqe: 30 more failures not annotated"


def test_the_job_summary_has_counts_failures_flaky_and_slowest() -> None:
    run = record(
        failing(message="assert 3 == 4 | pipe"),
        failing("tests/test_a.py::test_f"),
        result("tests/test_a.py::test_f", "flaky", attempt=2),
        result("tests/test_a.py::test_slow", phases={"call": 2.5}),
    )
    text = summary(run)
    assert text.startswith("### aqe: exit 1 in 3.50s on 2 workers\n")
    assert "| failed | passed | flaky |\n|---:|---:|---:|\n| 1 | 1 | 1 |" in text
    assert (
        "- **failed** `tests/test_shop.py::test_total` at `tests/test_shop.py:7`: "
        "assert 3 == 4 \\| pipe"
    ) in text
    assert "#### Flaky (passed on a retry)\n\n- `tests/test_a.py::test_f` (attempt 2)" in text
    assert "| 2.50 | `tests/test_a.py::test_slow` |" in text


def test_the_reporter_appends_to_the_step_summary(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    target.write_text("earlier step\n", encoding="utf-8")
    reporter = GithubReporter({"GITHUB_STEP_SUMMARY": str(target)})
    reporter.write(record(failing()), tmp_path / "annotations.txt")
    assert target.read_text(encoding="utf-8").startswith("earlier step\n### aqe: exit 1")
    assert (tmp_path / "annotations.txt").read_text(encoding="utf-8").startswith("::error ")


def test_github_actions_and_agents_choose_their_reporters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = PytestAdapter()
    assert [r.name for r, _ in chosen_reporters(Config(), tmp_path, adapter)] == []
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert [r.name for r, _ in chosen_reporters(Config(), tmp_path, adapter)] == ["github"]
    both = chosen_reporters(Config(reporter="github"), tmp_path, adapter)
    assert [r.name for r, _ in both] == ["github"]  # asked twice, written once
    assert console_reporter(Config(), {}) is None
    for variable in ("CLAUDECODE", "CODEX_THREAD_ID", "AI_AGENT"):
        assert console_reporter(Config(), {variable: "1"}) == "agent"
    assert console_reporter(Config(reporter="pytest"), {"CLAUDECODE": "1"}) is None
    assert console_reporter(Config(reporter="agent"), {}) == "agent"

    class Quiet:
        name = "quiet"

    # An adapter that prints no summary gets the agent's instead of the terminal one.
    monkeypatch.delenv("GITHUB_ACTIONS")
    chosen = chosen_reporters(Config(reporter="agent"), tmp_path, Quiet())  # type: ignore[arg-type]
    assert [r.name for r, _ in chosen] == ["agent"]


# -- the agent reporter --------------------------------------------------------------


def test_agent_output_is_the_failures_flaky_and_closing_line() -> None:
    run = record(
        failing(stdout="noise\n" * 50 + "last words\n"),
        result("tests/test_a.py::test_ok"),
        failing("tests/test_a.py::test_f"),
        result("tests/test_a.py::test_f", "flaky", attempt=2),
    )
    lines = agent_lines(run)
    assert lines[0] == "FAILED tests/test_shop.py::test_total (tests/test_shop.py:7)"
    assert ">       assert total([1, 2]) == 4" in "\n".join(lines)
    assert "  > last words" in lines
    assert lines.count("  > noise") == 4  # the last 5 lines of the output
    assert lines[-2] == "FLAKY tests/test_a.py::test_f (passed on attempt 2)"
    assert lines[-1] == "1 failed, 1 passed, 1 flaky in 3.50s"


def test_agent_output_is_bounded() -> None:
    run = record(*(failing(f"tests/test_shop.py::test_{n}") for n in range(100)))
    lines = agent_lines(run)
    detailed = [line for line in lines if re.match(r"FAILED \S+ \(", line)]
    brief = [line for line in lines if re.match(r"FAILED \S+ - ", line)]
    assert len(detailed) == MAX_DETAILED
    assert len(brief) == MAX_LISTED - MAX_DETAILED
    assert f"... {100 - MAX_LISTED} more failures: aqe failures --json" in lines
    assert len("\n".join(lines)) < 20_000


# -- end to end ----------------------------------------------------------------------

SHOP = {
    "test_shop.py": """
        def total(xs):
            return sum(xs)

        def test_ok():
            assert total([1]) == 1

        def test_total():
            print("computing")
            assert total([1, 2]) == 4
    """
}


@pytest.mark.e2e
def test_under_an_agent_aqe_prints_only_failures(
    make_project: MakeProject, run_aqe: RunAqe
) -> None:
    root = make_project(SHOP)
    done = run_aqe("run", "-w", "2", "--no-history", cwd=root, env={"CLAUDECODE": "1"})
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "FAILED test_shop.py::test_total (test_shop.py:10)"
    assert "  E       assert 3 == 4" in lines
    assert "  > computing" in lines
    assert re.fullmatch(r"1 failed, 1 passed in \d+\.\d\ds", lines[-1])
    assert "test session starts" not in done.stdout
    # Asked for pytest's output, an agent gets it.
    plain = run_aqe(
        "run", "-w", "2", "--no-history", "--reporter", "pytest", cwd=root,
        env={"CLAUDECODE": "1"},
    )  # fmt: skip
    assert "test session starts" in plain.stdout
    assert "FAILED test_shop.py::test_total - assert 3 == 4" in plain.stdout


@pytest.mark.e2e
def test_on_github_actions_failures_are_annotated(
    make_project: MakeProject, run_aqe: RunAqe, tmp_path: Path
) -> None:
    root = make_project(SHOP)
    target = tmp_path / "step-summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(target)}
    done = run_aqe("run", "-w", "2", "--no-history", cwd=root, env=env)
    assert done.returncode == 1, done.stderr
    assert (
        "::error file=test_shop.py,line=10,title=failed%3A test_shop.py%3A%3Atest_total::"
        "assert 3 == 4%0A +  where 3 = total([1, 2])"
    ) in done.stdout
    assert "test session starts" in done.stdout  # pytest's output stays
    text = target.read_text(encoding="utf-8")
    assert "| 1 | 1 |" in text and "`test_shop.py::test_total` at `test_shop.py:10`" in text


# -- pytest's per-file progress lines in CI logs -------------------------------------


def test_a_file_is_complete_when_all_its_collected_tests_are_done() -> None:
    from aqe._reporting.terminal import _FileLines

    lines = _FileLines()
    tests = {"a.py": {"a.py::t1", "a.py::t2"}, "b.py": {"b.py::t3"}}
    for nodeid in ("a.py::t1", "a.py::t2", "b.py::t3"):
        lines.collected(nodeid)
    lines.hold("a.py::t1", ".", {})
    assert lines.done("a.py::t1", tests.__getitem__) is None
    lines.hold("b.py::t3", "F", {"red": True})
    assert lines.done("b.py::t3", tests.__getitem__) == "b.py"
    assert lines.take("b.py") == [("F", {"red": True})]
    lines.hold("a.py::t2", "R", {})
    assert lines.done("a.py::t2", tests.__getitem__) == "a.py"
    assert [letter for letter, _ in lines.take("a.py")] == [".", "R"]
    # The retry of a test whose file already had its line: a line of its own.
    lines.hold("a.py::t2", ".", {})
    assert lines.done("a.py::t2", tests.__getitem__) == "a.py"
    assert (lines.known, lines.finished, lines.waiting()) == (3, 3, ["a.py"])
    # A file nobody collected (no count to reach) waits for the end of the run.
    lines.hold("c.py::t4", ".", {})
    assert lines.done("c.py::t4", lambda file: set()) is None
    assert lines.waiting() == ["a.py", "c.py"]


@pytest.mark.e2e
def test_ci_logs_show_a_line_per_file(make_project: MakeProject, run_aqe: RunAqe) -> None:
    root = make_project(
        {
            "tests/test_a.py": "def test_1(): pass\ndef test_2(): assert 0\n",
            "tests/test_b.py": "".join(f"def test_{n}(): pass\n" for n in range(100)),
        }
    )
    done = run_aqe("run", "-w", "2", "--no-history", cwd=root)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    a = next(line for line in lines if line.startswith("tests/test_a.py "))
    assert re.fullmatch(r"tests/test_a\.py (\.F|F\.) +\[ *\d+%\]", a) and len(a) == 79
    b = [line for line in lines if line.startswith("tests/test_b.py ")]
    assert len(b) == 1 and re.fullmatch(r"tests/test_b\.py \.+ \[ *\d+%\]", b[0])
    wrapped = lines[lines.index(b[0]) + 1]  # 100 letters: wrapped at the edge, as pytest does
    assert re.fullmatch(r"\.+ +\[ *\d+%\]", wrapped)
    letters = b[0].removeprefix("tests/test_b.py ") + wrapped
    assert letters.count(".") == 100
    assert lines[-1].startswith("=") and "1 failed, 101 passed" in lines[-1]
