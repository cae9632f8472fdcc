"""End-to-end tests of the ``aqe`` command, run in a subprocess on tiny projects."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import HANG_GUARD

import aqe

if TYPE_CHECKING:
    from conftest import MakeProject, RunAqe, StartAqe

PASSING = {
    "test_one.py": """
        def test_a():
            assert 1 + 1 == 2

        def test_b():
            pass
    """,
    "test_two.py": """
        def test_c():
            assert "x" in "xyz"
    """,
}

FAILING = {
    **PASSING,
    "test_two.py": """
        def test_c():
            assert "x" in "xyz"

        def test_broken():
            answer = 41
            assert answer == 42, "deliberate failure marker"
    """,
}

SUMMARY = re.compile(r"1 failed, (\d+) passed.* in [\d.]+s")
HISTORY_LINE = re.compile(r"^(?P<run_id>[0-9a-f]{12})\s.*\bexit (?P<exit>\d+)\s+(?P<commit>\S+)\s")


def assert_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 4, exactly one stderr line starting ``aqe: error:``, no traceback anywhere."""
    assert result.returncode == 4, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aqe: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def history_lines(run_aqe: RunAqe, root: Path) -> list[str]:
    result = run_aqe("history", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


# -- basics --------------------------------------------------------------------------


def test_version(run_aqe: RunAqe, tmp_path: Path) -> None:
    result = run_aqe("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert aqe.__version__ in result.stdout


def test_failing_run(run_aqe: RunAqe, make_project: MakeProject) -> None:
    root = make_project(FAILING)
    result = run_aqe("run", "-w", "2", "--no-history", cwd=root)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "def test_broken():" in out
    assert "deliberate failure marker" in out
    assert "assert 41 == 42" in out
    assert re.search(r"^test_two\.py:\d+: AssertionError$", out, re.MULTILINE), out
    closing = [line for line in out.splitlines() if line.strip()][-1]
    match = SUMMARY.search(closing)
    assert match, closing
    assert match.group(1) == "3"
    assert not (root / ".aqe" / "history.db").exists()


def test_passing_run_exits_0(run_aqe: RunAqe, make_project: MakeProject) -> None:
    result = run_aqe("run", "-w", "2", "--no-history", cwd=make_project(PASSING))
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b3 passed in [\d.]+s", result.stdout)


def test_summary_follows_pytests_order_not_completion_order(
    run_aqe: RunAqe, make_project: MakeProject
) -> None:
    """pytest's closing line reads failed, passed, skipped...; its failures and short
    summary follow collection order. test_a.py's failure waits for test_b.py's, so
    on two workers they finish in the other order."""
    root = make_project(
        {
            "test_a.py": """
                import pathlib, time

                def test_a_fails_last():
                    marker = pathlib.Path(__file__).with_name("b_failed")
                    deadline = time.monotonic() + 60
                    while not marker.exists() and time.monotonic() < deadline:
                        time.sleep(0.01)
                    assert marker.exists() and False, "a"

                def test_a_passes():
                    pass
            """,
            "test_b.py": """
                import pathlib

                def test_b_fails_first():
                    pathlib.Path(__file__).with_name("b_failed").touch()
                    assert False, "b"
            """,
        }
    )
    result = run_aqe("run", "-w", "2", "--no-history", cwd=root, timeout=90)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert re.search(r"=+ 2 failed, 1 passed in [\d.]+s =+$", lines[-1]), lines[-1]
    failed = [line.split()[1] for line in lines if line.startswith("FAILED ")]
    assert failed == ["test_a.py::test_a_fails_last", "test_b.py::test_b_fails_first"], failed
    headers = [line.strip("_ ") for line in lines if re.fullmatch(r"_+ test_\w+ _+", line)]
    assert headers == ["test_a_fails_last", "test_b_fails_first"], result.stdout
    assert "slowest 10 durations" in result.stdout

    quiet = run_aqe("run", "-w", "2", "--no-history", "-q", cwd=root, timeout=90)
    assert quiet.returncode == 1, quiet.stdout + quiet.stderr
    assert "slowest" not in quiet.stdout, quiet.stdout  # as pytest -q: asked for, or not shown
    assert re.fullmatch(r"2 failed, 1 passed in [\d.]+s", quiet.stdout.splitlines()[-1])


def test_no_tests_exits_5(run_aqe: RunAqe, make_project: MakeProject) -> None:
    root = make_project({"helpers.py": "VALUE = 1\n"})
    result = run_aqe("run", "--no-history", cwd=root)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_keyword_selecting_nothing_exits_5(run_aqe: RunAqe, make_project: MakeProject) -> None:
    result = run_aqe(
        "run", "-w", "2", "-k", "no_such_test", "--no-history", cwd=make_project(PASSING)
    )
    assert result.returncode == 5, result.stdout + result.stderr
    assert "3 deselected" in result.stdout


# -- usage errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["-w", "0"], "--workers", id="workers-0"),
        pytest.param(["-w", "lots"], "--workers", id="workers-lots"),
        pytest.param(["tests/missing_dir"], "missing_dir", id="missing-path"),
        pytest.param(["--frobnicate"], "--frobnicate", id="unknown-flag"),
        pytest.param(["--maxfail", "0"], "--maxfail", id="maxfail-0"),
    ],
)
def test_usage_errors_from_flags(
    run_aqe: RunAqe, make_project: MakeProject, args: list[str], needle: str
) -> None:
    root = make_project(PASSING)
    assert_usage_error(run_aqe("run", *args, cwd=root), needle)
    assert not (root / ".aqe" / "history.db").exists()


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        pytest.param(["run", "--tb=short"], "--tb is a pytest option: put it after --, as in: "
                     "aqe run -- --tb=short", id="tb"),
        pytest.param(["run", "-w", "2", "-p", "no:cacheprovider"], "-p is a pytest option: put "
                     "it after --, as in: aqe run -- -p no:cacheprovider", id="p"),
        pytest.param(["run", "-n", "4"], "-n 4 is pytest-xdist's worker count; aqe runs the "
                     "tests on its own workers: use -w 4", id="n"),
        pytest.param(["run", "--numprocesses=auto"], "--numprocesses=auto is pytest-xdist's "
                     "worker count; aqe runs the tests on its own workers: use -w auto",
                     id="xdist-long"),
        pytest.param(["run", "--no-such-thing=x"], "No such option '--no-such-thing'. (pytest's "
                     "options go after --: aqe run -- --no-such-thing=x)", id="unknown-to-both"),
        pytest.param(["list", "-rA"], "-r is a pytest option: put it after --, as in: "
                     "aqe list -- -rA", id="list"),
        pytest.param(["list", "-n", "2"], "-n 2 is pytest-xdist's worker count; aqe list runs "
                     "no tests: drop it", id="list-n"),
    ],
)  # fmt: skip
def test_a_pytest_option_before_double_dash_gets_a_hint(
    run_aqe: RunAqe, make_project: MakeProject, argv: list[str], line: str
) -> None:
    assert assert_usage_error(run_aqe(*argv, cwd=make_project(PASSING))) == f"aqe: error: {line}"


