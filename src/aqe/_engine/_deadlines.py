"""Time limits, enforced from outside the worker: a hung test cannot stop them.

Each tick the coordinator asks which worker's running test is past its limit
(``--timeout``, or the test's ``timeout`` marker, plus a second's grace when
pytest-timeout is active and gets the first go). That worker is asked for its
threads' stacks (faulthandler answers from C, even with the GIL held), then
killed; its death is blamed on the test (see ``_blame``).
"""

from __future__ import annotations

import signal

from ._limits import STACKS_SIGNAL
from ._pool import WorkerConn, signal_worker, stacks_written

#: How long a worker gets to write its stacks before it is killed anyway.
STACKS_WAIT = 0.5


class Deadlines:
    def __init__(self, timeout: float | None, marker_grace: float = 0.0) -> None:
        self.timeout = timeout
        self.marker_grace = marker_grace
        #: Per-test limits from ``timeout`` markers (0.0: explicitly none).
        self.own: dict[str, float] = {}

    def limit(self, nodeid: str) -> float | None:
        own = self.own.get(nodeid)
        if own is not None:
            return own + self.marker_grace if own > 0 else None
        return self.timeout

    def check(self, conn: WorkerConn, running: str | None, now: float) -> None:
        """Stop the worker's running test if it ran past its limit: stacks first,
        the kill ``STACKS_WAIT`` later (or once they are written)."""
        if conn.kill_at is not None:
            if now >= conn.kill_at or stacks_written(conn.stacks):
                conn.kill_at = None
                signal_worker(conn, signal.SIGKILL)
            return
        if conn.collecting or running is None or conn.timed_out is not None:
            return
        limit = self.limit(running)
        ran = now - conn.busy_since
        if limit is None or ran <= limit:
            return
        conn.timed_out = (running, limit, ran)
        signal_worker(conn, STACKS_SIGNAL)
        conn.kill_at = now + STACKS_WAIT
