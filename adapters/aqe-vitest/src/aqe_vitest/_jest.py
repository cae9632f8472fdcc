"""Running Jest itself, as ``_vitest`` runs Vitest: one process group per batch.

Jest's JSON report is the format Vitest's copies, so ``_report`` reads both; Jest
says ``pending`` for a skipped test. Jest cannot list a file's tests without
running them (``can_list`` is False): see ``FirstAttempts.rescue``.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from aqe.plugins import UsageError

from ._report import Case, parse_run, relative
from ._vitest import Batch, NodeTool, _cause

CONFIGS = tuple(f"jest.config.{ext}" for ext in ("js", "ts", "mjs", "cjs", "json"))


class Jest(NodeTool):
    """The project's Jest."""

    PACKAGE = "jest"
    ENTRY = "bin/jest.js"
    LABEL = "Jest"
    can_list = False
    SERVER = "jest-server.cjs"

    def server_command(self, test_timeout: float | None, extra: Sequence[str]) -> list[str]:
        options: dict[str, object] = {}
        if test_timeout is not None:
            options["testTimeout"] = max(1, round(test_timeout * 1000))
        script = Path(__file__).with_name(self.SERVER)
        return [self.node, str(script), str(self.root), json.dumps(options), *extra]

    def own_statuses(self, cases: list[Case]) -> list[Case]:
        """Jest's ``pending`` is a skipped test (Vitest's is one without a result)."""
        return [
            dataclasses.replace(case, status="skipped") if case.status == "pending" else case
            for case in cases
        ]

    def list_files(self, filters: Sequence[str]) -> list[str]:
        """``jest --listTests --json``: the test files (paths are Jest's regexes)."""
        with tempfile.TemporaryDirectory(prefix="aqe-jest-") as scratch:
            _, output, printed, _ = self._run(
                ["--listTests", "--json", *filters], Path(scratch), None
            )
            for line in reversed(printed.splitlines()):
                if line.startswith("["):
                    return [relative(self.root, str(file)) for file in json.loads(line)]
            raise UsageError(f"jest could not list the tests in {self.root}: {_cause(output)}")

    def run(
        self,
        files: Sequence[str],
        pattern: str | None,
        test_timeout: float | None,
        deadline: float | None,
        extra: Sequence[str] = (),
    ) -> Batch:
        """``jest --json --runTestsByPath FILES``."""
        with tempfile.TemporaryDirectory(prefix="aqe-jest-") as scratch:
            report = Path(scratch) / "report.json"
            args = [
                "--ci", "--json", f"--outputFile={report}", "--testLocationInResults",
                "--passWithNoTests", *extra,
            ]  # fmt: skip
            if not _names_workers(extra):
                args.append("--runInBand")  # aqe's workers are the parallelism
            if pattern is not None:
                args += ["-t", pattern]
            if test_timeout is not None:
                args.append(f"--testTimeout={max(1, round(test_timeout * 1000))}")
            start = time.time()
            _, output, _, killed = self._run(
                [*args, "--runTestsByPath", *files], Path(scratch), deadline
            )
            stop = time.time()
            if not report.is_file():
                return Batch([], [], {}, start, stop, killed, no_report=True, output=output)
            cases, errors = parse_run(self.root, report.read_text(encoding="utf-8"))
            cases = self.own_statuses(cases)
            return Batch(
                cases, errors, {}, start, stop, killed, output=output,
                by_id={case.nodeid: case for case in cases},
            )  # fmt: skip


def _names_workers(args: Sequence[str]) -> bool:
    """Whether the user's arguments set Jest's own parallelism."""
    return any(
        arg in ("-i", "--runInBand", "-w") or arg.startswith(("--maxWorkers", "--runInBand="))
        for arg in args
    )
