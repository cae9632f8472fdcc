"""``aqe status``: what runs now in a project, and how the last run went.

Live runs are read from the snapshots every ``aqe run`` keeps in ``.aqe/status``
(see ``_engine._status``); a snapshot whose process is gone is a run that was
killed, and is removed. Memory is measured now, from /proc.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._engine._status import rss_mb
from ._model import tier_figures
from ._store import Store as HistoryStore  # any registered store (the protocol)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_runs(root: Path) -> list[dict[str, Any]]:
    runs = []
    for path in sorted((root / ".aqe" / "status").glob("*.json")):
        try:
            snapshot = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(snapshot, dict) or not _alive(int(snapshot.get("pid", 0) or 0)):
            with contextlib.suppress(OSError):
                path.unlink()  # its run was killed before it could clean up
            continue
        for worker in snapshot.get("workers", ()):
            worker["rss_mb"] = rss_mb(int(worker.get("pid", 0)))
        runs.append(snapshot)
    return runs


def status_report(root: Path, store: HistoryStore | None) -> dict[str, Any]:
    last: dict[str, Any] | None = None
    if store is not None:
        finished = [row for row in store.recent_runs(20) if row.end is not None]
        if finished:
            row = finished[0]
            last = {
                "run_id": row.run_id,
                "start": datetime.fromtimestamp(row.start, tz=timezone.utc).isoformat(
                    timespec="seconds"
                ),
                "duration": round((row.end or row.start) - row.start, 2),
                "exit_code": row.exit_code,
                "outcomes": {k: n for k, n in row.counts.items() if n},
                "workers": row.workers,
                "tiers": tier_figures(store.results_for_run(row.run_id)),
            }
    return {
        "schema": "aqe-status",
        "version": 1,
        "root": str(root),
        "running": live_runs(root),
        "last_run": last,
    }


def status_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    if not report["running"]:
        lines.append("no run going on")
    for run in report["running"]:
        outcomes = ", ".join(f"{n} {k}" for k, n in run.get("outcomes", {}).items() if n)
        eta = run.get("eta_seconds")
        lines.append(
            f"run {run['run_id']} (pid {run['pid']}) {run['state']}: {run['done']}/{run['known']} "
            f"tests{', ' + outcomes if outcomes else ''}"
            + (f", about {eta:.0f}s left (estimate)" if eta is not None else "")
        )
        for worker in run.get("workers", ()):
            rss = f"{worker['rss_mb']:.0f} MB" if worker.get("rss_mb") else "? MB"
            doing = worker["test"] or "(collecting or between tests)"
            lines.append(
                f"  w{worker['slot']} pid {worker['pid']} {worker['tier']:4} {rss:>7}  "
                f"{worker['busy_for']:6.1f}s  {doing}"
            )
    last = report["last_run"]
    if last is None:
        lines.append("no finished run in the history yet")
        return lines
    outcomes = ", ".join(f"{n} {k}" for k, n in last["outcomes"].items()) or "no tests"
    lines.append(
        f"last run {last['run_id']} at {last['start']}: {outcomes} in {last['duration']:.2f}s, "
        f"exit {last['exit_code']}, {last['workers']} workers"
    )
    for tier, fig in last["tiers"].items():
        lines.append(
            f"  {tier:4} {fig['tests']:g} tests, {fig['failures']:g} failed, median "
            f"{fig['median_seconds']:.3f}s, {fig['fallbacks']:g} sent on, "
            f"{fig['workers']:g} workers"
        )
    return lines
