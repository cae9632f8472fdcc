"""Run a project under plain pytest and under ``aqe run``; return each test's outcome.

Not a test module (pytest does not collect ``parity.py``); ``test_parity.py`` imports it.

This file also holds the pytest plugin that records plain pytest's outcomes
(``OutcomeRecorder``): ``run_pytest`` copies the file into a temporary directory and
loads a stub with ``-p`` that registers it. It reduces the setup / call / teardown
reports of each test to ONE outcome with the same rule as aqe:

* ``error``    setup or teardown failed (also when the call passed or failed),
* ``skipped``  skipped at setup or call, ``xfailed`` when the skip is an xfail,
* otherwise the call's outcome: ``failed``, ``passed``, or ``xpassed``.

An xfail-marked test whose setup raises is ``xfailed``, as pytest reports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AqeRun",
    "OutcomeRecorder",
    "PytestRun",
    "aqe_outcomes",
    "outcome_of",
    "pytest_outcomes",
    "run_aqe",
    "run_pytest",
    "split_args",
]

#: Seconds any one subprocess may take: only a guard against a hang (the fixture
#: projects run in about one on an idle machine, in tens on a busy shared one).
TIMEOUT = 120

_OUT_ENV = "AQE_PARITY_OUTCOMES_FILE"
_PLUGIN_NAME = "_aqe_parity_plugin"
_COPY_NAME = "_aqe_parity"

#: Variables of the calling pytest that must not leak into the child runs.
_DROP_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER")

#: Pytest options that take their value as the next argument (for ``split_args``).
_OPTIONS_WITH_VALUE = frozenset(
    {
        "-k",
        "-m",
        "-p",
        "-o",
        "-c",
        "-W",
        "--deselect",
        "--ignore",
        "--ignore-glob",
        "--rootdir",
        "--confcutdir",
        "--basetemp",
        "--maxfail",
        "--tb",
        "--import-mode",
        "--override-ini",
        "--pythonwarnings",
        "--log-level",
        "--junitxml",
        "--durations",
        "--capture",
    }
)


# ------------------------------------------------------------------ the plugin


def outcome_of(reports: dict[str, Any]) -> str:
    """One outcome from a test's reports by phase (``report.when`` -> report)."""
    setup, call, teardown = reports.get("setup"), reports.get("call"), reports.get("teardown")
    if any(report is not None and report.failed for report in (setup, teardown)):
        return "error"
    for report in (setup, call):
        if report is not None and report.skipped:
            return "xfailed" if hasattr(report, "wasxfail") else "skipped"
    if call is None:
        # Set up but never called: the session was interrupted (e.g. -x).
        return "error"
    if call.failed:
        return "failed"
    return "xpassed" if hasattr(call, "wasxfail") else "passed"


class OutcomeRecorder:
    """Pytest plugin: writes ``{"tests": {nodeid: outcome}, "collection_errors": [...]}``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.reports: dict[str, dict[str, Any]] = {}
        self.collection_errors: list[str] = []
        #: Modules skipped as a whole (``pytest.importorskip`` at import): pytest counts
        #: them as skipped, and aqe records them as a result under the module's id.
        self.collection_skips: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.reports.setdefault(report.nodeid, {})[report.when] = report

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.collection_errors.append(report.nodeid)
        elif report.skipped:
            self.collection_skips.append(report.nodeid)

    def pytest_sessionfinish(self) -> None:
        tests = {nodeid: outcome_of(reports) for nodeid, reports in self.reports.items()}
        tests.update((nodeid, "skipped") for nodeid in self.collection_skips if nodeid not in tests)
        data = {
            "tests": tests,
            "collection_errors": self.collection_errors,
        }
        Path(self.path).write_text(json.dumps(data, indent=1), encoding="utf-8")


# The module given to ``-p``: this file's functions named ``pytest_*`` would be taken
# for (unknown) hooks, so the plugin module is a stub that registers the recorder.
_PLUGIN_STUB = f"""\
import os

from {_COPY_NAME} import OutcomeRecorder


def pytest_configure(config):
    config.pluginmanager.register(OutcomeRecorder(os.environ["{_OUT_ENV}"]), "aqe-parity")
