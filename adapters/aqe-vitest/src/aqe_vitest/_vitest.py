"""Running Vitest (and Jest) itself: the project's own install.

Batches run on a worker's long-lived server (``_server``, ``vitest-server.mjs``);
a test run alone (a retry, or one whose batch died) gets a fresh server of its own.
Each is in its own process group, so a hung or crashed Node process is killed whole
(Vitest's forks with it). ``Vitest.run`` (one whole ``vitest run``) mirrors
``Jest.run``; a Vitest run itself goes through servers only. Results come from the
server's report (the shape of Vitest's JSON reporter, with each test's console lines),
written to a file, never from the screen.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from aqe.plugins import CollectedTest, UsageError

from ._report import (
    Case,
    FileError,
    console_entries,
    console_lines,
    overheads,
    parse_files,
    parse_list,
    parse_run,
    relative,
)
from ._server import Server, ServerDied

CONSOLE_REPORTER = Path(__file__).with_name("console-reporter.mjs")
WATCHDOG = Path(__file__).with_name("_watchdog.py")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Seconds a server may take to start (Node.js, Vite and the config), at least.
STARTUP_ALLOWANCE = float(os.environ.get("VITEST_AQE_STARTUP", "20")) * 3
CONFIGS = tuple(
    f"{stem}.config.{ext}"
    for stem in ("vitest", "vite")
    for ext in ("ts", "mts", "cts", "js", "mjs", "cjs")
)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one ``vitest run`` reported, and how its process ended."""

    cases: list[Case]
    errors: list[FileError]
    console: dict[str, tuple[str, str]]
    start: float
    stop: float
    #: The process outlived its deadline and was killed.
    killed: bool = False
    #: The process ended without writing its report (it crashed).
    no_report: bool = False
    output: str = ""
    by_id: dict[str, Case] = field(default_factory=dict)
    #: Each file's seconds outside its tests (a server's report only).
    overheads: dict[str, float] = field(default_factory=dict)


