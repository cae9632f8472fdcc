"""The coordinator: one event loop that feeds workers, settles results, never waits on the dead.

It runs inside the user's pytest session (aqe's plugin owns ``pytest_runtestloop``).
The loop reads what workers send (``_messages.ToCoordinator``, matched
exhaustively in ``_dispatch``) and hands each event to a collaborator with one job:

- ``_pool.WorkerPool``: the worker processes (from an ``_backend.ExecutionBackend``),
  their sockets, and what a dead one left behind;
- ``_plan.Planner``: which tests and files go to which worker, and when;
- ``_settler.Settler``: what becomes of an ended attempt (final, retry, run alone on
  the next tier, hedged, flaky, quarantined), decided by the pure ``_verdicts`` and
  carried out;
- ``_blame``: what a dead worker's death is blamed on; ``_deadlines``: time limits;
  ``_stops``: signals, ``-x``/``--maxfail``, the run's own time limit;
- ``_deps.DependencyGate``: tests held until the tests they depend on end;
- ``_replay.Replay``: the replay into pytest's hooks (the only code here that calls
  them), so ``--junitxml``, the terminal summary and reporting plugins see every
  result as in a serial run;
- ``_recorder.Recorder``: the run's record, counts, the store, the live view and
  the status file.

What stays here is the loop, the dispatch, and the wiring between them: every
attempt is settled through one path (``_settle``), and recorded through one
(``Recorder.record``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence

import pytest

from .._compat import CollectReport, nodes
from .._messages import (
    Collected,
    CollectStarted,
    Importing,
    Limits,
    NotFound,
    NothingReported,
    Proceed,
    Retiring,
    RunTests,
    Stop,
    TestFinished,
    TestInterrupted,
    ToCoordinator,
    WarningRecorded,
    WorkerFailed,
    WorkerReady,
    assert_never,
)
from .._model import RunRecord, TestResult
from .._signals import handling, received
from .._verdicts import ISOLATE_REASONS, Final, Verdict
from . import _summary
from ._backend import ExecutionBackend
from ._blame import BatchCrash, Crash, FileCrash, blame, collect_skipped, not_found, skipped
from ._deadlines import Deadlines
from ._deps import DependencyGate
from ._fork import describe_exit
from ._limits import EngineSettings, marker_timeout, pytest_timeout_active
from ._order import order_bound_files
from ._plan import Planner
from ._pool import WorkerConn, WorkerPool, signal_worker, take_outputs, take_stacks
from ._recorder import ProgressView as ProgressView
from ._recorder import Recorder, snapshot
from ._recorder import RunSink as RunSink
from ._replay import Replay, mark
from ._retry import marker_reruns
from ._settler import Settler
from ._status import StatusFile
from ._stops import Stops
from ._worker import sweep_worker_files

_TICK = 0.1
#: Seconds a worker may hold a fast test's result to send it with the next ones.
HOLD = 0.02
#: Replacements forked for a slot whose workers keep dying before doing anything.
_MAX_BARREN_DEATHS = 3


class Coordinator:
    def __init__(
        self,
        session: pytest.Session,
        run: RunRecord,
        sink: RunSink,
        view: ProgressView | None,
        files: Sequence[nodes.Collector],
        direct_items: Sequence[nodes.Item],
        settings: EngineSettings,
    ) -> None:
        self.settings = settings
        self.run = run
        self.sink = sink
        self.view = view
        self.files = list(files)
        self.direct = {item.nodeid: item for item in direct_items}
        grace = 1.0 if pytest_timeout_active(session.config) else 0.0
        self.deadlines = Deadlines(settings.timeout, grace)
        #: Per-test retry counts from ``flaky(reruns=N)`` markers.
        self.reruns: dict[str, int] = {}
        for item in direct_items:
            if (limit := marker_timeout(item)) is not None:
                self.deadlines.own[item.nodeid] = limit
            if (reruns := marker_reruns(item)) is not None:
                self.reruns[item.nodeid] = reruns
        #: -x/--maxfail: failures that stop the run (0: none do).
        self._maxfail: int = session.config.getoption("maxfail", 0) or 0
        self.settler = Settler(
            settings,
            self.reruns,
            spawn_alone=self._spawn_alone,
            cancel=self._cancel,
            retry_later=lambda nodeid, worker, due: self.planner.retry_later(nodeid, worker, due),
        )
        #: Workers replaced after reaching --max-tests-per-worker/--max-worker-memory.
        self.recycled = 0
        self.known = len(self.direct)
        self._seen: set[str] = set()
        self._started = time.monotonic()
        self._last_feed = 0.0
        self.gate = DependencyGate()
        self.replay = Replay(session)
        self.stops = Stops(self.replay, settings.shutdown_grace)
        status = StatusFile(settings.status_path, run.run_id) if settings.status_path else None
        self.recorder = Recorder(run, sink, view, status)
        self._planner: Planner | None = None
        self._pool: WorkerPool | None = None
        self.replay.junit_setup(run)

    @property
    def planner(self) -> Planner:
        assert self._planner is not None, "the run's loop has not started"
        return self._planner

    @property
    def pool(self) -> WorkerPool:
        assert self._pool is not None, "the run's loop has not started"
        return self._pool

    @property
    def counts(self) -> dict[str, int]:
        """Attempts per outcome."""
        return self.recorder.counts

    @property
    def stopping(self) -> bool:
        return self.stops.stopping

    def _interrupted_by(self, message: TestInterrupted) -> None:
        nodeid, where = message.nodeid, message.where
        if message.exit_reason is not None:  # pytest.exit(): the run ends as it asks
            self.stops.exit_request = (message.exit_reason, message.exit_code)
            why = f"{nodeid} called pytest.exit()"
        else:
            # (pytest's banner shows a crash location when its text names
            # KeyboardInterrupt: this one would be aqe's own line)
            why = f"{nodeid} raised KeyboardInterrupt"
        self.stops.gracefully(f"{nodeid} at {where}", why, self.pool, self.planner)

    @property
    def interrupted(self) -> str:
        """Why the run stopped early (pytest's "Interrupted: ..."), if it did."""
        return self.stops.interrupted

    @property
    def usage_error(self) -> str:
        """A mistake in the suite found while running (a dependency cycle): exit 4."""
        return self.gate.usage_error

    # -- the run -----------------------------------------------------------------

    def execute(
        self,
        backend: ExecutionBackend,
        cold_backend: Callable[[], ExecutionBackend] | None = None,
    ) -> None:
        if not self.files and not self.direct:
            return
        self._pool = WorkerPool(backend, cold_backend)
        sweep_worker_files()
        try:
            workers = self._plan()
            # SIGINT/SIGTERM only set a flag: the loop stops the run gracefully.
            with handling(self.stops.on_signal):
                # One that came during start-up and whose KeyboardInterrupt was lost
                # on the way (see ``interrupt``) stops the run as if it came now.
                self.stops.signals.extend(received())
                try:
                    for worker_id in range(workers):
                        self.pool.spawn(worker_id)
                    self._loop()
                    self._record_unfinished()
                    if self.stops.stopped_at:
                        self.replay.stopped_at(self.stops.stopped_at)
                finally:
                    # Under the same handlers: a late signal must not cut this write.
                    self.recorder.flush(force=True)
            if note := self.settler.budget_note(self.known):
                self.replay.note(note)
        finally:
            self.recorder.flush(force=True)
            self.pool.stop()
        if tail_idle := self.pool.tail_idle():
            self.run.tail_idle = tail_idle
        self._refresh_view(final=True)
        self._closing_lines()

    def _plan(self) -> int:
        """Make the plan; returns how many workers to start."""
        estimates, collect_est = self.sink.estimates()
        workers = pool_size(
            self.settings.workers,
            len(self.files) + len(self.direct),
            self.files,
            self.settings.split,
        )
        self.run.workers = workers
        if self.view is not None:
            self.view.started(workers, len(self.files), len(self.direct))
        self._planner = Planner(
            files=[node.nodeid for node in self.files],
            file_sizes=[_size(node) for node in self.files],
            workers=workers,
            estimates=estimates,
            collect_estimates=collect_est,
            direct_items=[(item.nodeid, item.location[0]) for item in self.direct.values()],
            split=self.settings.split,
            order=self.settings.order,
            order_bound=order_bound_files(self.direct.values()),
        )
        if self.settings.retry.retries > 0 or self.reruns:
            self._planner.expect_retries()
        return workers

    def _loop(self) -> None:
        while self.pool.live() or (self.planner.retries_waiting() and not self.stopping):
            for conn in self.pool.ready(_TICK):
                self._read(conn)
            self.recorder.flush()
            self._refresh_view()
            self.recorder.frame()
            now = time.monotonic()
            self.stops.tick(now, self.pool, self.planner)
            self._enforce_limits(now)
            if self.gate.waiting and not self.stopping and self.planner.idle():
                self._settle_waiting()
            self._release_retries(now)
            if now - self._last_feed >= _TICK:
                # Re-plan every tick too: a decision deferred while another worker
                # was collecting must never wait for an event that does not come.
                self._last_feed = now
                self._end_exited()
                self._feed_all()

    def _read(self, conn: WorkerConn) -> bool:
        """Handle what the worker sent; False once there is nothing (more) to read."""
        try:
            messages = self.pool.read(conn)
        except BlockingIOError:
            return False
        if messages is None:
            self._on_eof(conn)
            return False
        for message in messages:
            self._dispatch(conn, message)
        return not conn.closed

    def _end_exited(self) -> None:
        """A worker that exited while its socket stays open: a process a test forked
        holds the other end. pytest does not wait for such a process; aqe reads what
        the worker sent, then treats it as gone."""
        for conn in self.pool.exited():
            while self._read(conn):
                pass
            if not conn.closed:
                self._on_eof(conn)

    def _dispatch(self, conn: WorkerConn, message: ToCoordinator) -> None:
        if conn.cancelled:
            return
        match message:
            case WorkerReady(stacks=stacks, outputs=outputs, journal=journal):
                conn.stacks, conn.outputs = stacks, outputs
                conn.busy()
                limits = Limits(
                    self.settings.max_tests_per_worker,
                    self.settings.max_worker_memory,
                    self._hold(conn, journal),
                )
                if limits != Limits():
                    self.pool.send(conn.worker, [limits])
                self._feed(conn.worker)
            case Retiring():
                self._on_retiring(conn, message)
            case CollectStarted(files=files):
                conn.collecting = files
            case Importing(active=active):
                conn.importing = active
            case Collected():
                conn.collecting = ()
                conn.progress += 1
                conn.busy()
                self._on_collected(conn, message)
            case TestFinished():
                conn.progress += 1
                conn.busy()
                self._on_finished(conn, message)
            case NotFound(nodeids=nodeids):
                for nodeid in nodeids:
                    self.planner.on_finished(conn.worker, nodeid)
                    self._not_found(conn.worker, nodeid)
                self._feed(conn.worker)
            case TestInterrupted(nodeid=nodeid):
                conn.killed = True  # it leaves: the tests queued behind it are not to blame
                self.planner.on_finished(conn.worker, nodeid)
                if not self.stops.graceful:  # the first interrupt is the run's reason
                    self._interrupted_by(message)
            case NothingReported(nodeid=nodeid):
                conn.busy()
                self.planner.on_finished(conn.worker, nodeid)
                self._feed(conn.worker)
            case WarningRecorded():
                self.replay.warning(message)
            case WorkerFailed(traceback=text):
                conn.failure = text
                if self.planner.running(conn.worker) is not None:
                    return  # a test escaped pytest's protocol: it gets the blame, at EOF
                if not conn.collecting:  # while collecting, the files get the blame
                    self.run.collection_errors.append((f"aqe worker {conn.worker}", text))
                    self.replay.note(f"aqe: worker {conn.worker} failed internally:\n{text}")
            case _:
                assert_never(message)

    def _hold(self, conn: WorkerConn, journal: str) -> float:
        """How long the worker may hold a result to send it with the next ones:
        only when its journal is a file here (a remote worker's is not: its held
        results would die with it), and not under a run-wide time limit, which is
        timed from the result before. The coordinator removes a journal it can read
        when the worker ends."""
        conn.journal = journal if journal and os.path.isfile(journal) else ""
        return HOLD if conn.journal and self.settings.timeout is None else 0.0

    def _on_retiring(self, conn: WorkerConn, message: Retiring) -> None:
        conn.killed = True  # leaves on purpose: the rest of its queue is innocent
        self.recycled += 1
        if message.announce:
            self.replay.note(f"aqe: worker {conn.worker}: {message.reason}")
        if message.alone is not None and "memory" not in self.settings.isolate_on:
            # (isolated for memory, its attempts on the next tiers say more)
            self.replay.note(
                f"aqe: {message.alone} alone took a fresh worker past the memory limit: "
                f"worker {conn.worker} {message.reason}"
            )

    def _feed(self, worker: int) -> None:
        idle = self.planner.running(worker) is None
        messages = self.planner.next_messages(worker)
        if idle and messages:
            self.pool.conns[worker].busy()
        self.pool.send(worker, messages)
        for other in self.planner.broken_promises():
            if self.pool.alive(other):
                self.pool.send(other, [RunTests((), more=False)])

    def _feed_all(self) -> None:
        now = time.monotonic()
        for conn in self.pool.live():
            self.planner.set_elapsed(conn.worker, now - conn.busy_since)
        for conn in self.pool.live():
            self._feed(conn.worker)

    # -- events ----------------------------------------------------------------

    def _on_collected(self, conn: WorkerConn, message: Collected) -> None:
        for note in message.notes:
            self.replay.note(f"aqe: {note}")
        for report in self.replay.collected(message):
            if report.failed:
                self.run.collection_errors.append((report.nodeid, report.longreprtext))
            elif report.skipped:
                self._record_collect_skip(conn.worker, report)
        self.recorder.collect_times(message.seconds)
        nodeids = [item.nodeid for item in message.items]
        if self.view is not None:
            self.view.collected(nodeids)  # pytest's order, for the summary sections
        held = set()
        for item in message.items:
            if item.timeout is not None:
                self.deadlines.own[item.nodeid] = item.timeout
            if item.reruns is not None:
                self.reruns[item.nodeid] = item.reruns
                if item.reruns > 0:
                    self.planner.expect_retries()
            if item.after:
                held.add(item.nodeid)  # released by _check_waiting, on any worker
                self.gate.hold(item.nodeid, item.after)
        # A file collected again by a worker that stole some of its tests brings
        # ids the coordinator already knows: count each id once.
        fresh = set(nodeids) - self._seen
        self._seen |= fresh
        self.known += len(fresh)
        groups = {item.nodeid: item.group for item in message.items if item.group is not None}
        self.planner.hold(bool(self.gate.waiting))
        missing = self.planner.on_collected(
            conn.worker, message.files, nodeids, message.order_bound, groups, held
        )
        for nodeid in missing:
            self._not_found(conn.worker, nodeid)
        if held:
            self._check_waiting()
        if self.stopping:
            self.planner.drop_pending()
        self._feed_all()

    def _on_finished(self, conn: WorkerConn, message: TestFinished) -> None:
        nodeid = message.nodeid
        reports = self.replay.reports(message)
        # The worker waits for this failure to be counted (see ``_after_finish``).
        held = bool(self._maxfail) and any(report.failed for report in reports)
        memory = message.memory_mb if "memory" in self.settings.isolate_on else None
        result = self.settler.attempt(message.result, conn.worker, conn.tier, memory)
        if isinstance(result, Crash):  # past the memory limit alone on every tier
            self._record_crash(result, message.raw_output)
            stop, seconds = message.result.stop, message.result.duration
            self._after_finish(conn, nodeid, stop, seconds, held)
            return
        verdict = self._settle(result, conn.worker, "memory" if memory is not None else "")
        mark(reports, verdict)
        self.replay.test(nodeid, message.location, reports)
        if isinstance(verdict, Final):
            self._finished(nodeid, result.outcome)
        self.recorder.record(result, message.raw_output)
        self._after_finish(conn, nodeid, result.stop, result.stop - result.start, held)

    def _after_finish(
        self, conn: WorkerConn, nodeid: str, stop: float, seconds: float, held: bool = False
    ) -> None:
        conn.last_finish = stop
        self.planner.on_finished(conn.worker, nodeid, seconds)
        self._stop_if_failed()
        if held:  # it waits for this count: go on, or stop here (Stop already sent)
            self.pool.send(conn.worker, [Stop() if self.stopping else Proceed()])
        self._feed(conn.worker)

    def _stop_if_failed(self) -> None:
        self.stops.if_failed(self.pool, self.planner)

    # -- verdicts --------------------------------------------------------------

    def _settle(
        self, result: TestResult, worker: int, isolate_reason: str, may_repeat: bool = True
    ) -> Verdict:
        return self.settler.settle(
            result, worker, isolate_reason, may_repeat, stopping=self.stopping, known=self.known
        )

    def _spawn_alone(self, nodeid: str, tier: str) -> int:
        """A worker on ``tier`` for ``nodeid`` alone: a fresh fork (warm) or a fresh
        interpreter (cold). Returns its slot."""
        slot = self.planner.isolate_test(nodeid)
        self.pool.spawn(slot, tier)
        return slot

    def _cancel(self, slot: int) -> None:
        """Stop a hedged attempt its twin made needless; nothing it sends counts."""
        self.planner.cancel(slot)
        conn = self.pool.conns.get(slot)
        if conn is not None and not conn.closed:
            conn.cancelled = conn.killed = True
            signal_worker(conn, signal.SIGKILL)

    def _release_retries(self, now: float) -> None:
        if not self.planner.retry_due(now):
            return
        alive = {conn.worker for conn in self.pool.live()}
        for slot in self.planner.release_due(now, alive):
            if slot in alive:
                self._feed(slot)
            elif not self.pool.alive(slot):
                self.pool.spawn(slot)

    # -- dependencies ---------------------------------------------------------

    def _finished(self, nodeid: str, outcome: str) -> None:
        self.gate.end(nodeid, outcome)
        if self.gate.waiting:
            self._check_waiting()

    def _check_waiting(self) -> None:
        """Release waiting tests whose dependencies all passed; skip those with a
        dependency that did not pass, naming it."""
        for nodeid, reason in self.gate.review():
            if reason is None:
                self.planner.retry_later(nodeid, -1, 0.0)  # due now, on any worker
            else:
                self._record_skip(nodeid, reason)
        self.planner.hold(bool(self.gate.waiting))

    def _settle_waiting(self) -> None:
        """Nothing else can run: what still waits depends on tests that never ran,
        or on each other (a cycle: a mistake in the suite, reported as such)."""
        for nodeid, reason in self.gate.settle():
            self._record_skip(nodeid, reason)
        self.planner.hold(False)

    # -- results without reports of their own ----------------------------------------

    def _record_skip(self, nodeid: str, reason: str) -> None:
        self.replay.skip(nodeid, reason)
        self.recorder.record(skipped(nodeid, reason))
        self._finished(nodeid, "skipped")

    def record_collect_reports(self, reports: Sequence[CollectReport]) -> None:
        """Skips and errors of the collection this process did before the loop,
        recorded as those workers report (pytest's summary already counted them)."""
        for report in reports:
            if report.failed:
                self.run.collection_errors.append((report.nodeid, report.longreprtext))
            elif report.nodeid not in self.replay.collect_skips:
                self._record_collect_skip(-1, report)

    def _record_collect_skip(self, worker: int, report: CollectReport) -> None:
        self.replay.collect_skips.add(report.nodeid)
        self.recorder.record(collect_skipped(worker, report))
        self.gate.end(report.nodeid, "skipped")  # (not a known test: pytest collected none)

    def _record_crash(self, crash: Crash, raw_output: str = "") -> None:
        """Record a test that has no reports of its own (its worker died, or it
        never ran); pytest's hooks see a failed call, the history its outcome."""
        result = self.settler.attempts.number(crash.result(), tier=crash.tier)
        reason = ISOLATE_REASONS.get(crash.outcome, "")
        verdict = self._settle(result, crash.worker, reason, crash.retry)
        self.replay.no_report(crash.nodeid, crash.text(), crash.seconds, crash.outcome, verdict)
        if isinstance(verdict, Final):
            self._finished(crash.nodeid, crash.outcome)
        self.recorder.record(result, raw_output)
        self._stop_if_failed()

    def _not_found(self, worker: int, nodeid: str) -> None:
        self._record_crash(not_found(worker, nodeid))

    def _record_unfinished(self) -> None:
        """Work no worker could do (every one that tried died) is never dropped silently."""
        if self.stopping:
            return
        files, nodeids = self.planner.unfinished()
        for path in files:
            self._record_collection_error(path, "not collected: no worker was left to collect it")
        for nodeid in nodeids:
            self._record_crash(
                Crash(nodeid, "not run: no worker was left to run it", -1, retry=False)
            )

    def _record_collection_error(self, nodeid: str, text: str) -> None:
        self.replay.collection_error(nodeid, text)
        self.run.collection_errors.append((nodeid, text))

    # -- dead workers ----------------------------------------------------------

    def _on_eof(self, conn: WorkerConn) -> None:
        status = self.pool.reap(conn)
        # What it finished and held unsent is as if it came just before the end:
        # the blame below falls on the test it was running, never on those.
        for message in self.pool.recover(conn):
            self._dispatch(conn, message)
            if isinstance(message, TestFinished):  # the next test started then
                conn.busy_since = time.monotonic() - max(0.0, time.time() - message.result.stop)
        stacks = take_stacks(conn.stacks)
        output = take_outputs(conn.outputs)
        worker = conn.worker
        if conn.cancelled or (self.planner.done_with(worker) and not conn.collecting):
            return
        # The worker died with work in hand. What it was doing gets the blame (a
        # test, or the file it was collecting); the rest goes to a fresh worker.
        how = describe_death(conn, status)
        consumed = self._blame(conn, how, stacks, output) or conn.progress > 0
        self.planner.orphan(worker)
        barren = self.pool.barren(worker, consumed)
        if self.stopping or not self.planner.has_work(worker):
            return
        if barren < _MAX_BARREN_DEATHS:
            self.pool.spawn(worker)
            return
        # Workers of this slot die before doing anything: hand its work to a live
        # worker instead of forking replacements forever.
        self.replay.note(
            f"aqe: {_MAX_BARREN_DEATHS} workers in a row in slot {worker} died before "
            f"doing anything (last one {how}); not starting another"
        )
        alive = [c.worker for c in self.pool.live()]
        if alive:
            self.planner.transfer(worker, alive[0])
            self._feed(alive[0])

    def _blame(self, conn: WorkerConn, how: str, stacks: str, output: tuple[str, str]) -> bool:
        """Record what a dead worker is to blame on; returns whether something was
        (the run made progress)."""
        match blame(conn, self.planner.running(conn.worker), how, stacks, output):
            case Crash() as crash:
                self.planner.on_finished(conn.worker, crash.nodeid)
                self._record_crash(crash)
                return True
            case FileCrash(index=index, text=text):
                conn.collecting = ()
                self.planner.drop_file(index)
                self._record_collection_error(self.files[index].nodeid, text)
                return True
            case BatchCrash(files=files):
                conn.collecting = ()
                self.planner.collect_alone(files)  # one at a time from now on
                return False
            case None:
                return False
            case other:
                assert_never(other)

    # -- limits ----------------------------------------------------------------

    def _enforce_limits(self, now: float) -> None:
        """Stop tests that ran past their limit, and the run past its own."""
        run_limit = self.settings.run_timeout
        if run_limit is not None and not self.interrupted and now - self._started > run_limit:
            self.stops.at_once(f"run timeout of {run_limit:g}s reached", self.pool, self.planner)
        for conn in self.pool.live():
            self.deadlines.check(conn, self.planner.running(conn.worker), now)

    # -- what the user sees ----------------------------------------------------------

    def _refresh_view(self, final: bool = False) -> None:
        if self._planner is None or self._pool is None:
            return
        state = "stopping" if self.stopping else "running"
        self.recorder.refresh(
            lambda: snapshot(self.run, self.known, self.recorder.counts, self.pool, self.planner),
            self.gate.final,
            state,
            last=final,
        )

    def _closing_lines(self) -> None:
        results = self.run.results
        settler = self.settler
        lines = _summary.isolation(results, settler.isolation_passes, settler.memory_breaches)
        lines += _summary.quarantine(settler.quarantined_failures)
        ids = self._seen | set(self.direct)
        self.run.collected = len(ids)
        self.run.ran = len(ids & _summary.ran_ids(results))
        lines.append(
            _summary.accounting(len(ids), self.replay.deselected, self.run.ran, self.stopping)
        )
        for line in lines:
            self.replay.note(line)


def describe_death(conn: WorkerConn, status: int | None) -> str:
    """How a worker ended, for its test's blame: a remote backend's own account when
    it has one (its node was lost), else the wait status's."""
    cause = getattr(conn.backend, "cause", None)
    return (cause(conn.pid) if cause is not None else None) or describe_exit(status)


def pool_size(
    requested: int, units: int, files: Sequence[nodes.Collector] = (), split: str = "file"
) -> int:
    """Workers for a run: as asked, but never more than there is work for: one per
    file, unless the files may be cut and hold enough to share (a suite whose time
    sits in one big file: its classes are shared out at the tail)."""
    if units < requested and split != "file" and sum(map(_size, files)) >= SHARE_BYTES:
        return requested
    return max(1, min(requested, units))


#: Fewer files than workers get every worker asked for when they are this large
#: (about a few hundred tests): an idle worker may take the tail of one of them.
SHARE_BYTES = 20_000


def _size(node: nodes.Collector) -> int:
    path = getattr(node, "path", None)
    try:
        return os.stat(path).st_size if path is not None else 1000
    except OSError:
        return 1000
