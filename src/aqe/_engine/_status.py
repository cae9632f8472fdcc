"""A live snapshot of a run, written to a file for other processes to read.

``aqe mcp`` runs each run in a child process and answers "how far is it, what is
each worker doing" from this file; a reader must never see half a snapshot, so
every write goes to a temporary file that is then renamed over the old one.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._model import FAILING_OUTCOMES, TestResult

#: The snapshot's format; bump on any incompatible change.
STATUS_VERSION = 1
#: Seconds between two snapshots while a run goes on.
INTERVAL = 0.5
#: Failures listed in a snapshot (the report has them all).
FIRST_FAILURES = 10


@dataclass(frozen=True, slots=True)
class WorkerState:
    slot: int
    pid: int
    tier: str
    #: Node id of the test it runs now, "" when idle or collecting.
    test: str
    #: Seconds it has spent on what it does now.
    busy_for: float


def first_failures(
    results: Iterable[TestResult], final: dict[str, str], limit: int = FIRST_FAILURES
) -> list[dict[str, Any]]:
    """The first tests whose final outcome (no attempt left) is a failure, once each."""
    found: list[dict[str, Any]] = []
    listed: set[str] = set()
    for result in results:
        if result.nodeid in listed or result.outcome not in FAILING_OUTCOMES:
            continue
        if final.get(result.nodeid) != result.outcome:
            continue  # retried, or not decided yet
        listed.add(result.nodeid)
        message = (result.message or "").splitlines()[:1]
        found.append(
            {
                "nodeid": result.nodeid,
                "outcome": result.outcome,
                "message": message[0][:300] if message else "",
            }
        )
        if len(found) == limit:
            break
    return found


class StatusFile:
    """Writes snapshots to ``path`` at most every :data:`INTERVAL` seconds."""

    def __init__(self, path: str, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._last = 0.0

    def due(self, now: float) -> bool:
        return now - self._last >= INTERVAL

    def write(
        self,
        *,
        state: str,
        done: int,
        attempts: int,
        known: int,
        collecting: bool,
        eta: float | None,
        counts: dict[str, int],
        outcomes: dict[str, int],
        workers: Iterable[WorkerState],
        failures: list[dict[str, Any]],
    ) -> None:
        self._last = time.monotonic()
        snapshot = {
            "version": STATUS_VERSION,
            "run_id": self.run_id,
            "pid": os.getpid(),
            "state": state,
            "updated": time.time(),
            "done": done,
            "attempts": attempts,
            "known": known,
            "collecting": collecting,
            "eta_seconds": None if eta is None else round(eta, 2),
            "counts": counts,
            "outcomes": outcomes,
            "workers": [
                {
                    "slot": w.slot,
                    "pid": w.pid,
                    "tier": w.tier,
                    "test": w.test,
                    "busy_for": round(w.busy_for, 2),
                }
                for w in workers
            ],
            "failures": failures,
        }
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as stream:
                json.dump(snapshot, stream)
            os.replace(temporary, self.path)
        except OSError:
            # A status file is a courtesy to onlookers: never let it fail the run.
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` now, measured from /proc; None where unknown."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as stream:
            pages = int(stream.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
