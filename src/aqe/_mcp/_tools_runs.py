"""Run tools: ``list_tests``, ``run_tests``, ``get_run``, ``cancel_run``, ``set_defaults``.

Each tool is a plain function of the :class:`~._fleet.Fleet`, the caller's
:class:`~._sessions.Session` and typed values, returning its typed answer and a
one-line summary; :func:`register` only publishes them as MCP tools.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import anyio
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import Field

from .._reporting.digest import clean
from . import _schemas as s
from ._budget import page, size, start_of
from ._fleet import LINE, MAX_WAIT, READ_ONLY, Fleet, Progress
from ._runs import RunHandle, RunRequest

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from ._sessions import Session

Paths = Annotated[
    list[Annotated[str, Field(max_length=1000)]],
    Field(max_length=200, description="Files or directories, relative to the project root."),
]
NodeIds = Annotated[
    list[Annotated[str, Field(max_length=1000)]],
    Field(max_length=500, description="pytest node ids as list_tests shows them."),
]
Expr = Annotated[str | None, Field(max_length=1000)]
Cursor = Annotated[str | None, Field(max_length=20, description="next_cursor of a previous page.")]
RunId = Annotated[
    str | None,
    Field(max_length=64, description="A run id; default: this session's last run."),
]
Wait = Annotated[float, Field(ge=0, le=MAX_WAIT, description="Seconds to wait for the end.")]
Workers = Annotated[int | None, Field(ge=1, le=64, description="Worker processes.")]
Retries = Annotated[int | None, Field(ge=0, le=10, description="Retries of a failed test.")]
Timeout = Annotated[
    float | None, Field(ge=0.1, le=86400, description="Per-test time limit in seconds.")
]


# -- the tools as plain functions ----------------------------------------------------------


async def list_tests(
    fleet: Fleet,
    paths: list[str] | None = None,
    keyword: str | None = None,
    marker: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[s.TestList, str]:
    args = list(fleet.guard.paths(paths))
    if (k := fleet.guard.expression(keyword, "keyword")) is not None:
        args[:0] = ["-k", k]
    if (m := fleet.guard.expression(marker, "marker")) is not None:
        args[:0] = ["-m", m]
    tests, errors = await fleet.collect(args)
    entries = [
        s.TestEntry(
            nodeid=clean(t.nodeid, 1000),
            file=clean(t.file, 1000),
            line=t.line,
            last_seconds_median=t.estimate,
        ).model_dump(mode="json")
        for t in tests
    ]
    error_text = clean(errors, 1500) if errors.strip() else None
    offset = start_of(cursor, len(entries))
    spent = size({"collection_errors": error_text}) + 200
    kept, cursor_next = page(entries, offset, limit, fleet.budget, spent)
    result = s.TestList(
        total=len(entries),
        tests=[s.TestEntry(**e) for e in kept],
        collection_errors=error_text,
        truncated=cursor_next is not None,
        next_cursor=cursor_next,
    )
    more = f"; next_cursor={cursor_next}" if cursor_next else ""
    text = (
        f"{len(entries)} tests collected, showing {offset + 1}-{offset + len(kept)}{more}"
        if kept
        else f"{len(entries)} tests collected"
    )
    return result, text


async def run_tests(
    fleet: Fleet,
    session: Session,
    request: RunRequest,
    wait_seconds: float = 30.0,
    queue: bool = False,
    progress: Progress | None = None,
) -> tuple[s.RunInfo, str]:
    """Submit ``request`` (its selection already checked) and wait for its end."""
    await fleet.check_ids(request.node_ids)
    defaults = session.defaults
    request = replace(
        request,
        workers=request.workers if request.workers is not None else defaults.workers,
        retries=request.retries if request.retries is not None else defaults.retries,
        timeout=request.timeout if request.timeout is not None else defaults.timeout,
    )
    handle = fleet.runs.submit(request, session.key, queue)
    session.last_run = handle.run_id
    try:
        await fleet.wait(handle, wait_seconds, progress)
    except BaseException:
        # The call was cancelled (or the client went away): so is its run.
        with anyio.CancelScope(shield=True):
            fleet.runs.cancel(handle)
            await fleet.stopped(handle)
        raise
    return _answer(fleet, handle)


async def get_run(
    fleet: Fleet,
    session: Session,
    run_id: str | None = None,
    wait_seconds: float = 0.0,
    progress: Progress | None = None,
) -> tuple[s.RunInfo, str]:
    handle = fleet.last_run(session, run_id)
    await fleet.wait(handle, wait_seconds, progress)
    return _answer(fleet, handle)


async def cancel_run(
    fleet: Fleet, session: Session, run_id: str | None = None
) -> tuple[s.RunInfo, str]:
    handle = fleet.last_run(session, run_id)
    fleet.runs.cancel(handle)
    await fleet.stopped(handle)
    return _answer(fleet, handle)


def set_defaults(
    session: Session,
    workers: int | None = None,
    retries: int | None = None,
    timeout_seconds: float | None = None,
) -> tuple[s.Defaults, str]:
    session.defaults.workers = workers
    session.defaults.retries = retries
    session.defaults.timeout = timeout_seconds
    result = s.Defaults(workers=workers, retries=retries, timeout_seconds=timeout_seconds)
    return result, f"defaults set: {result.model_dump()}"


# -- a run's answer ----------------------------------------------------------------------


def run_info(fleet: Fleet, handle: RunHandle) -> s.RunInfo:
    """Where a run is: its live snapshot while it runs, its report once finished."""
    status = handle.status()
    report = handle.report() if handle.finished else None
    outcomes = dict(status.outcomes) if status is not None else {}
    failures = [
        s.BriefFailure(
            nodeid=clean(f.nodeid, LINE), outcome=f.outcome, message=clean(f.message, LINE)
        )
        for f in (status.failures[:5] if status is not None else ())
    ]
    collection_errors: list[str] = []
    done = status.done if status is not None else 0
    attempts = status.attempts if status is not None else 0
    known: int | None = status.known if status is not None else None
    if report is not None:
        done = known = report.total if report.total is not None else done
        attempts = report.attempts if report.attempts is not None else attempts
        outcomes = dict(report.outcomes)
        failures = [
            s.BriefFailure(
                nodeid=clean(entry["nodeid"], LINE),
                outcome=entry["outcome"],
                message=clean((entry.get("message") or "").split("\n", 1)[0], LINE),
            )
            for _, entry in zip(range(5), report.failures(), strict=False)
        ]
        collection_errors = [
            clean(str(e.get("location", "")), LINE) for e in report.collection_errors
        ][:10]
    end = handle.ended or time.time()
    queued = fleet.runs.queued()
    ahead = fleet.runs.active()
    if handle.state == "queued" and ahead is None and queued and queued[0] is not handle:
        ahead = queued[0]
    tail = None
    if handle.state == "failed" or (handle.finished and handle.exit_code not in (0, 1)):
        tail = clean(handle.error or handle.output_tail(2000), 2000)
    return s.RunInfo(
        run_id=handle.run_id,
        state=handle.state,
        request=_capped_request(handle.request.describe()),
        exit_code=handle.exit_code,
        done=done,
        attempts=attempts,
        known=known,
        collecting=status.collecting if status is not None else handle.state == "running",
        outcomes=outcomes,
        elapsed_seconds=None if handle.started is None else round(end - handle.started, 2),
        eta_estimate_seconds=None if handle.finished or status is None else status.eta_seconds,
        first_failures=failures,
        queued_behind=ahead.run_id if handle.state == "queued" and ahead else None,
        collection_errors=collection_errors,
        output_tail=tail,
        hint=_hint(handle, outcomes),
    )


def summary(info: s.RunInfo) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in info.outcomes.items() if n) or "no results yet"
    known = "?" if info.known is None else info.known
    text = f"run {info.run_id} {info.state}: {info.done}/{known} tests, {counts}"
    if info.exit_code is not None:
        text += f"; exit code {info.exit_code}"
    return text


def _answer(fleet: Fleet, handle: RunHandle) -> tuple[s.RunInfo, str]:
    info = run_info(fleet, handle)
    return info, summary(info)


def _capped_request(request: dict[str, object]) -> dict[str, object]:
    capped: dict[str, object] = {}
    for key, value in request.items():
        if isinstance(value, list):
            value = [clean(str(v), 200) for v in value[:10]] + (
                [f"... {len(value) - 10} more"] if len(value) > 10 else []
            )
        elif isinstance(value, str):
            value = clean(value, 200)
        capped[key] = value
    return capped


def _hint(handle: RunHandle, counts: dict[str, int]) -> str:
    if handle.state == "queued":
        return f"queued; call get_run(run_id={handle.run_id!r}, wait_seconds=30) to wait"
    if handle.state == "running":
        return f"still running; call get_run(run_id={handle.run_id!r}, wait_seconds=30)"
    if handle.state == "failed":
        return "the run could not start; see output_tail"
    if any(counts.get(k) for k in ("failed", "error", "crashed", "timeout")):
        return "call list_failures, then get_failure(node_id) for one failure's details"
    if handle.exit_code == 5:
        return "no tests were collected for this selection; check it with list_tests"
    if handle.exit_code not in (0, 1, None):
        return "the run did not complete normally; see output_tail"
    return "all selected tests passed" if handle.state == "finished" else "the run was cancelled"


# -- publishing them ---------------------------------------------------------------------


def register(server: MCPServer, fleet: Fleet) -> None:
    """Publish the run tools on ``server`` (under the plain functions' names)."""

    @server.tool(name="list_tests", annotations=READ_ONLY)
    async def list_tests_tool(
        ctx: Context,
        paths: Paths | None = None,
        keyword: Expr = None,
        marker: Expr = None,
        cursor: Cursor = None,
        limit: Annotated[int, Field(ge=1, le=500)] = 100,
    ) -> Annotated[CallToolResult, s.TestList]:
        """Collected test ids (pytest's collection, -k/-m like pytest), with median durations."""
        fleet.session(ctx)
        return fleet.answer(*await list_tests(fleet, paths, keyword, marker, cursor, limit))

    @server.tool(name="run_tests")
    async def run_tests_tool(
        ctx: Context,
        paths: Paths | None = None,
        node_ids: NodeIds | None = None,
        keyword: Expr = None,
        marker: Expr = None,
        last_failed: bool = False,
        failed_first: bool = False,
        exitfirst: bool = False,
        maxfail: Annotated[int | None, Field(ge=1, le=100000)] = None,
        workers: Workers = None,
        retries: Retries = None,
        timeout_seconds: Timeout = None,
        wait_seconds: Wait = 30.0,
        queue: Annotated[
            bool, Field(description="Wait behind a run that holds the project instead of failing.")
        ] = False,
    ) -> Annotated[CallToolResult, s.RunInfo]:
        """Run tests (all, or paths / node ids / -k / -m / last failed) on aqe's workers.

        Returns the result if the run ends within wait_seconds, else its run_id to
        poll with get_run. Cancelling this call cancels the run it started.
        """
        session = fleet.session(ctx)
        request = RunRequest(
            paths=fleet.guard.paths(paths),
            node_ids=tuple(node_ids or ()),
            keyword=fleet.guard.expression(keyword, "keyword"),
            marker=fleet.guard.expression(marker, "marker"),
            last_failed=last_failed,
            failed_first=failed_first,
            exitfirst=exitfirst,
            maxfail=maxfail,
            workers=workers,
            retries=retries,
            timeout=timeout_seconds,
        )
        answer = await run_tests(fleet, session, request, wait_seconds, queue, ctx.report_progress)
        return fleet.answer(*answer)

    @server.tool(name="get_run", annotations=READ_ONLY)
    async def get_run_tool(
        ctx: Context, run_id: RunId = None, wait_seconds: Wait = 0.0
    ) -> Annotated[CallToolResult, s.RunInfo]:
        """Progress or result of a run; waits up to wait_seconds for it to end (long-poll)."""
        session = fleet.session(ctx)
        answer = await get_run(fleet, session, run_id, wait_seconds, ctx.report_progress)
        return fleet.answer(*answer)

    @server.tool(name="cancel_run")
    async def cancel_run_tool(
        ctx: Context, run_id: RunId = None
    ) -> Annotated[CallToolResult, s.RunInfo]:
        """Stop a run: its workers are killed, finished results are kept."""
        return fleet.answer(*await cancel_run(fleet, fleet.session(ctx), run_id))

    @server.tool(name="set_defaults")
    async def set_defaults_tool(
        ctx: Context,
        workers: Workers = None,
        retries: Retries = None,
        timeout_seconds: Timeout = None,
    ) -> Annotated[CallToolResult, s.Defaults]:
        """Options this session's later run_tests calls use when they do not give them."""
        return fleet.answer(*set_defaults(fleet.session(ctx), workers, retries, timeout_seconds))
