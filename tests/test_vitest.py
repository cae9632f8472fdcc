"""The Vitest and Jest adapters (``adapters/aqe-vitest``) end to end, on real Node.js.

The adapter is registered as ``test_plugins`` registers the shell adapter: a
``*.dist-info`` with its ``entry_points.txt`` on the aqe subprocess's ``PYTHONPATH``,
beside the adapter's source, so aqe finds it exactly as a pip-installed plugin.
The fixture projects ``fixtures/js_vitest`` and ``fixtures/js_jest`` need their
``node_modules``: ``.ci/run`` installs them with ``npm ci``, and the tests here do if
they are missing.
Each test works on a copy of the project whose ``node_modules`` links to the
fixture's, so runs leave nothing behind in the repository.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import HANG_GUARD, RunAqe, StartAqe

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "js_vitest"
ADAPTER = HERE.parent / "adapters" / "aqe-vitest"
MATH = "tests/math.test.ts > math"


def installed(fixture: Path, entry: str) -> Path:
    """A fixture's ``node_modules``, installed from its lockfile if missing."""
    modules = fixture / "node_modules"
    if not (modules / entry).is_file():
        npm = shutil.which("npm")
        if npm is None or shutil.which("node") is None:
            pytest.fail("the JavaScript adapter tests need Node.js 20+ and npm on PATH")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=fixture, check=True, timeout=HANG_GUARD * 5
        )
    return modules


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return installed(FIXTURE, "vitest/vitest.mjs")


def vitest_project(
    tmp_path: Path, modules: Path, link: bool = True, fixture: Path = FIXTURE
) -> tuple[Path, dict[str, str]]:
    project = tmp_path / "project"
    shutil.copytree(fixture, project, ignore=shutil.ignore_patterns("node_modules", ".flaky-state"))
    if link:
        (project / "node_modules").symlink_to(modules, target_is_directory=True)
    site = tmp_path / "site"
    info = site / "aqe_vitest-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: aqe-vitest\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[aqe.adapters]\nvitest = aqe_vitest:VitestAdapter\njest = aqe_vitest:JestAdapter\n"
    )
    # The hanging test costs two of the adapter's start-up allowances (20 s each: a
    # Vitest start took 3 s on this machine at a load of 13); it is not shortened here,
    # so a slow start under load cannot turn a passing test into a timeout.
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(ADAPTER / "src")])}
    return project, env


def attempts(report: Path) -> list[tuple[str, int, str]]:
    tests = json.loads(report.read_text())["tests"]
    return sorted((t["nodeid"], t["attempt"], t["outcome"]) for t in tests)


