"""Issue 20's tools: ``run_affected`` (run what a change affects, with the reasons,
bounded) and ``list_gaps`` (code no test reaches, ranked). See docs/affected.md.

The selection is computed here once for the explanation, and the run is an
``aqe run --affected`` child like every other run, which decides again from the same
git state and map (so the answer and the run agree unless the tree changes between).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from .._exceptions import AqeError
from .._reporting.digest import clean
from . import _schemas as s
from ._fleet import LINE, READ_ONLY, Fleet, history_store
from ._runs import RunRequest
from ._tools_runs import Wait, Workers, run_tests

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from ._sessions import Session

#: Reasons an answer carries at most (the rest are counted).
MAX_REASONS = 50


class Reason(BaseModel):
    name: str = Field(description="A test id, or a test file all of whose tests run.")
    why: str


class AffectedRun(BaseModel):
    ref: str = Field(description="The git revision the change is measured from.")
    everything: str | None = Field(description="Why every test runs, if it does.")
    selected: list[Reason] = Field(description="Selected files and tests with their reasons.")
    selected_total: int
    left_out: int = Field(description="Known tests left out (no recorded dependency changed).")
    truncated: bool
    run: s.RunInfo | None = Field(description="The run; none when nothing is affected.")


class GapEntry(BaseModel):
    file: str
    function: str
    lines: list[int] = Field(description="Unreached lines (the first 50).")
    branches: int
    churn: int
    neighbour_tests: int
    score: float


class GapList(BaseModel):
    gaps: list[GapEntry]


def explain(fleet: Fleet, ref: str | None) -> Any:
    """The selection ``aqe run --affected`` would make now (a ``Choice``)."""
    from .._affected import _changes, _mapstore, _select
    from .._affected._command import default_ref

    root = fleet.root
    try:
        with history_store(root) as store:
            if store is None:
                raise ToolError("no history yet: run once with record_deps (aqe run --record-deps)")
            chosen = ref or default_ref(root, store)
            if _changes.revision(root, chosen) is None:
                raise ToolError(f"{clean(chosen, LINE)} is not a git revision")
            return _select.affected(
                root,
                chosen,
                _mapstore.load(store),
                load_shapes=lambda hashes: _mapstore.shapes(store, set(hashes)),
                known=store.known_nodeids(),
            )
    except AqeError as exc:
        raise ToolError(str(exc)) from None


async def run_affected(
    fleet: Fleet,
    session: Session,
    ref: str | None = None,
    workers: int | None = None,
    wait_seconds: float = 30.0,
) -> tuple[AffectedRun, str]:
    choice = await anyio.to_thread.run_sync(explain, fleet, ref)
    rows = [*choice.files.items(), *choice.tests.items()]
    reasons = [Reason(name=clean(n, 1000), why=clean(w, LINE)) for n, w in rows[:MAX_REASONS]]
    run = None
    text = f"nothing affected since {choice.ref[:12]}; {len(choice.left_out)} tests left out"
    if not choice.nothing_to_run() or not set(choice.mapped) >= set(choice.left_out):
        request = RunRequest(affected=choice.ref, workers=workers)
        run, text = await run_tests(fleet, session, request, wait_seconds)
    answer = AffectedRun(
        ref=choice.ref,
        everything=choice.everything,
        selected=reasons,
        selected_total=len(rows),
        left_out=len(choice.left_out),
        truncated=len(rows) > MAX_REASONS,
        run=run,
    )
    return answer, text


def list_gaps(fleet: Fleet, path: str | None = None, limit: int = 20) -> tuple[GapList, str]:
    from .._affected import _gaps

    under = fleet.guard.paths([path])[0] if path else None
    try:
        with history_store(fleet.root) as store:
            found = _gaps.command(fleet.root, under, store, limit)
    except AqeError as exc:
        raise ToolError(str(exc)) from None
    entries = [
        GapEntry(
            file=clean(g.file, 1000),
            function=clean(g.function, LINE),
            lines=list(g.lines[:50]),
            branches=g.branches,
            churn=g.churn,
            neighbour_tests=g.neighbour_tests,
            score=g.score,
        )
        for g in found
    ]
    top = f"; top: {entries[0].file}::{entries[0].function}" if entries else ""
    return GapList(gaps=entries), f"{len(entries)} gaps{top}"


def register(server: MCPServer, fleet: Fleet) -> None:
    """Publish the tools on ``server`` (under the plain functions' names)."""

    @server.tool(name="run_affected")
    async def run_affected_tool(
        ctx: Context,
        ref: Annotated[str | None, Field(max_length=200)] = None,
        workers: Workers = None,
        wait_seconds: Wait = 30.0,
    ) -> Annotated[CallToolResult, AffectedRun]:
        """Run the tests a change affects (since ref, default the last run's commit),
        with each selected test's or file's reason (the first 50)."""
        session = fleet.session(ctx)
        return fleet.answer(*await run_affected(fleet, session, ref, workers, wait_seconds))

    @server.tool(name="list_gaps", annotations=READ_ONLY)
    async def list_gaps_tool(
        ctx: Context,
        path: Annotated[str | None, Field(max_length=1000)] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> Annotated[CallToolResult, GapList]:
        """Code no test reaches (last run with coverage), by function, ranked."""
        fleet.session(ctx)
        return fleet.answer(*await anyio.to_thread.run_sync(list_gaps, fleet, path, limit))
