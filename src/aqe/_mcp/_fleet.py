"""What every MCP tool shares: the fixed root, its runs, sessions, limits, and the
helpers that turn a tool's typed answer into a bounded MCP result.

The tools themselves live by area (``_tools_runs``, ``_tools_failures``,
``_tools_history``, ``_tools_fleet``, ``_generate``) as plain functions of a
:class:`Fleet` and typed values, so a unit test calls them without a server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel

from .._config import load_config
from .._exceptions import AqeError
from .._reporting.digest import clean
from ._budget import size
from ._guard import Guard
from ._runs import CANCEL_GRACE, RunHandle, RunManager, RunReport
from ._sessions import Session, Sessions

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from .._store import Store as HistoryStore

log = logging.getLogger("aqe.mcp")

#: Longest a call waits for a run (hosts drop calls after about 60 s).
MAX_WAIT = 45.0
#: Seconds between two looks at a running run while a call waits on it.
POLL = 0.25
#: Longest a collection (``list_tests``, node id checks) may take.
COLLECT_TIMEOUT = 40.0
#: Characters kept of one untrusted one-line value (message, node id).
LINE = 300

#: Tools that only read (the project, its runs, its history).
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)

#: Reports a run's progress: done, known (None before collection ends), a message.
Progress = Callable[[int, "int | None", str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CollectedTest:
    """One test ``aqe list --json`` collected, with its median duration from history."""

    __test__ = False  # not a pytest test class

    nodeid: str
    file: str
    line: int | None
    estimate: float | None

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> CollectedTest:
        return cls(entry["nodeid"], entry["file"], entry.get("line"), entry.get("estimate"))


class Fleet:
    """What the tools share: the fixed root, its runs, sessions and limits."""

    def __init__(self, root: Path, budget: int, session_idle: float) -> None:
        self.root = root.resolve()
        self.guard = Guard(self.root)
        self.budget = budget
        self.runs = RunManager(self.root, self.root / ".aqe" / "mcp" / "runs")
        self.sessions = Sessions(session_idle, self.runs.forget_session)
        self._ids: frozenset[str] = frozenset()
        self._ids_at = 0.0

    def session(self, ctx: Context) -> Session:
        # stdio serves one client per process; a transport that names its
        # sessions (streamable HTTP) keeps them apart.
        key = getattr(ctx.request_context, "session_id", None) or "default"
        return self.sessions.get(str(key))

    # -- collection --------------------------------------------------------------------

    async def collect(self, args: list[str]) -> tuple[list[CollectedTest], str]:
        """``aqe list --json`` in a child: the server never imports the project."""
        command = [sys.executable, "-m", "aqe", "list", "--json", *args]
        try:
            with anyio.fail_after(COLLECT_TIMEOUT):
                done = await anyio.run_process(
                    command, cwd=self.root, check=False, stdin=subprocess.DEVNULL
                )
        except TimeoutError:
            raise ToolError(f"collecting took longer than {COLLECT_TIMEOUT:g} s") from None
        errors = done.stderr.decode("utf-8", "replace")
        if done.returncode not in (0, 5):
            last = [line for line in errors.splitlines() if line.strip()][-1:] or ["no message"]
            raise ToolError(f"collection failed (exit {done.returncode}): {clean(last[0], LINE)}")
        try:
            tests = [CollectedTest.from_json(t) for t in json.loads(done.stdout)["tests"]]
        except (ValueError, KeyError, TypeError):
            raise ToolError("collection printed no test list (see the server's log)") from None
        errors = "\n".join(
            line for line in errors.splitlines() if not re.match(r"\d+ tests?, ", line)
        )
        return tests, errors

    async def check_ids(self, nodeids: tuple[str, ...]) -> None:
        """Node ids must be ones pytest collects; refresh the cache once on a miss."""
        for nodeid in nodeids:
            self.guard.nodeid_file(nodeid)
        missing = [n for n in nodeids if n not in self._ids]
        if missing and time.monotonic() - self._ids_at > 1.0:
            tests, _ = await self.collect([])
            self._ids = frozenset(t.nodeid for t in tests)
            self._ids_at = time.monotonic()
            missing = [n for n in nodeids if n not in self._ids]
        if missing:
            raise ToolError(
                f"node id {clean(missing[0], LINE)!r} is not a collected test "
                "(list_tests shows the ids)"
            )

    # -- waiting -----------------------------------------------------------------------

    async def wait(self, handle: RunHandle, seconds: float, progress: Progress | None) -> None:
        """Wait up to ``seconds`` for ``handle`` to end, reporting progress as it grows."""
        deadline = time.monotonic() + seconds
        reported = -1
        while not handle.finished:
            status = handle.status()
            done = status.done if status is not None else 0
            if done > reported and progress is not None:
                reported = done
                known = (status.known or None) if status is not None else None
                failing = sum(
                    n
                    for k, n in (status.outcomes.items() if status is not None else ())
                    if k in ("failed", "error", "crashed", "timeout")
                )
                await progress(done, known, f"{done}/{known or '?'} tests done, {failing} failing")
            if time.monotonic() >= deadline:
                return
            await anyio.sleep(POLL)

    async def stopped(self, handle: RunHandle) -> None:
        """Wait until a cancelled run and every process of its group are gone."""
        deadline = time.monotonic() + CANCEL_GRACE + 3.0
        while not handle.finished and time.monotonic() < deadline:
            await anyio.sleep(0.05)

    # -- answers -----------------------------------------------------------------------

    def answer(self, model: BaseModel, summary: str) -> CallToolResult:
        data = model.model_dump(mode="json")
        used = size(data) + len(summary.encode())
        if used > self.budget:  # every maker trims first: this is a bug if it shows
            log.warning("answer of %d bytes passes the %d-byte budget", used, self.budget)
        return CallToolResult(
            content=[TextContent(type="text", text=summary)], structured_content=data
        )

    def last_run(self, session: Session, run_id: str | None) -> RunHandle:
        if run_id is None:
            run_id = session.last_run
            if run_id is None:
                raise ToolError("no run yet in this session: pass run_id or call run_tests")
        return self.runs.get(run_id)


def finished_report(handle: RunHandle) -> RunReport:
    """A finished run's JSON report (the JSON boundary: ``docs/json-report.md``)."""
    if not handle.finished:
        raise ToolError(
            f"run {handle.run_id} is {handle.state}; wait with get_run(wait_seconds=...) first"
        )
    report = handle.report()
    if report is None:
        raise ToolError(f"run {handle.run_id} left no report (exit code {handle.exit_code})")
    return report


@contextlib.contextmanager
def history_store(root: Path) -> Iterator[HistoryStore | None]:
    """The project's history store if it exists (never created just to be read)."""
    from .._runner import open_existing_store

    try:
        config = load_config(root, {})
        store = open_existing_store(config, root)
    except AqeError as exc:
        raise ToolError(str(exc)) from None
    try:
        yield store
    finally:
        if store is not None:
            store.close()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds")