def test_history_flag_error_names_the_flag_given(
    run_aqe: RunAqe, make_project: MakeProject
) -> None:
    """The option is spelt --history; the message must not name a --history-path flag."""
    line = assert_usage_error(run_aqe("run", "--history", " ", cwd=make_project(PASSING)))
    assert "--history " in line or "--history:" in line
    assert "--history-path" not in line


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        pytest.param("workers = 0", "workers", id="workers-0"),
        pytest.param("frobnicate = true", "frobnicate", id="unknown-key"),
    ],
)
def test_usage_errors_from_pyproject(
    run_aqe: RunAqe, make_project: MakeProject, table: str, needle: str
) -> None:
    root = make_project(PASSING, pyproject=f"[tool.aqe]\n{table}\n\n[tool.pytest.ini_options]\n")
    assert_usage_error(run_aqe("run", cwd=root), needle, str(root / "pyproject.toml"))


def test_usage_error_from_env(run_aqe: RunAqe, make_project: MakeProject) -> None:
    result = run_aqe("run", cwd=make_project(PASSING), env={"AQE_WORKERS": "0"})
    assert_usage_error(result, "AQE_WORKERS")


def test_an_unknown_aqe_variable_is_one_warning_not_a_stop(
    run_aqe: RunAqe, make_project: MakeProject
) -> None:
    """CI systems define their own AQE_* variables; pytest too only warns about ini keys
    it does not know (unless --strict-config)."""
    result = run_aqe("run", "-w", "2", cwd=make_project(PASSING), env={"AQE_SOMETHING": "x"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b3 passed in", result.stdout), result.stdout
    assert result.stderr.splitlines() == [
        "aqe: warning: ignoring environment variable AQE_SOMETHING: not an aqe setting"
    ]


# -- history -------------------------------------------------------------------------


def test_corrupt_history(run_aqe: RunAqe, make_project: MakeProject) -> None:
    root = make_project(PASSING)
    db = root / ".aqe" / "history.db"
    db.parent.mkdir()
    db.write_bytes(random.Random(1234).randbytes(8192))

    broken = run_aqe("run", "-w", "2", cwd=root)
    assert broken.returncode not in (0, 1), broken.stdout + broken.stderr
    assert "Traceback" not in broken.stdout + broken.stderr
    lines = broken.stderr.splitlines()
    assert len(lines) == 1, broken.stderr
    assert lines[0].startswith("aqe: error: ")
    assert str(db) in lines[0]

    listed = run_aqe("history", cwd=root)
    assert listed.returncode not in (0, 1)
    assert "Traceback" not in listed.stderr
    assert str(db) in listed.stderr

    fine = run_aqe("run", "-w", "2", "--no-history", cwd=root)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert db.read_bytes() == random.Random(1234).randbytes(8192)  # left alone


def test_a_project_where_aqe_cannot_make_its_directory_still_runs_without_history(
    run_aqe: RunAqe, make_project: MakeProject
) -> None:
    """A read-only checkout, or a file in the way: `.aqe` only holds courtesies (a live
    status, a bytecode cache) when there is no history, so the run goes on without them,
    and with history the error names the file and the way out."""
    root = make_project(PASSING)
    (root / ".aqe").write_text("not a directory\n", encoding="utf-8")
    env = {"PYTHONDONTWRITEBYTECODE": "1"}  # the bytecode cache would go in .aqe

    fine = run_aqe("run", "-w", "2", "--no-history", cwd=root, env=env)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "Traceback" not in fine.stdout + fine.stderr
    assert re.search(r"\b3 passed in", fine.stdout), fine.stdout

    refused = run_aqe("run", "-w", "2", cwd=root, env=env)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    lines = refused.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aqe: error: "), refused.stderr
    assert str(root / ".aqe" / "history.db") in lines[0] and "--no-history" in lines[0]
    assert (root / ".aqe").read_text(encoding="utf-8") == "not a directory\n"


def test_history_lists_runs_newest_first(run_aqe: RunAqe, make_project: MakeProject) -> None:
    root = make_project(FAILING)
    first = run_aqe("run", "-w", "2", cwd=root)
    assert first.returncode == 1, first.stdout + first.stderr
    second = run_aqe("run", "-w", "2", "-k", "not broken", cwd=root)
    assert second.returncode == 0, second.stdout + second.stderr

    lines = history_lines(run_aqe, root)
    assert len(lines) == 2, lines
    newest, oldest = lines
    assert "exit 0" in newest and "3 passed" in newest and "failed" not in newest
    assert "exit 1" in oldest and "3 passed, 1 failed" in oldest


def test_history_without_history(run_aqe: RunAqe, make_project: MakeProject) -> None:
    root = make_project(PASSING)
    result = run_aqe("history", cwd=root)
    assert result.returncode == 0
    assert "no history" in result.stdout.lower()
    assert not (root / ".aqe").exists()


def test_history_after_list_only_still_says_no_runs(
    run_aqe: RunAqe, make_project: MakeProject
) -> None:
    """`aqe list` records no run, so `aqe history` must still say there is none."""
    root = make_project(PASSING)
    assert run_aqe("list", cwd=root).returncode == 0
    result = run_aqe("history", cwd=root)
    assert result.returncode == 0
    assert result.stdout.strip(), "aqe history printed nothing at all"
    assert "no " in result.stdout.lower()


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize(
    "first_args",
    [pytest.param([], id="history"), pytest.param(["--no-history"], id="no-history-first")],
)
def test_history_records_clean_git_commit(
    run_aqe: RunAqe, make_project: MakeProject, first_args: list[str]
) -> None:
    root = make_project(PASSING)
    (root / ".gitignore").write_text("__pycache__/\n", encoding="utf-8")
    git(root, "init", "-q")
    git(root, "config", "user.email", "aqe@example.com")
    git(root, "config", "user.name", "aqe tests")
    git(root, "config", "commit.gpgsign", "false")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "init")
    head = git(root, "rev-parse", "HEAD").strip()

    # The bytecode cache under .aqe/ is only used with PYTHONDONTWRITEBYTECODE set.
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    report = root.parent / "report.json"
    for args in (first_args, ["--json", str(report)]):
        result = run_aqe("run", "-w", "2", *args, cwd=root, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert git(root, "status", "--porcelain", "--untracked-files=all") == ""

    lines = history_lines(run_aqe, root)
    match = HISTORY_LINE.match(lines[0])
    assert match, lines[0]
    assert match.group("commit") == head[:8], "history shows a dirty tree or no commit"
    run = json.loads(report.read_text(encoding="utf-8"))["run"]
    assert (run["git_commit"], run["git_dirty"]) == (head, False)


# -- list ----------------------------------------------------------------------------


def test_list_before_and_after_history(run_aqe: RunAqe, make_project: MakeProject) -> None:
    root = make_project(PASSING)
    ids = ["test_one.py::test_a", "test_one.py::test_b", "test_two.py::test_c"]

    before = run_aqe("list", cwd=root)
    assert before.returncode == 0, before.stderr
    rows = before.stdout.splitlines()
    assert [row.split()[-1] for row in rows] == ids
    assert all(re.fullmatch(r"\s*\?\s+\S+", row) for row in rows), rows

    assert run_aqe("run", "-w", "2", cwd=root).returncode == 0
    after = run_aqe("list", cwd=root)
    assert after.returncode == 0, after.stderr
    rows = after.stdout.splitlines()
    assert [row.split()[-1] for row in rows] == ids
    assert all(re.fullmatch(r"\s*\d+\.\d+s\s+\S+", row) for row in rows), rows
    assert "3 tests" in after.stderr


# -- reports -------------------------------------------------------------------------


def test_junit_and_json_reports(run_aqe: RunAqe, make_project: MakeProject) -> None:
    root = make_project(FAILING)
    result = run_aqe(
        "run", "-w", "2", "--no-history", "--junit-xml", "out/junit.xml",
        "--json", "out/report.json", cwd=root,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr

    suite = ET.parse(root / "out" / "junit.xml").getroot()
    if suite.tag == "testsuites":
        suite = suite.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "1", "0")
    cases = suite.findall("testcase")
    assert len(cases) == 4
    failed = [case for case in cases if case.find("failure") is not None]
    assert [case.get("name") for case in failed] == ["test_broken"]

    report = json.loads((root / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["summary"]["passed"] == 3
    assert report["summary"]["failed"] == 1
    assert report["run"]["exit_code"] == 1
    assert len(report["tests"]) == 4


# -- output --------------------------------------------------------------------------

CHATTY = """
    import time

    def test_chatty_{name}():
        for i in range(3):
            print("line-{name}-%d" % i, flush=True)
            time.sleep(0.05)
"""


def test_no_capture_output_is_grouped_per_test(run_aqe: RunAqe, make_project: MakeProject) -> None:
    root = make_project({f"test_{name}.py": CHATTY.format(name=name) for name in ("left", "right")})
    result = run_aqe("run", "-w", "2", "-s", "--no-history", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ("left", "right"):
        nodeid = f"test_{name}.py::test_chatty_{name}"
        headers = [i for i, line in enumerate(lines) if nodeid in line and "line-" not in line]
        assert headers, f"no header naming {nodeid}:\n{result.stdout}"
        start = headers[0] + 1
        assert lines[start : start + 3] == [f"line-{name}-{i}" for i in range(3)], result.stdout


# -- concurrency and pass-through ----------------------------------------------------


def test_two_runs_at_once_share_history(
    start_aqe: StartAqe, run_aqe: RunAqe, make_project: MakeProject
) -> None:
    root = make_project(PASSING)
    procs = [start_aqe("run", "-w", "2", cwd=root) for _ in range(2)]
    outputs = [proc.communicate(timeout=HANG_GUARD) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out + err
        assert "Traceback" not in out + err

    lines = history_lines(run_aqe, root)
    assert len(lines) == 2, lines
    for line in lines:
        assert "exit 0" in line and "3 passed" in line, line
        assert "unfinished" not in line


def test_args_after_double_dash_go_to_pytest(run_aqe: RunAqe, make_project: MakeProject) -> None:
    root = make_project(PASSING)
    result = run_aqe(
        "run", "--no-history", "-v", "--", "-p", "no:randomly", "-k", "test_c", cwd=root
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_two.py::test_c" in result.stdout
    assert "test_one.py::test_a" not in result.stdout
    assert re.search(r"\b1 passed, 2 deselected\b", result.stdout), result.stdout


@pytest.mark.parametrize("option", [["-n", "2"], ["-n2"], ["--numprocesses=auto"]])
def test_xdists_worker_count_after_double_dash_is_named_and_ignored(
    run_aqe: RunAqe, make_project: MakeProject, option: list[str]
) -> None:
    """A habit from pytest-xdist: aqe's own workers run the tests, and xdist must not
    start its own beside them (seconds of start-up for nothing)."""
    pytest.importorskip("xdist")
    root = make_project(PASSING)
    result = run_aqe("run", "-w", "2", "--no-history", "--", *option, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created:" not in result.stdout and "[gw0]" not in result.stdout, result.stdout
    assert re.search(r"\b3 passed in", result.stdout), result.stdout
    note = [line for line in result.stderr.splitlines() if "pytest-xdist" in line]
    assert len(note) == 1 and " ".join(option) in note[0] and "-w" in note[0], result.stderr


@pytest.mark.parametrize(
    ("args", "env", "ini"),
    [
        pytest.param(["-p", "no:xdist"], {}, "", id="args"),
        pytest.param(["-x", "-pno:xdist"], {}, "", id="args-joined"),
        pytest.param([], {"PYTEST_ADDOPTS": "-p no:xdist"}, "", id="PYTEST_ADDOPTS"),
        pytest.param([], {}, 'addopts = "-p no:xdist"\n', id="ini-addopts"),
        pytest.param([], {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, "", id="no-autoload"),
        pytest.param(["-p", "xdist", "-n", "2"], {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, "",
                     id="no-autoload-but-named"),
    ],
)  # fmt: skip
def test_xdist_left_out_or_named_explicitly_is_fine(
    run_aqe: RunAqe, make_project: MakeProject, args: list[str], env: dict[str, str], ini: str
) -> None:
    """aqe tells pytest-xdist not to distribute (``-n0``) only when pytest loads it:
    pytest refuses an option no loaded plugin knows (it was exit 4)."""
    pytest.importorskip("xdist")
    root = make_project(PASSING, pyproject=f"[tool.pytest.ini_options]\n{ini}")
    result = run_aqe("run", "-w", "2", "--no-history", "--", *args, cwd=root, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b3 passed in", result.stdout), result.stdout
    assert "created:" not in result.stdout and "[gw0]" not in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("files", "environ", "loads"),
    [
        pytest.param({"setup.cfg": "[tool:pytest]\naddopts = -p no:xdist\n"}, {}, False,
                     id="setup.cfg"),
        pytest.param({"tox.ini": "[pytest]\naddopts =\n  -x\n  -p no:xdist\n"}, {}, False,
                     id="tox.ini-continued"),
        pytest.param({"tox.ini": "[tox]\n", "../pytest.ini": "[pytest]\naddopts=-pno:xdist"},
                     {}, False, id="found-upwards"),
        pytest.param({"pytest.ini": "", "setup.cfg": "[tool:pytest]\naddopts=-pno:xdist\n"},
                     {}, True, id="pytest.ini-first"),
        pytest.param({"pyproject.toml": '[tool.pytest]\naddopts = ["-p", "no:xdist"]\n'}, {},
                     False, id="pyproject-native"),
        pytest.param({}, {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_PLUGINS": "xdist.plugin"},
                     True, id="PYTEST_PLUGINS"),
    ],
)  # fmt: skip
def test_xdist_loads_reads_the_config_file_pytest_picks(
    tmp_path: Path, files: dict[str, str], environ: dict[str, str], loads: bool
) -> None:
    pytest.importorskip("xdist")
    from aqe._adapters.pytest import xdist_loads

    root = tmp_path / "project"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    assert xdist_loads([], root, environ) is loads


def test_a_reader_that_goes_away_does_not_stop_the_run_or_print_tracebacks(
    start_aqe: StartAqe, make_project: MakeProject
) -> None:
    root = make_project(
        {f"test_{n}.py": "".join(f"def test_{i}(): pass\n" for i in range(30)) for n in "abcd"}
    )
    proc = start_aqe("run", "-w", "2", "-v", "--json", "out.json", cwd=root)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()  # like `aqe run | head -1`
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=HANG_GUARD) == 0
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    report = json.loads((root / "out.json").read_text())
    assert len(report["tests"]) == 120


def test_a_listing_piped_into_head_ends_quietly(
    start_aqe: StartAqe, make_project: MakeProject
) -> None:
    """`aqe list | head -1`: no BrokenPipeError traceback; aqe ends as `seq` or `ls` do,
    killed by SIGPIPE, which shells do not report. The listing outgrows the pipe's
    buffer, so aqe is still writing when the reader goes."""
    import signal

    many = """
        import pytest

        @pytest.mark.parametrize("number", range(3000))
        def test_with_a_name_long_enough_to_fill_the_pipe(number):
            pass
    """
    proc = start_aqe("list", cwd=make_project({"test_many.py": many}))
    assert proc.stdout is not None and proc.stderr is not None
    assert "test_many.py::" in proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == -signal.SIGPIPE, err
    assert err == "", err


@pytest.mark.e2e
def test_on_a_terminal_a_live_view_shows_counts_eta_and_what_each_worker_runs(
    make_project: MakeProject,
) -> None:
    import os
    import pty
    import sys

    slow = "import time\n" + "".join(f"def test_{i}():\n    time.sleep(0.05)\n" for i in range(12))
    root = make_project({"test_a.py": slow, "test_b.py": slow, "test_c.py": slow})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_", "CI"))}
    env.update(TERM="xterm", COLUMNS="120")
    for _ in range(2):  # the second run has history, so the view shows an ETA
        parent, child = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "aqe", "run", "-w", "2"],
            cwd=root,
            env=env,
            stdin=child,
            stdout=child,
            stderr=child,
        )
        os.close(child)
        chunks = []
        while True:
            try:
                data = os.read(parent, 65536)
            except OSError:  # EIO: the child side closed
                break
            if not data:
                break
            chunks.append(data)
        os.close(parent)
        assert proc.wait(timeout=HANG_GUARD) == 0
        screen = b"".join(chunks).decode("utf-8", "replace")
    assert re.search(r"aqe \d+/36 tests\s+\d+ passed\s+ETA \d+\.\ds", screen), screen
    assert re.search(r"w[01] test_[abc]\.py::test_\d+", screen), screen
    assert "36 passed" in screen
    assert "...." not in screen  # no progress letters under the live view


def test_list_json_gives_ids_locations_and_estimates(
    run_aqe: RunAqe, make_project: MakeProject
) -> None:
    root = make_project(FAILING)
    before = json.loads(run_aqe("list", "--json", cwd=root).stdout)["tests"]
    assert [t["nodeid"] for t in before] == [
        "test_one.py::test_a",
        "test_one.py::test_b",
        "test_two.py::test_c",
        "test_two.py::test_broken",
    ]
    assert before[3] == {
        "nodeid": "test_two.py::test_broken",
        "file": "test_two.py",
        "line": 5,
        "estimate": None,
    }
    run_aqe("run", cwd=root)
    after = json.loads(run_aqe("list", "--json", "-k", "broken", cwd=root).stdout)["tests"]
    assert len(after) == 1 and after[0]["estimate"] is not None and after[0]["estimate"] >= 0
    nothing = run_aqe("list", "--json", "-k", "nomatch", cwd=root)
    assert nothing.returncode == 5 and json.loads(nothing.stdout) == {"tests": []}


def test_status_file_holds_the_runs_final_snapshot(
    run_aqe: RunAqe, make_project: MakeProject, tmp_path: Path
) -> None:
    root = make_project(FAILING)
    status = tmp_path / "status.json"
    result = run_aqe(
        "run", "--no-history", "--status", str(status), "--run-id", "my-run_1", cwd=root
    )
    assert result.returncode == 1, result.stdout + result.stderr
    snapshot = json.loads(status.read_text())
    assert snapshot["run_id"] == "my-run_1" and snapshot["state"] == "finished"
    assert snapshot["done"] == snapshot["known"] == 4
    assert snapshot["outcomes"] == {"passed": 3, "failed": 1}
    assert snapshot["failures"] == [
        {
            "nodeid": "test_two.py::test_broken",
            "outcome": "failed",
            "message": "AssertionError: deliberate failure marker",
        }
    ]
    assert not list(tmp_path.glob("status.json.*"))  # no temporary file left
    assert_usage_error(run_aqe("run", "--run-id", "../x", cwd=root), "--run-id", "'../x'")


def test_list_with_a_broken_conftest_names_the_error(
    run_aqe: RunAqe, make_project: MakeProject
) -> None:
    root = make_project({"conftest.py": "import no_such_module_x\n", **PASSING})
    result = run_aqe("list", cwd=root)
    assert result.returncode == 4
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("aqe: error: ImportError while loading conftest")
    assert "No module named 'no_such_module_x'" in last
    assert "Traceback" not in result.stderr


def test_status_shows_a_live_run_and_then_the_last_one(
    run_aqe: RunAqe, start_aqe: StartAqe, make_project: MakeProject
) -> None:
    # The slow test runs until the status has shown it (or a guard against a hang).
    release = "released"
    slow = (
        "import time\nfrom pathlib import Path\n\ndef test_slow():\n"
        f"    deadline = time.monotonic() + {HANG_GUARD}\n"
        f"    while not Path({release!r}).exists() and time.monotonic() < deadline:\n"
        "        time.sleep(0.01)\n"
    )
    root = make_project({"test_slow.py": slow, **PASSING})
    idle = json.loads(run_aqe("status", "--json", cwd=root).stdout)
    assert idle["running"] == [] and idle["last_run"] is None
    process = start_aqe("run", "-w", "2", cwd=root)
    try:
        live: dict[str, object] = {}
        while not live and process.poll() is None:
            report = json.loads(run_aqe("status", "--json", cwd=root).stdout)
            workers = report["running"][0]["workers"] if report["running"] else []
            if any(w["test"] == "test_slow.py::test_slow" for w in workers):
                live = report["running"][0]
        assert live, "the run never showed its slow test"
        worker = next(w for w in live["workers"] if w["test"])  # type: ignore[attr-defined]
        assert worker["rss_mb"] > 1 and worker["pid"] != process.pid
    finally:
        (root / release).touch()
        process.communicate(timeout=HANG_GUARD)
    after = run_aqe("status", cwd=root).stdout
    assert "no run going on" in after
    assert "last run" in after and "4 passed" in after and "hot  4 tests" in after
    assert not list((root / ".aqe" / "status").iterdir())