class Watchdog:
    """aqe's side of ``_watchdog``: one watchdog process per aqe process, started with
    the first Node.js process group and told of each group's start and end."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.owner = 0

    def watch(self, group: int) -> None:
        self._tell(f"+{group}\n")

    def release(self, group: int) -> None:
        self._tell(f"-{group}\n")

    def _tell(self, line: str) -> None:
        with self.lock:
            if self.process is None or self.owner != os.getpid():
                self.owner = os.getpid()  # a forked copy of aqe starts its own
                self.process = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(WATCHDOG)], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )  # fmt: skip
            assert self.process.stdin is not None
            with contextlib.suppress(OSError):  # the watchdog gone: nothing to tell
                self.process.stdin.write(line.encode())
                self.process.stdin.flush()


#: Every Node.js process group this aqe process starts is known to it.
WATCHDOG_PIPE = Watchdog()


class NodeTool:
    """A test framework installed in the project's ``node_modules``, run with Node.js."""

    #: The npm package, its command-line entry inside it, and its name in messages.
    PACKAGE = "vitest"
    ENTRY = "vitest.mjs"
    LABEL = "Vitest"
    #: Whether it can list a file's tests without running them.
    can_list = True

    def __init__(self, root: Path) -> None:
        self.root = root
        node = shutil.which("node")
        if node is None:
            raise UsageError(
                f"Node.js is not on PATH: install Node.js 20 or newer to run {self.LABEL}"
            )
        self.node = node
        #: Processes running now, to kill when the run is interrupted.
        self.running: set[subprocess.Popen[bytes]] = set()
        self.entry = root / "node_modules" / self.PACKAGE / self.ENTRY
        if not self.entry.is_file():
            raise UsageError(
                f"{self.PACKAGE} is not installed in {root} (no node_modules/{self.PACKAGE}): "
                "run 'npm ci' there"
            )

    def command(self, *args: str) -> list[str]:
        return [self.node, str(self.entry), *args]

    def _run(
        self, args: list[str], scratch: Path, deadline: float | None, console: Path | None = None
    ) -> tuple[int, str, str, bool]:
        """Run it in its own process group, killed whole at ``deadline`` seconds: the
        exit code, all its output, its stdout alone, and whether it was killed."""
        env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", "CI": "true"}
        if console is not None:
            env["AQE_VITEST_CONSOLE"] = str(console)
        out, err = scratch / "stdout.txt", scratch / "stderr.txt"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                self.command(*args), cwd=self.root, stdin=subprocess.DEVNULL, stdout=stdout,
                stderr=stderr, env=env, start_new_session=True,
            )  # fmt: skip
            self.running.add(process)
            WATCHDOG_PIPE.watch(process.pid)
            killed = False
            try:
                code = process.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                killed = True
                code = _kill(process)
            except BaseException:
                _kill(process)
                raise
            finally:
                self.running.discard(process)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)  # the framework's own children
                WATCHDOG_PIPE.release(process.pid)
        printed = out.read_text(encoding="utf-8", errors="replace")
        output = printed + err.read_text(encoding="utf-8", errors="replace")
        return code, _ANSI.sub("", output), printed, killed

    def kill_all(self) -> None:
        """End every running Vitest process group (an interrupted run)."""
        for process in list(self.running):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    #: The long-lived server's script beside this module (None: batches run as
    #: fresh processes).
    SERVER: str | None = None

    def server_command(self, test_timeout: float | None, extra: Sequence[str]) -> list[str]:
        raise NotImplementedError

    def serve(self, test_timeout: float | None, extra: Sequence[str], scratch: Path) -> Server:
        """A long-lived server for one worker, ready for its first batch."""
        env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0", "CI": "true"}
        server = Server(
            self.server_command(test_timeout, extra), self.root, scratch, env, self.LABEL
        )
        self.running.add(server.process)
        try:
            server.ready(STARTUP_ALLOWANCE)
        except BaseException:
            self.running.discard(server.process)
            server.close()
            raise
        return server

    def own_statuses(self, cases: list[Case]) -> list[Case]:
        """The framework's statuses as Vitest's (``_report`` reads Vitest's)."""
        return cases

    def retire(self, server: Server) -> None:
        self.running.discard(server.process)
        server.close()

    def run_on(
        self, server: Server, files: Sequence[str], pattern: str | None, deadline: float | None
    ) -> Batch:
        """One batch on a server; a server that dies or outlives ``deadline`` is
        killed (the batch then has no report, as a killed ``vitest run``)."""
        with tempfile.TemporaryDirectory(prefix="aqe-vitest-") as scratch:
            report = Path(scratch) / "report.json"
            offset = len(server.output())
            request = {
                "op": "run", "files": [str(self.root / file) for file in files],
                "pattern": pattern, "report": str(report),
            }  # fmt: skip
            start = time.time()
            try:
                server.ask(request, deadline)
            except ServerDied as died:
                self.running.discard(server.process)
                output = _ANSI.sub("", died.output[offset:])
                return Batch([], [], {}, start, time.time(), died.killed, True, output)
            stop = time.time()
            data = json.loads(report.read_text(encoding="utf-8"))
        text = json.dumps(data)
        cases, errors = parse_run(self.root, text)
        cases = self.own_statuses(cases)
        output = _ANSI.sub("", server.output()[offset:])
        if data.get("failure"):
            output += str(data["failure"])
        return Batch(
            cases, errors, console_entries(self.root, data.get("console") or []), start, stop,
            output=output, by_id={case.nodeid: case for case in cases},
            no_report=bool(data.get("failure")) and not cases,
            overheads=overheads(self.root, text),
        )  # fmt: skip


