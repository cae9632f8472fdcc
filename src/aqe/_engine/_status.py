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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from .._model import FAILING_OUTCOMES, TestResult

#: The snapshot's format; bump on any incompatible change.
STATUS_VERSION = 1
#: Seconds between two snapshots while a run goes on...
INTERVAL = 0.5
#: ...or this many times what the last write took, when that is more...
SLOW_FACTOR = 20
#: ...up to this many seconds.
MAX_INTERVAL = 5.0
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

    def to_json(self) -> dict[str, object]:
        return {
            "slot": self.slot,
            "pid": self.pid,
            "tier": self.tier,
            "test": self.test,
            "busy_for": round(self.busy_for, 2),
        }


@dataclass(frozen=True, slots=True)
class FailureBrief:
    """A test whose final outcome is a failure, as a snapshot lists it."""

    nodeid: str
    outcome: str
    #: First line of its message, capped.
    message: str

    def to_json(self) -> dict[str, object]:
        return {"nodeid": self.nodeid, "outcome": self.outcome, "message": self.message}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One status snapshot: the file's whole content, written and read as one."""

    run_id: str
    pid: int
    #: running, stopping or finished.
    state: str
    #: Epoch seconds it was written.
    updated: float
    #: Tests with a final outcome, and attempts, so far.
    done: int
    attempts: int
    #: Tests known so far.
    known: int
    collecting: bool
    eta_seconds: float | None
    #: Attempts per outcome, and tests per final outcome.
    counts: Mapping[str, int] = field(default_factory=dict)
    outcomes: Mapping[str, int] = field(default_factory=dict)
    workers: tuple[WorkerState, ...] = ()
    failures: tuple[FailureBrief, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "version": STATUS_VERSION,
            "run_id": self.run_id,
            "pid": self.pid,
            "state": self.state,
            "updated": self.updated,
            "done": self.done,
            "attempts": self.attempts,
            "known": self.known,
            "collecting": self.collecting,
            "eta_seconds": self.eta_seconds,
            "counts": dict(self.counts),
            "outcomes": dict(self.outcomes),
            "workers": [w.to_json() for w in self.workers],
            "failures": [f.to_json() for f in self.failures],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Snapshot:
        """Read a snapshot another process wrote; missing or odd fields read as empty."""
        eta = data.get("eta_seconds")
        return cls(
            run_id=str(data.get("run_id", "")),
            pid=_int(data.get("pid")),
            state=str(data.get("state", "")),
            updated=float(cast("float", data.get("updated") or 0.0)),
            done=_int(data.get("done")),
            attempts=_int(data.get("attempts")),
            known=_int(data.get("known")),
            collecting=bool(data.get("collecting")),
            eta_seconds=None if eta is None else float(cast("float", eta)),
            counts=_counts(data.get("counts")),
            outcomes=_counts(data.get("outcomes")),
            workers=tuple(
                WorkerState(
                    slot=_int(w.get("slot")),
                    pid=_int(w.get("pid")),
                    tier=str(w.get("tier", "")),
                    test=str(w.get("test") or ""),
                    busy_for=float(cast("float", w.get("busy_for") or 0.0)),
                )
                for w in _dicts(data.get("workers"))
            ),
            failures=tuple(
                FailureBrief(
                    nodeid=str(f.get("nodeid", "")),
                    outcome=str(f.get("outcome", "")),
                    message=str(f.get("message") or ""),
                )
                for f in _dicts(data.get("failures"))
            ),
        )


def read_snapshot(path: str | os.PathLike[str]) -> Snapshot | None:
    """The snapshot at ``path``, or None before the first one (or if unreadable)."""
    try:
        with open(path, encoding="utf-8") as stream:
            value: object = json.load(stream)
    except (OSError, ValueError):
        return None
    return (
        Snapshot.from_json(cast("Mapping[str, object]", value)) if isinstance(value, dict) else None
    )


def _int(value: object) -> int:
    try:
        return int(cast("int", value or 0))
    except (TypeError, ValueError):
        return 0


def _counts(value: object) -> dict[str, int]:
    items = cast("Mapping[object, object]", value).items() if isinstance(value, Mapping) else ()
    return {str(k): _int(v) for k, v in items}


def _dicts(value: object) -> list[Mapping[str, object]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def first_failures(
    results: Iterable[TestResult], final: dict[str, str], limit: int = FIRST_FAILURES
) -> list[FailureBrief]:
    """The first tests whose final outcome (no attempt left) is a failure, once each."""
    found: list[FailureBrief] = []
    listed: set[str] = set()
    for result in results:
        if result.nodeid in listed or result.outcome not in FAILING_OUTCOMES:
            continue
        if final.get(result.nodeid) != result.outcome:
            continue  # retried, or not decided yet
        listed.add(result.nodeid)
        message = (result.message or "").splitlines()[:1]
        found.append(
            FailureBrief(result.nodeid, result.outcome, message[0][:300] if message else "")
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
        self._interval = INTERVAL

    def due(self, now: float) -> bool:
        return now - self._last >= self._interval

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
        failures: Iterable[FailureBrief],
    ) -> None:
        self._last = time.monotonic()
        snapshot = Snapshot(
            run_id=self.run_id,
            pid=os.getpid(),
            state=state,
            updated=time.time(),
            done=done,
            attempts=attempts,
            known=known,
            collecting=collecting,
            eta_seconds=None if eta is None else round(eta, 2),
            counts=counts,
            outcomes=outcomes,
            workers=tuple(workers),
            failures=tuple(failures),
        )
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as stream:
                json.dump(snapshot.to_json(), stream)
            os.replace(temporary, self.path)
        except OSError:
            # A status file is a courtesy to onlookers: never let it fail the run.
            with contextlib.suppress(OSError):
                os.unlink(temporary)
        # A rename over the last snapshot waits for the disk on some file systems
        # (ext4 flushes the new file's data first): 40 ms a write on a busy shared
        # machine, where the loop feeds the workers. Then write less often.
        self._interval = min(
            MAX_INTERVAL, max(INTERVAL, SLOW_FACTOR * (time.monotonic() - self._last))
        )


def rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` now, measured from /proc; None where unknown."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as stream:
            pages = int(stream.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
