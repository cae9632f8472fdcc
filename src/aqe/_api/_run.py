"""``aqe.run``: run a suite from Python and get a typed result.

The run happens in an ``aqe run`` child process, never in the caller's. aqe's
engine runs ``pytest.main`` in the process that starts it and forks its workers
from there: in a notebook or another tool that would import the project's tests
into the caller, leave pytest's plugins and ``sys.modules`` changes behind, and
fork a process that may run threads. A child keeps all that away, as the MCP
server's runs do; its JSON report becomes the :class:`RunResult`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._exceptions import AqeError, UsageError
from ._types import RunResult

__all__ = ["run"]

#: Seconds a stopped run gets to write its reports before what is left is killed.
STOP_GRACE = 5.0

StrPath = str | os.PathLike[str]


def run(
    paths: Sequence[StrPath] = (),
    *,
    workers: int | None = None,
    pytest_args: Sequence[str] = (),
    cwd: StrPath | None = None,
    retries: int | None = None,
    timeout: float | None = None,
    aqe_args: Sequence[str] = (),
    json_report: StrPath | None = None,
    junit_xml: StrPath | None = None,
    env: Mapping[str, str] | None = None,
) -> RunResult:
    """Run tests as ``aqe run`` would, in a child process, and return the result.

    ``paths`` are files, directories or node ids (relative to ``cwd``, default the
    current directory); ``pytest_args`` go to pytest as after ``--`` on the command
    line; ``aqe_args`` are other ``aqe run`` options (``["-k", "slow", "--lf"]``).
    A failing test is a result, not an exception: an :class:`AqeError` is raised
    only when aqe could not run at all (a bad option, a broken config). A
    ``KeyboardInterrupt`` in the caller stops the child and its workers, as Ctrl-C
    stops ``aqe run``, then propagates.
    """
    where = Path(cwd) if cwd is not None else Path.cwd()
    if not where.is_dir():
        raise UsageError(f"cwd {str(where)!r} is not a directory")
    with tempfile.TemporaryDirectory(prefix="aqe-api-") as scratch:
        report = Path(json_report) if json_report is not None else Path(scratch) / "report.json"
        report = report if report.is_absolute() else where / report
        junit = None if junit_xml is None else Path(junit_xml)
        junit = junit if junit is None or junit.is_absolute() else where / junit
        status = Path(scratch) / "status.json"
        argv = [
            sys.executable, "-m", "aqe", "run", "--no-live", "-q",
            "--json", str(report), "--status", str(status),
        ]  # fmt: skip
        if workers is not None:
            argv += ["--workers", str(workers)]
        if retries is not None:
            argv += ["--retries", str(retries)]
        if timeout is not None:
            argv += ["--timeout", f"{timeout:g}"]
        if junit is not None:
            argv += ["--junit-xml", str(junit)]
        argv += [*aqe_args, *(os.fspath(p) for p in paths)]
        if pytest_args:
            argv += ["--", *pytest_args]
        report.unlink(missing_ok=True)  # a report left by an earlier run is not this one's
        code, output = _run_child(argv, where, status, Path(scratch) / "output.log", env)
        try:
            with open(report, encoding="utf-8") as stream:
                data: object = json.load(stream)
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            raise _failure(code, output)
        return RunResult.from_report(
            data,
            output=output,
            json_report=report if json_report is not None else None,
            junit_xml=junit,
        )


def _run_child(
    argv: list[str], cwd: Path, status: Path, log: Path, env: Mapping[str, str] | None
) -> tuple[int, str]:
    """Run ``argv`` in a session of its own; stop it and its workers if interrupted."""
    from .._procs import kill_run, stop_run

    with open(log, "wb") as stream:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C at the terminal reaches the caller only, which
            # stops the child below (reports written) rather than cutting it.
            start_new_session=True,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
        )
        try:
            code = process.wait()
        except BaseException:
            stop_run(process, status, STOP_GRACE)
            raise
        kill_run(process.pid, status)  # a worker the run left behind, if any
    return code, log.read_text(encoding="utf-8", errors="replace")


def _failure(code: int, output: str) -> AqeError:
    """The error for a child that wrote no report: its own last line says why."""
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("aqe: error:")]
    why = (errors or lines or ["no output"])[-1].removeprefix("aqe: error: ")
    error = UsageError(why) if code == 4 else AqeError(f"aqe run exited {code}: {why}")
    error.exit_code = code
    return error