class Vitest(NodeTool):
    """The project's Vitest."""

    SERVER = "vitest-server.mjs"

    def server_command(self, test_timeout: float | None, extra: Sequence[str]) -> list[str]:
        options: dict[str, object] = {}
        if test_timeout is not None:
            options["testTimeout"] = max(1, round(test_timeout * 1000))
        entry = self.entry.parent / "dist" / "node.js"
        script = Path(__file__).with_name(self.SERVER or "")
        return [self.node, str(script), str(entry), json.dumps(options), *extra]

    def server_files(self, server: Server, filters: Sequence[str]) -> list[str]:
        """The test files matching Vitest's ``filters``, as ``vitest list --filesOnly``."""
        try:
            answer = server.ask({"op": "files", "filters": list(filters)}, None)
        except ServerDied as died:
            self.running.discard(server.process)
            raise UsageError(
                f"vitest could not list the tests in {self.root}: {_cause(died.output)}"
            ) from None
        return [relative(self.root, str(file)) for file in cast(list[str], answer["files"])]

    def list_tests(self, filters: Sequence[str]) -> list[CollectedTest]:
        """``vitest list``: the tests Vitest would run (it leaves skipped ones out).
        It imports every test file: a run lists only when it must."""
        return parse_list(self.root, self._list("--includeTaskLocation", *filters))

    def list_files(self, filters: Sequence[str]) -> list[str]:
        """``vitest list --filesOnly``: the test files, without importing them."""
        return parse_files(self.root, self._list("--filesOnly", *filters))

    def _list(self, *args: str) -> str:
        with tempfile.TemporaryDirectory(prefix="aqe-vitest-") as scratch:
            target = Path(scratch) / "list.json"
            _, output, _, _ = self._run(["list", f"--json={target}", *args], Path(scratch), None)
            if not target.is_file():
                cause = _cause(output)
                raise UsageError(f"vitest could not list the tests in {self.root}: {cause}")
            return target.read_text(encoding="utf-8")

    def run(
        self,
        files: Sequence[str],
        pattern: str | None,
        test_timeout: float | None,
        deadline: float | None,
        extra: Sequence[str] = (),
    ) -> Batch:
        """``vitest run FILES`` with the JSON and console reporters."""
        with tempfile.TemporaryDirectory(prefix="aqe-vitest-") as scratch:
            report = Path(scratch) / "report.json"
            console = Path(scratch) / "console.jsonl"
            args = [
                "run", *files, "--reporter=json", f"--outputFile={report}",
                f"--reporter={CONSOLE_REPORTER}", "--includeTaskLocation",
                "--passWithNoTests", *extra,
            ]  # fmt: skip
            if not any(arg.startswith(("--maxWorkers", "--fileParallelism")) for arg in extra):
                args.append("--maxWorkers=1")  # aqe's workers are the parallelism
            if pattern is not None:
                args += ["-t", pattern]
            if test_timeout is not None:
                args.append(f"--testTimeout={max(1, round(test_timeout * 1000))}")
            start = time.time()
            _, output, _, killed = self._run(args, Path(scratch), deadline, console)
            stop = time.time()
            if not report.is_file():
                return Batch([], [], {}, start, stop, killed, no_report=True, output=output)
            cases, errors = parse_run(self.root, report.read_text(encoding="utf-8"))
            lines = console.read_text(encoding="utf-8") if console.is_file() else ""
            return Batch(
                cases, errors, console_lines(self.root, lines), start, stop, killed,
                output=output, by_id={case.nodeid: case for case in cases},
            )  # fmt: skip


def _kill(process: subprocess.Popen[bytes]) -> int:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait()


def _cause(output: str) -> str:
    """The line of Vitest's output that says what went wrong."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for position, line in enumerate(lines):
        if "Error" in line and not line.startswith("⎯") and "Startup Error" not in line:
            if line.endswith(":") and position + 1 < len(lines):  # Jest's "● Validation Error:"
                return f"{line.lstrip('● ')} {lines[position + 1]}"
            return line
    return lines[-1] if lines else "it exited without a word"
