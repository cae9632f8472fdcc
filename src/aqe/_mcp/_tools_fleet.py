"""The ``fleet_status`` tool: workers, the active run, the queue, tier figures.

A plain function of the :class:`~._fleet.Fleet` (what its runs' snapshots and
reports say, with memory measured now); :func:`register` only publishes it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from .._reporting.digest import clean
from . import _schemas as s
from ._fleet import LINE, READ_ONLY, Fleet
from ._runs import rss_mb

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer


def fleet_status(fleet: Fleet) -> tuple[s.FleetStatus, str]:
    workers: list[s.WorkerInfo] = []
    active = fleet.runs.active()
    status = active.status() if active is not None else None
    if active is not None and status is not None:
        for w in status.workers[:32]:
            workers.append(
                s.WorkerInfo(
                    run_id=active.run_id,
                    slot=w.slot,
                    pid=w.pid,
                    tier=w.tier,
                    state="running" if w.test else "busy",
                    test=clean(w.test, LINE),
                    busy_seconds=w.busy_for,
                    rss_mb=rss_mb(w.pid),
                )
            )
    tiers = None
    runs = fleet.runs.runs()
    for handle in reversed(runs):
        report = handle.report() if handle.state == "finished" else None
        if report is not None:
            tiers = report.tiers
            break
    briefs = []
    for handle in runs[-20:]:
        snapshot = handle.status()
        briefs.append(
            s.RunBrief(
                run_id=handle.run_id,
                state=handle.state,
                done=snapshot.done if snapshot is not None else 0,
                known=snapshot.known if snapshot is not None else None,
            )
        )
    result = s.FleetStatus(
        root=str(fleet.root),
        server_pid=os.getpid(),
        server_rss_mb=rss_mb(os.getpid()),
        active_run=active.run_id if active else None,
        queue=[h.run_id for h in fleet.runs.queued()],
        workers=workers,
        runs=briefs,
        tiers=tiers,
        sessions=len(fleet.sessions),
    )
    state = f"run {active.run_id} active, {len(workers)} workers" if active else "idle"
    return result, f"aqe fleet at {fleet.root}: {state}"


def register(server: MCPServer, fleet: Fleet) -> None:
    """Publish ``fleet_status`` on ``server``."""

    @server.tool(name="fleet_status", annotations=READ_ONLY)
    async def fleet_status_tool(ctx: Context) -> Annotated[CallToolResult, s.FleetStatus]:
        """Workers (pid, tier, current test, RSS), the active run, the queue, tier figures."""
        fleet.session(ctx)
        return fleet.answer(*fleet_status(fleet))