def test_a_vitest_suite_runs_detected_with_every_outcome_retries_and_reports(
    tmp_path: Path, run_aqe: RunAqe, node_modules: Path
) -> None:
    project, env = vitest_project(tmp_path, node_modules)
    done = run_aqe(
        "run", "-w", "2", "--retries", "1", "--retry-on", "expected false to be true",
        "--json", "out.json", "--junit-xml", "out.xml",
        "tests/math.test.ts", "tests/flaky.test.ts", "tests/exit.test.ts",
        cwd=project, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"FAILED {MATH} > subtracts wrongly - expected 2 to be 3" in done.stdout
    assert "3 failed, 5 passed, 2 skipped, 1 flaky in" in done.stdout
    assert attempts(project / "out.json") == [
        ("tests/exit.test.ts > exits its process", 1, "failed"),
        ("tests/flaky.test.ts > passes on a second try", 1, "failed"),
        ("tests/flaky.test.ts > passes on a second try", 2, "flaky"),
        (f"{MATH} > adds", 1, "passed"),
        (f"{MATH} > divides by zero", 1, "skipped"),
        (f"{MATH} > multiplies matrices", 1, "skipped"),
        (f"{MATH} > nested > deeper > squares", 1, "passed"),
        (f"{MATH} > subtracts wrongly", 1, "failed"),
        (f"{MATH} > sum(1, 1) = 2", 1, "passed"),
        (f"{MATH} > sum(2, 2) = 4", 1, "passed"),
        (f"{MATH} > sum(2, 3) = 6", 1, "failed"),
        ("tests/math.test.ts > top level", 1, "passed"),
    ]
    tests = {t["nodeid"]: t for t in json.loads((project / "out.json").read_text())["tests"]}
    assert tests[f"{MATH} > adds"]["stdout"] == "adding 1 and 2\n"
    assert tests["tests/math.test.ts > top level"]["stderr"] == "a warning on stderr\n"
    failed = tests[f"{MATH} > subtracts wrongly"]
    assert (failed["line"], failed["error_type"]) == (9, "AssertionError")
    assert "tests/math.test.ts:10:" in failed["traceback"]  # the stack, at the expect
    assert "node_modules" not in failed["traceback"]
    assert tests[f"{MATH} > multiplies matrices"]["message"] == "todo"
    assert (
        "process.exit unexpectedly called"
        in tests["tests/exit.test.ts > exits its process"]["message"]
    )  # Vitest's own guard: the process lives on and says so

    suite = ET.parse(project / "out.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("11", "3", "2")

    flaky = run_aqe("flaky", "--json", cwd=project, env=env)
    labels = {t["nodeid"]: t["label"] for t in json.loads(flaky.stdout)["tests"]}
    assert labels["tests/flaky.test.ts > passes on a second try"] == "flaky"


def test_a_hung_or_killed_node_process_is_killed_replaced_and_its_test_rerun_alone(
    tmp_path: Path, run_aqe: RunAqe, node_modules: Path
) -> None:
    project, env = vitest_project(tmp_path, node_modules)
    done = run_aqe(
        "run", "-w", "2", "--timeout", "2", "--json", "out.json",
        "tests/hang.test.ts", "tests/crash.test.ts",
        cwd=project, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert attempts(project / "out.json") == [
        ("tests/crash.test.ts > before the crash", 1, "passed"),
        ("tests/crash.test.ts > kills its own process", 1, "crashed"),
        ("tests/hang.test.ts > quick", 1, "passed"),
        ("tests/hang.test.ts > spins forever", 1, "timeout"),
    ]
    tests = {t["nodeid"]: t for t in json.loads((project / "out.json").read_text())["tests"]}
    # The batch that spun was killed: its tests ran again, each alone (tier "cold").
    assert tests["tests/hang.test.ts > spins forever"]["tier"] == "cold"
    assert "its Node process was killed" in tests["tests/hang.test.ts > spins forever"]["message"]
    assert (
        "ended before the test reported"
        in tests["tests/crash.test.ts > kills its own process"]["message"]
    )
    assert "CRASHED tests/crash.test.ts > kills its own process" in done.stdout


def test_selection_by_name_last_failed_and_an_explicit_adapter(
    tmp_path: Path, run_aqe: RunAqe, node_modules: Path
) -> None:
    project, env = vitest_project(tmp_path, node_modules)
    listed = run_aqe("list", "-k", "sum and not 1", cwd=project, env=env)
    assert listed.returncode == 0, listed.stderr
    assert f"{MATH} > sum(2, 2) = 4" in listed.stdout
    assert f"{MATH} > sum(2, 3) = 6" in listed.stdout
    assert "sum(1, 1)" not in listed.stdout and "adds" not in listed.stdout

    first = run_aqe("run", "--adapter", "vitest", "tests/math.test.ts", cwd=project, env=env)
    assert first.returncode == 1 and "2 failed, 5 passed, 2 skipped" in first.stdout
    again = run_aqe("run", "--lf", "--json", "lf.json", cwd=project, env=env)
    assert again.returncode == 1, again.stdout + again.stderr
    assert attempts(project / "lf.json") == [
        (f"{MATH} > subtracts wrongly", 1, "failed"),
        (f"{MATH} > sum(2, 3) = 6", 1, "failed"),
    ]

    (project / "tests" / "broken.test.ts").write_text('import { test } from "vitest"\n((( \n')
    broken = run_aqe("run", "tests/broken.test.ts", cwd=project, env=env)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "ERROR collecting tests/broken.test.ts" in broken.stdout


def exported(run_aqe: RunAqe, project: Path, env: dict[str, str], tmp_path: Path) -> Path:
    """The project's history, exported once, as the CI job before the shards keeps it."""
    export = tmp_path / "history.jsonl"
    done = run_aqe("history", "export", str(export), cwd=project, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return export


def imported(run_aqe: RunAqe, project: Path, env: dict[str, str], export: Path, index: int) -> str:
    """Shard ``index``'s own history, imported from the one export: every shard job
    plans from the same inputs (one shard's run must not change the next one's plan)."""
    history = export.with_name(f"job{index}.db")
    done = run_aqe("history", "import", str(export), "--history", str(history), cwd=project,
                   env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return str(history)


def test_shards_split_the_files_and_a_name_used_twice_is_two_stable_ids(
    tmp_path: Path, run_aqe: RunAqe, node_modules: Path
) -> None:
    project, env = vitest_project(tmp_path, node_modules)
    (project / "tests" / "twice.test.ts").write_text(
        "import { expect, test } from 'vitest'\n"
        "test('same', () => { expect(1).toBe(1) })\n"
        "test('same', () => { expect(1).toBe(2) })\n"
    )
    files = ("tests/math.test.ts", "tests/twice.test.ts", "tests/flaky.test.ts")
    whole = run_aqe("run", "--json", "all.json", *files, cwd=project, env=env)
    assert whole.returncode == 1, whole.stdout + whole.stderr
    every = {t[0] for t in attempts(project / "all.json")}
    assert {t for t in attempts(project / "all.json") if "twice" in t[0]} == {
        ("tests/twice.test.ts > same", 1, "passed"),
        ("tests/twice.test.ts > same [2]", 1, "failed"),
    }
    export = exported(run_aqe, project, env, tmp_path)
    shards: list[set[str]] = []
    for index in (1, 2):  # with the history of the whole run, as CI's jobs would have
        history = imported(run_aqe, project, env, export, index)
        done = run_aqe(
            "run", "--shard", f"{index}/2", "--json", f"s{index}.json", *files,
            "--history", history, cwd=project, env=env,
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stdout + done.stderr
        assert f"aqe: shard {index}/2: " in done.stdout
        shards.append({t[0] for t in attempts(project / f"s{index}.json")})
        shard = json.loads((project / f"s{index}.json").read_text())["shard"]
        assert (shard["index"], shard["count"]) == (index, 2)
    assert shards[0] | shards[1] == every and not shards[0] & shards[1]
    assert all(shards)  # three files, two shards: neither is empty
    # The copy that failed re-runs by --lf: its own id, not its namesake's.
    again = run_aqe("run", "--lf", "--json", "lf.json", "tests/twice.test.ts", cwd=project, env=env)
    assert again.returncode == 1, again.stdout + again.stderr
    assert attempts(project / "lf.json") == [("tests/twice.test.ts > same [2]", 1, "failed")]


def test_bad_input_is_one_line_and_exit_4(
    tmp_path: Path, run_aqe: RunAqe, node_modules: Path
) -> None:
    project, env = vitest_project(tmp_path, node_modules, link=False)
    missing = run_aqe("run", cwd=project, env=env)
    assert (missing.returncode, missing.stderr) == (
        4,
        f"aqe: error: vitest is not installed in {project} (no node_modules/vitest): "
        "run 'npm ci' there\n",
    )

    (project / "node_modules").symlink_to(node_modules, target_is_directory=True)
    no_node = run_aqe("run", cwd=project, env={**env, "PATH": str(tmp_path / "empty")})
    assert (no_node.returncode, no_node.stderr) == (
        4,
        "aqe: error: Node.js is not on PATH: install Node.js 20 or newer to run Vitest\n",
    )

    (project / "vitest.config.mjs").write_text('export default { test: { pool: "nope" } }\n')
    rejected = run_aqe("run", cwd=project, env=env)
    assert rejected.returncode == 4, rejected.stdout + rejected.stderr
    assert rejected.stderr.startswith(f"aqe: error: vitest could not list the tests in {project}")
    assert "nope" in rejected.stderr and rejected.stderr.count("\n") == 1
    assert "no tests ran" not in rejected.stdout + missing.stdout + no_node.stdout


def test_jest_bad_input_is_one_line_and_exit_4(tmp_path: Path, run_aqe: RunAqe) -> None:
    modules = installed(HERE / "fixtures" / "js_jest", "jest/bin/jest.js")
    project, env = vitest_project(tmp_path, modules, fixture=HERE / "fixtures" / "js_jest")
    (project / "jest.config.js").write_text('module.exports = { testEnvironment: "nope" }\n')
    rejected = run_aqe("run", cwd=project, env=env)
    assert (rejected.returncode, rejected.stdout) == (4, ""), rejected.stderr
    assert rejected.stderr == (
        f"aqe: error: jest could not list the tests in {project}: Validation Error: "
        "Test environment nope cannot be found. Make sure the testEnvironment configuration "
        "option points to an existing node module.\n"
    )


def test_a_jest_suite_runs_detected_with_retries_and_a_crashed_file(
    tmp_path: Path, run_aqe: RunAqe
) -> None:
    modules = installed(HERE / "fixtures" / "js_jest", "jest/bin/jest.js")
    project, env = vitest_project(tmp_path, modules, fixture=HERE / "fixtures" / "js_jest")
    done = run_aqe(
        "run", "-w", "2", "--retries", "1", "--retry-on", "Received: false", "--json", "out.json",
        "tests/math.test.js", "tests/flaky.test.js", "tests/crash.test.js",
        cwd=project, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 failed, 4 passed, 2 skipped, 1 crashed, 1 flaky in" in done.stdout
    math = "tests/math.test.js > math"
    assert attempts(project / "out.json") == [
        # Jest cannot list a file's tests: one that dies alone is one result for the file.
        ("tests/crash.test.js", 1, "crashed"),
        ("tests/flaky.test.js > passes on a second try", 1, "failed"),
        ("tests/flaky.test.js > passes on a second try", 2, "flaky"),
        (f"{math} > adds", 1, "passed"),
        (f"{math} > divides by zero", 1, "skipped"),
        (f"{math} > multiplies matrices", 1, "skipped"),
        (f"{math} > nested > deeper > squares", 1, "passed"),
        (f"{math} > subtracts wrongly", 1, "failed"),
        (f"{math} > sum(1, 1) = 2", 1, "passed"),
        (f"{math} > sum(2, 2) = 4", 1, "passed"),
        (f"{math} > sum(2, 3) = 6", 1, "failed"),
    ]
    # Jest buffers a file's console lines; each goes to the test that printed it.
    tests = {t["nodeid"]: t for t in json.loads((project / "out.json").read_text())["tests"]}
    assert tests[f"{math} > adds"]["stdout"] == "adding 1 and 2\n"
    assert tests[f"{math} > nested > deeper > squares"]["stderr"] == "squaring 3\n"
    assert not tests[f"{math} > subtracts wrongly"]["stdout"]
    again = run_aqe("run", "--lf", "--json", "lf.json", "tests/math.test.js", cwd=project, env=env)
    assert again.returncode == 1, again.stdout + again.stderr
    assert attempts(project / "lf.json") == [
        (f"{math} > subtracts wrongly", 1, "failed"),
        (f"{math} > sum(2, 3) = 6", 1, "failed"),
    ]


def test_the_distribution_declares_the_entry_point_the_tests_register() -> None:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    declared = tomllib.loads((ADAPTER / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared == {
        "aqe.adapters": {
            "vitest": "aqe_vitest:VitestAdapter",
            "jest": "aqe_vitest:JestAdapter",
        }
    }


def test_a_python_and_a_javascript_suite_run_as_one_run(
    tmp_path: Path, run_aqe: RunAqe, node_modules: Path
) -> None:
    """``fixtures/mixed_site``: a pytest suite, and a Vitest front end in ``frontend/``
    that ``[tool.aqe] suites`` names: one history run, one summary, one JUnit and JSON
    report, one exit code; ``--adapter`` still runs one of them."""
    project, env = vitest_project(tmp_path, node_modules, fixture=HERE / "fixtures" / "mixed_site")
    (project / "frontend" / "node_modules").symlink_to(node_modules, target_is_directory=True)
    done = run_aqe(
        "run", "-w", "2", "--json", "out.json", "--junit-xml", "out.xml", cwd=project, env=env
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    cart = "frontend/tests/cart.test.ts > cart"
    assert attempts(project / "out.json") == [
        (f"{cart} > applies a discount wrongly", 1, "failed"),
        (f"{cart} > ships abroad", 1, "skipped"),
        (f"{cart} > totals its lines", 1, "passed"),
        ("tests/test_prices.py::test_net_price", 1, "passed"),
        ("tests/test_prices.py::test_rounding_bug", 1, "failed"),
    ]
    last = done.stdout.rstrip().splitlines()
    assert last[-4] == "aqe: all 2 suites: pytest suite, vitest suite in frontend/"
    counts = [line for line in last if re.search(r"\d+ (passed|failed)\b.* in \d", line)]
    assert counts == [last[-1]], counts  # one closing line for the run, not one per suite
    assert last[-3] == "FAILED tests/test_prices.py::test_rounding_bug - assert 2.67 == 2.68"
    assert last[-2].startswith(f"FAILED {cart} > applies a discount wrongly - expected 2 to be 1")
    assert last[-1].startswith("2 failed, 2 passed, 1 skipped in ")
    suite = ET.parse(project / "out.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("5", "2")
    history = run_aqe("history", "-n", "5", cwd=project, env=env)
    assert history.stdout.count("exit 1") == 1, history.stdout  # one run, both suites

    # A path picks the suite it is in; the front end's ids keep their directory.
    front = run_aqe("run", "--json", "front.json", "frontend/tests", cwd=project, env=env)
    assert front.returncode == 1, front.stdout + front.stderr
    assert {t[0] for t in attempts(project / "front.json")} == {
        f"{cart} > applies a discount wrongly",
        f"{cart} > ships abroad",
        f"{cart} > totals its lines",
    }
    assert "pytest suite" not in front.stdout
    python = run_aqe("run", "--adapter", "pytest", "--json", "py.json", cwd=project, env=env)
    assert python.returncode == 1, python.stdout + python.stderr
    assert {t[0] for t in attempts(project / "py.json")} == {
        "tests/test_prices.py::test_net_price",
        "tests/test_prices.py::test_rounding_bug",
    }

    # --shard I/N: each suite splits into the same N shards; together they are the run.
    export = exported(run_aqe, project, env, tmp_path)
    ids: list[set[str]] = []
    for index in (1, 2):
        history = imported(run_aqe, project, env, export, index)
        shard = run_aqe(
            "run", "--shard", f"{index}/2", "--json", f"s{index}.json", "--history", history,
            cwd=project, env=env,
        )  # fmt: skip
        assert shard.returncode in (0, 1), shard.stdout + shard.stderr
        ids.append({t[0] for t in attempts(project / f"s{index}.json")})
    assert ids[0] | ids[1] == {t[0] for t in attempts(project / "out.json")}
    assert not ids[0] & ids[1]


def processes_in(directory: Path, marker: str = "node") -> set[int]:
    """Processes whose working directory is ``directory`` and whose command line
    holds ``marker`` (Node's, by default: aqe runs there too)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) != directory:
                    continue
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.add(int(entry.name))
            except OSError:
                continue  # gone, or not ours to read
    return found


def wait_for(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)  # polling a condition, bounded by HANG_GUARD
    return False


@pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="reads /proc")
def test_node_processes_die_with_a_sigkilled_aqe(
    tmp_path: Path, start_aqe: StartAqe, node_modules: Path
) -> None:
    """aqe killed outright (no handler runs) leaves no Vitest process behind: its
    watchdog, on the other end of a pipe, kills their process groups."""
    project, env = vitest_project(tmp_path, node_modules)
    project = project.resolve()
    aqe = start_aqe("run", "-w", "2", "tests/hang.test.ts", cwd=project, env=env)
    try:
        # Vitest's fork that spins (its main process waits for it).
        assert wait_for(lambda: bool(processes_in(project, "forks"))), "Vitest never started"
        aqe.kill()
        aqe.communicate(timeout=HANG_GUARD)
        assert wait_for(lambda: not processes_in(project)), processes_in(project)
    finally:
        if aqe.poll() is None:
            aqe.kill()
            aqe.communicate()
        for pid in processes_in(project):  # only what this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
