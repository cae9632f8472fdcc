"""History tools: ``test_history`` and ``flaky_tests``, read from the project's store.

Plain functions of the :class:`~._fleet.Fleet` and typed values, returning a
typed answer and a one-line summary; :func:`register` only publishes them.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Annotated, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from .._exceptions import AqeError
from .._reporting.digest import clean
from . import _schemas as s
from ._budget import page, start_of
from ._fleet import LINE, READ_ONLY, Fleet, history_store, iso
from ._tools_runs import Cursor

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from .._store import HistoryRow

Include = Literal["flaky", "flaky_and_broken", "all"]

#: How ``flaky_tests`` tells a flaky test from a broken one, for the agent.
METHOD = (
    "flaky only on evidence a code change cannot explain: passed and failed on the same code "
    "(clean commit or same file hashes), or passed on a retry; runs where most tests failed "
    "(outages) are left out"
)


def test_history(
    fleet: Fleet, node_id: str, cursor: str | None = None, limit: int = 20
) -> tuple[s.TestHistory, str]:
    offset = start_of(cursor, 10**9)
    rows: list[HistoryRow] = []
    runs_seen, counts = 0, dict[str, int]()
    with history_store(fleet.root) as store:
        if store is not None:
            rows, runs_seen, counts = store.test_history(node_id, limit + 1, offset)
    entries = [
        s.HistoryEntry(
            run_id=r.run_id,
            started=iso(r.start),
            git_commit=r.git_commit,
            outcome=r.outcome,
            attempt=r.attempt,
            duration_seconds=round(r.duration, 4),
            tier=r.tier,
            message=clean((r.message or "").split("\n", 1)[0], LINE) or None,
        ).model_dump(mode="json")
        for r in rows
    ]
    kept, _ = page(entries, 0, limit, fleet.budget, 300)
    more = len(kept) < len(entries)
    result = s.TestHistory(
        nodeid=clean(node_id, 1000),
        runs_seen=runs_seen,
        counts=counts,
        entries=[s.HistoryEntry(**e) for e in kept],
        truncated=more,
        next_cursor=str(offset + len(kept)) if more else None,
    )
    text = ", ".join(f"{n} {k}" for k, n in counts.items()) or "never run"
    return result, f"{clean(node_id, LINE)}: {runs_seen} runs, {text}"


test_history.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def flaky_tests(
    fleet: Fleet,
    window_runs: int = 50,
    include: Include = "flaky_and_broken",
    cursor: str | None = None,
    limit: int = 20,
) -> tuple[s.FlakyList, str]:
    from .._knowledge import _commands, _quarantine

    with history_store(fleet.root) as store:
        verdicts, runs = _commands.verdicts(store, window_runs) if store else ([], 0)
    try:
        listed = {entry.id for entry in _quarantine.load(fleet.root)}
    except AqeError as exc:
        raise ToolError(str(exc)) from None
    wanted = {
        "flaky": {"flaky"},
        "flaky_and_broken": {"flaky", "broken"},
        "all": {"flaky", "broken", "stable"},
    }[include]
    found = [
        s.FlakyEntry(
            nodeid=clean(v.nodeid, 1000),
            label=v.label,
            score=v.score,
            runs=v.runs,
            passed=v.passed,
            failed=v.failed,
            retried=v.retried,
            same_code_mixed=v.same_code_mixed,
            flip_rate=v.flip_rate,
            broken_since=v.broken_since,
            quarantined=v.nodeid in listed,
        ).model_dump(mode="json")
        for v in verdicts
        if v.label in wanted
    ]
    offset = start_of(cursor, len(found))
    kept, cursor_next = page(found, offset, limit, fleet.budget, 600)
    result = s.FlakyList(
        window_runs=runs,
        tests=[s.FlakyEntry(**e) for e in kept],
        method=METHOD,
        truncated=cursor_next is not None,
        next_cursor=cursor_next,
    )
    counts = Counter(e["label"] for e in found)
    text = ", ".join(f"{n} {k}" for k, n in counts.items()) or "none"
    return result, f"{text} in the last {runs} runs"


def register(server: MCPServer, fleet: Fleet) -> None:
    """Publish the history tools on ``server`` (under the plain functions' names)."""

    @server.tool(name="test_history", annotations=READ_ONLY)
    async def test_history_tool(
        ctx: Context,
        node_id: Annotated[str, Field(max_length=1000)],
        cursor: Cursor = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> Annotated[CallToolResult, s.TestHistory]:
        """Past attempts of one test from the project's history, newest first."""
        fleet.session(ctx)
        return fleet.answer(*test_history(fleet, node_id, cursor, limit))

    @server.tool(name="flaky_tests", annotations=READ_ONLY)
    async def flaky_tests_tool(
        ctx: Context,
        window_runs: Annotated[int, Field(ge=2, le=500)] = 50,
        include: Include = "flaky_and_broken",
        cursor: Cursor = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> Annotated[CallToolResult, s.FlakyList]:
        """Flaky and broken tests from the history, with evidence (same as aqe flaky)."""
        fleet.session(ctx)
        return fleet.answer(*flaky_tests(fleet, window_runs, include, cursor, limit))
