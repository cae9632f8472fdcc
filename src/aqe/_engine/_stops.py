"""How a run stops early: a signal, a test's ``KeyboardInterrupt``, ``-x``/``--maxfail``,
the run's own time limit.

A first SIGINT/SIGTERM (or a test's ``KeyboardInterrupt``) stops scheduling and gives
running tests ``shutdown_grace`` seconds to finish; a second signal, or the end of
the grace period, kills every worker. ``-x``/``--maxfail`` stops scheduling once
pytest's session counted the Nth replayed failure; tests already running finish
and are reported. ``--run-timeout`` kills every worker and keeps what finished.
"""

from __future__ import annotations

import signal
import time

from .._messages import Stop
from ._plan import Planner
from ._pool import WorkerPool
from ._replay import Replay


class Stops:
    def __init__(self, replay: Replay, grace: float) -> None:
        self._replay = replay
        self._grace = grace
        #: No new work is scheduled: the run is ending early.
        self.stopping = False
        #: Why the run stopped early (pytest's "Interrupted: ..."), if it did.
        self.interrupted = ""
        #: A test's ``pytest.exit(reason, returncode)``: the session ends with it.
        self.exit_request: tuple[str, int | None] | None = None
        #: pytest's "stopping after N failures" as it was at the Nth (-x/--maxfail).
        self.stopped_at = ""
        #: Signals received during the loop (SIGINT/SIGTERM), in order, and how many
        #: had come when the graceful stop began (a later one kills).
        self.signals: list[int] = []
        self._signals_at_stop = 0
        self._grace_until: float | None = None

    @property
    def graceful(self) -> bool:
        """A graceful stop has begun (a later interrupt is not the run's reason)."""
        return self._grace_until is not None

    def on_signal(self, signum: int, frame: object) -> None:
        """The handler: only note it; the loop acts (``tick``)."""
        self.signals.append(signum)

    def tick(self, now: float, pool: WorkerPool, planner: Planner) -> None:
        """First signal: stop gracefully. A second one, or the end of the grace
        period: kill every worker."""
        if self.signals and self._grace_until is None:
            name = signal.Signals(self.signals[0]).name
            self.gracefully(f"{name} received", f"{name} received", pool, planner, again=True)
            pool.relay(self.signals[0])
        elif self._grace_until is not None and (
            len(self.signals) > self._signals_at_stop or now >= self._grace_until
        ):
            pool.kill_all()

    def gracefully(
        self, reason: str, why: str, pool: WorkerPool, planner: Planner, again: bool = False
    ) -> None:
        """Interrupt the run as pytest would (exit 2): stop scheduling; running tests
        get the grace period to finish, a signal meanwhile kills them."""
        self.interrupted = reason
        self.stopping = True
        planner.drop_pending()
        self._grace_until = time.monotonic() + self._grace
        self._signals_at_stop = len(self.signals)
        running = 0
        for conn in pool.live():
            conn.killed = True
            running += planner.running(conn.worker) is not None
            pool.send(conn.worker, [Stop()])
        self._replay.note(
            f"aqe: {why}: stopping; waiting up to {self._grace:g}s for {running} running tests"
            + (" (again to stop at once)" if again else "")
        )

    def at_once(self, reason: str, pool: WorkerPool, planner: Planner) -> None:
        """End the run now: stop scheduling, kill every worker, keep what finished."""
        self.interrupted = reason
        self.stopping = True
        planner.drop_pending()
        running = sum(planner.queued(conn.worker) for conn in pool.live())
        pool.kill_all()
        self._replay.note(f"aqe: {reason}; stopped {running} queued or running tests")

    def if_failed(self, pool: WorkerPool, planner: Planner) -> None:
        """-x/--maxfail: pytest's session counted the replayed failures and set
        ``shouldfail`` at the Nth. Stop scheduling and have every worker drop the
        tests it holds queued; tests already running finish and are reported."""
        if self.stopping or (reason := self._replay.stop_reason()) is None:
            return
        self.stopped_at = reason
        self.stopping = True
        planner.drop_pending()
        for conn in pool.live():
            conn.killed = True  # its queue is dropped on purpose, not lost to a crash
            pool.send(conn.worker, [Stop()])