"""


# ------------------------------------------------------------------ the runners


@dataclass(frozen=True)
class PytestRun:
    exit_code: int
    outcomes: dict[str, str]
    #: Node ids (files) whose collection failed.
    collection_errors: list[str]
    output: str


@dataclass(frozen=True)
class AqeRun:
    exit_code: int
    #: Outcome of each test's last attempt; empty when aqe wrote no report.
    outcomes: dict[str, str]
    #: The ``--json`` report, or None when aqe did not write one.
    report: dict[str, Any] | None
    output: str
    command: list[str] = field(default_factory=list)

    def require_report(self) -> dict[str, Any]:
        if self.report is None:
            raise AssertionError(
                f"aqe wrote no JSON report (exit code {self.exit_code}):\n{self.describe()}"
            )
        return self.report

    def describe(self) -> str:
        return f"$ {' '.join(self.command)}\n{self.output[-4000:]}"


def _env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _DROP_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep the fixture projects clean
    env["PY_COLORS"] = "0"
    env["NO_COLOR"] = "1"
    return env


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``command``; return (exit code, stdout + stderr).

    The child gets its own process group; on timeout the whole group is killed (a
    hung run must not leave workers behind) and the exit code is -9.
    """
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stderr += f"\n[parity] TIMED OUT after {TIMEOUT} s; process group {proc.pid} killed\n"
        return -signal.SIGKILL, stdout + stderr
    return proc.returncode, stdout + stderr


def run_pytest(project: Path, args: list[str] | tuple[str, ...] = ()) -> PytestRun:
    """Run plain ``python -m pytest ARGS`` in ``project`` and record every test's outcome."""
    with tempfile.TemporaryDirectory(prefix="aqe-parity-") as tmp:
        tmpdir = Path(tmp)
        shutil.copyfile(__file__, tmpdir / f"{_COPY_NAME}.py")
        (tmpdir / f"{_PLUGIN_NAME}.py").write_text(_PLUGIN_STUB, encoding="utf-8")
        out = tmpdir / "outcomes.json"
        env = _env()
        env[_OUT_ENV] = str(out)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tmp, env.get("PYTHONPATH")]))
        # Like the ``pytest`` script (and aqe): do not put the cwd on sys.path.
        env["PYTHONSAFEPATH"] = "1"
        command = [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", _PLUGIN_NAME, *args
        ]  # fmt: skip
        exit_code, output = _run(command, project, env)
        if not out.exists():
            raise AssertionError(f"the parity plugin wrote nothing:\n$ {command}\n{output}")
        data = json.loads(out.read_text(encoding="utf-8"))
    return PytestRun(exit_code, data["tests"], data["collection_errors"], output)


def split_args(args: list[str] | tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Split pytest arguments into (paths and node ids, options) for ``aqe run``."""
    paths: list[str] = []
    options: list[str] = []
    pending_value = False
    for arg in args:
        if pending_value:
            options.append(arg)
            pending_value = False
        elif arg.startswith("-"):
            options.append(arg)
            pending_value = arg in _OPTIONS_WITH_VALUE
        else:
            paths.append(arg)
    return paths, options


def _aqe_command() -> list[str]:
    script = Path(sys.executable).with_name("aqe")
    if script.exists():
        return [str(script)]
    found = shutil.which("aqe")
    if found:
        return [found]
    return [sys.executable, "-m", "aqe"]


def run_aqe(project: Path, args: list[str] | tuple[str, ...] = (), workers: int = 2) -> AqeRun:
    """Run ``aqe run PATHS -w N --no-history --json F -- OPTIONS`` in ``project``."""
    paths, options = split_args(args)
    with tempfile.TemporaryDirectory(prefix="aqe-parity-") as tmp:
        out = Path(tmp) / "report.json"
        command = [
            *_aqe_command(), "run", *paths, "-w", str(workers), "--no-history", "--json", str(out)
        ]  # fmt: skip
        if options:
            command += ["--", *options]
        exit_code, output = _run(command, project, _env())
        report = json.loads(out.read_text(encoding="utf-8")) if out.exists() else None
    outcomes: dict[str, str] = {}
    if report is not None:
        last_attempt: dict[str, int] = {}
        for test in report.get("tests", []):
            nodeid, attempt = test["nodeid"], int(test.get("attempt", 1))
            if attempt >= last_attempt.get(nodeid, 0):
                last_attempt[nodeid] = attempt
                outcomes[nodeid] = test["outcome"]
    return AqeRun(exit_code, outcomes, report, output, command)


def pytest_outcomes(project: Path, args: list[str]) -> dict[str, str]:
    """Node id -> outcome of every test plain pytest ran in ``project`` with ``args``."""
    return run_pytest(project, args).outcomes


def aqe_outcomes(project: Path, args: list[str], workers: int = 2) -> dict[str, str]:
    """Node id -> outcome (of the last attempt) of every test ``aqe run`` reported."""
    run = run_aqe(project, args, workers)
    run.require_report()
    return run.outcomes
