"""Failure tools: ``list_failures``, ``get_failure``, ``similar_failures``.

Plain functions of the :class:`~._fleet.Fleet` and a finished run, returning a
typed answer and a one-line summary; :func:`register` only publishes them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import Field

from .._exceptions import AqeError
from .._reporting.digest import classify, clean, digest
from . import _schemas as s
from ._budget import page, size, start_of
from ._fleet import LINE, READ_ONLY, Fleet, finished_report, history_store
from ._runs import Entry, RunHandle
from ._tools_runs import Cursor, RunId

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from .._knowledge._reports import Cause


def list_failures(
    fleet: Fleet, handle: RunHandle, cursor: str | None = None, limit: int = 20
) -> tuple[s.FailureList, str]:
    report = finished_report(handle)
    attempts = Counter(t["nodeid"] for t in report.tests)
    failures = list(report.failures())
    groups = causes(fleet.root, handle.run_id, failures)
    cause_of = {nodeid: g for g in groups for nodeid in g.tests}
    items = [
        s.FailureItem(
            nodeid=clean(f["nodeid"], 1000),
            outcome=f["outcome"],
            failure_class=classify(f),
            error_type=f.get("error_type"),
            message=clean((f.get("message") or "").split("\n", 1)[0], LINE),
            location=f"{f['file']}:{f['line']}" if f.get("line") else f.get("file"),
            attempts=max(1, attempts[f["nodeid"]]),
            quarantined=bool(f.get("quarantined")),
            cause_key=cause_of[f["nodeid"]].key,
        ).model_dump(mode="json")
        for f in failures
    ]
    top = [
        s.Cause(
            key=g.key,
            cause=clean(g.cause, 200),
            count=g.count,
            example=clean(g.tests[0], LINE),
            also=[clean(c, 200) for c in g.also][:5],
        )
        for g in groups[:10]
    ]
    offset = start_of(cursor, len(items))
    spent = size([c.model_dump() for c in top]) + 200
    kept, cursor_next = page(items, offset, limit, fleet.budget, spent)
    result = s.FailureList(
        run_id=handle.run_id,
        total=len(items),
        causes=top,
        failures=[s.FailureItem(**i) for i in kept],
        truncated=cursor_next is not None,
        next_cursor=cursor_next,
    )
    text = f"{len(items)} failing tests in run {handle.run_id}, {len(groups)} causes"
    return result, text + (f"; next_cursor={cursor_next}" if cursor_next else "")


def get_failure(fleet: Fleet, handle: RunHandle, node_id: str) -> tuple[s.FailureDetail, str]:
    report = finished_report(handle)
    entries = report.entries_of(node_id)
    if not entries:
        raise ToolError(f"run {handle.run_id} has no test {clean(node_id, LINE)!r}")
    d = digest(entries[-1], report.root, output_lines=15, limit=3000)
    result = s.FailureDetail(
        run_id=handle.run_id,
        nodeid=d.nodeid or clean(node_id, 1000),
        outcome=d.outcome or "",
        failure_class=d.failure_class,
        when=d.when,
        error_type=d.error_type,
        location=d.location,
        attempts=[
            s.Attempt(
                attempt=e.get("attempt", 1),
                outcome=e["outcome"],
                tier=e.get("tier", "hot"),
                duration_seconds=round(e.get("duration", 0.0), 4),
                worker=e.get("worker", 0),
            )
            for e in entries[-10:]
        ],
        untrusted=s.UntrustedFailureText(
            message=d.message,
            assertion=d.assertion,
            traceback=d.traceback,
            stdout_tail=clean(d.stdout_tail, 800),
            stderr_tail=clean(d.stderr_tail, 800),
            log_tail=clean(d.log_tail, 800),
        ),
    )
    return result, f"{d.outcome} ({d.failure_class}): {d.nodeid}"


def similar_failures(
    fleet: Fleet, handle: RunHandle, node_id: str, limit: int = 5
) -> tuple[s.SimilarList, str]:
    from .._knowledge import _commands

    with history_store(fleet.root) as store:
        if store is None:
            raise ToolError("the project has no history yet")
        try:
            report = _commands.similar(store, node_id, handle.run_id, limit, fleet.root)
        except AqeError as exc:
            raise ToolError(str(exc)) from None
    rows = [
        s.SimilarItem(
            run_id=row.run_id,
            nodeid=clean(row.nodeid, 1000),
            cause=clean(row.cause, 200),
            same_cause=row.same_cause,
            score=row.score,
            started=row.start,
            git_commit=row.git_commit,
        ).model_dump(mode="json")
        for row in report.similar
    ]
    kept, _ = page(rows, 0, limit, fleet.budget, 600)
    result = s.SimilarList(
        run_id=handle.run_id,
        nodeid=clean(node_id, 1000),
        cause=clean(report.cause, 200),
        similar=[s.SimilarItem(**r) for r in kept],
    )
    same = sum(r["same_cause"] for r in kept)
    return result, f"{len(kept)} similar past failures, {same} with the same cause"


def causes(root: Path, run_id: str, failures: list[Entry]) -> list[Cause]:
    """Failures grouped by cause (aqe failures), linked by the project's history."""
    from .._knowledge import _commands

    with history_store(root) as store:
        transitions = _commands.past_transitions(store, run_id) if store is not None else []
    return _commands.group_failures(failures, str(root), transitions)


def register(server: MCPServer, fleet: Fleet) -> None:
    """Publish the failure tools on ``server`` (under the plain functions' names)."""

    @server.tool(name="list_failures", annotations=READ_ONLY)
    async def list_failures_tool(
        ctx: Context,
        run_id: RunId = None,
        cursor: Cursor = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> Annotated[CallToolResult, s.FailureList]:
        """A finished run's failed, errored, crashed and timed-out tests, grouped by cause."""
        handle = fleet.last_run(fleet.session(ctx), run_id)
        return fleet.answer(*list_failures(fleet, handle, cursor, limit))

    @server.tool(name="get_failure", annotations=READ_ONLY)
    async def get_failure_tool(
        ctx: Context,
        node_id: Annotated[str, Field(max_length=1000)],
        run_id: RunId = None,
    ) -> Annotated[CallToolResult, s.FailureDetail]:
        """One failure: class, the assertion, project frames of the traceback, output tails."""
        handle = fleet.last_run(fleet.session(ctx), run_id)
        return fleet.answer(*get_failure(fleet, handle, node_id))

    @server.tool(name="similar_failures", annotations=READ_ONLY)
    async def similar_failures_tool(
        ctx: Context,
        node_id: Annotated[str, Field(max_length=1000)],
        run_id: RunId = None,
        limit: Annotated[int, Field(ge=1, le=20)] = 5,
    ) -> Annotated[CallToolResult, s.SimilarList]:
        """Past failures (other runs) nearest to this test's failure, best first."""
        handle = fleet.last_run(fleet.session(ctx), run_id)
        return fleet.answer(*similar_failures(fleet, handle, node_id, limit))
