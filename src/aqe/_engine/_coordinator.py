"""The coordinator: one event loop that feeds workers, replays results, never waits on the dead.

It runs inside the user's pytest session (aqe's plugin owns ``pytest_runtestloop``).
Every report a worker sends is replayed through pytest's own reporting hooks, so
``--junitxml``, the terminal summary, ``--lf`` bookkeeping and third-party
reporting plugins see every result exactly as in a serial run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import selectors
import signal
import socket
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from _pytest import nodes
from _pytest.reports import CollectErrorRepr, CollectReport

from .. import _transport
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
    ToWorker,
    WarningRecorded,
    WorkerFailed,
    WorkerReady,
    assert_never,
)
from .._model import (
    FAILING_OUTCOMES,
    Outcome,
    Progress,
    RunRecord,
    TestResult,
    cap_text,
    tier_figures,
)
from .._signals import handling, received
from ._backend import Launcher
from ._fork import describe_exit
from ._junitxml import Bridge, junit_options
from ._limits import (
    STACKS_SIGNAL,
    EngineSettings,
    marker_timeout,
    pytest_timeout_active,
    trim_stacks,
)
from ._order import order_bound_files
from ._plan import Estimate, Planner
from ._retry import Retries, marker_reruns
from ._status import StatusFile, WorkerState, first_failures
from ._worker import COLLECT_ERROR_REPR, sweep_worker_files

_TICK = 0.1
#: Outcomes that let a test that depends on this one run.
_PASSING = frozenset({"passed", "flaky", "xpassed"})
#: How a skip reason says what became of a dependency.
_VERB = {
    "failed": "failed",
    "error": "had an error",
    "crashed": "crashed",
    "timeout": "timed out",
    "skipped": "was skipped",
    "xfailed": "failed (xfail)",
}
#: The tier a test goes to after it crashed or hung on one.
_NEXT_TIER = {"hot": "warm", "warm": "cold"}
#: How long a worker gets to write its stacks before it is killed anyway.
_STACKS_WAIT = 0.5
#: Replacements forked for a slot whose workers keep dying before doing anything.
_MAX_BARREN_DEATHS = 3


class RunSink(Protocol):
    """Where the coordinator sends what it learns; the CLI's run controller."""

    def estimates(self) -> tuple[Mapping[str, Estimate], Mapping[str, float]]: ...

    def record(self, results: Sequence[TestResult], collect_times: Mapping[str, float]) -> None: ...


class ProgressView(Protocol):
    """The terminal's live view; called from the loop, never from a thread."""

    def progress(self, snapshot: Progress) -> None: ...

    def test_output(self, result: TestResult, text: str) -> None: ...

    def flush(self) -> None: ...

    def started(self, workers: int, files: int, direct: int) -> None: ...

    def collected(self, nodeids: Sequence[str]) -> None: ...


@dataclass(slots=True)
class _Conn:
    worker: int
    pid: int
    sock: socket.socket
    reader: _transport.FrameReader = field(default_factory=_transport.FrameReader)
    last_finish: float = 0.0
    closed: bool = False
    #: Files the worker said it is collecting right now.
    collecting: tuple[int, ...] = ()
    #: It makes what other test files import (see ``Importing``).
    importing: bool = False
    #: Batches collected plus tests finished: did this worker get anything done?
    progress: int = 0
    #: Traceback of an internal error the worker reported before it exited.
    failure: str = ""
    #: Monotonic time the worker started what it does now (the head of its queue).
    busy_since: float = 0.0
    #: File its faulthandler writes stacks to (see ``_limits``).
    stacks: str = ""
    #: Files holding the running test's output: uncaptured, stdout, stderr.
    outputs: tuple[str, ...] = ()
    #: (node id, limit, seconds run) of a test this coordinator stopped.
    timed_out: tuple[str, float, float] | None = None
    #: When to SIGKILL a worker asked for its stacks.
    kill_at: float | None = None
    #: Killed by this coordinator on purpose: its running test is not to blame.
    killed: bool = False
    #: A hedged attempt made needless by its twin: nothing it sends counts.
    cancelled: bool = False
    #: hot (a shared worker), warm (a fresh fork for one test), cold (a fresh
    #: interpreter for one test).
    tier: str = "hot"
    launcher: Launcher | None = None


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
        self.session = session
        self.settings = settings
        #: Per-test limits from ``timeout`` markers (0.0: explicitly none).
        self.timeouts: dict[str, float] = {}
        for item in direct_items:
            limit = marker_timeout(item)
            if limit is not None:
                self.timeouts[item.nodeid] = limit
        self._marker_grace = 1.0 if pytest_timeout_active(session.config) else 0.0
        #: Why the run stopped early (pytest's "Interrupted: ..."), if it did.
        self.interrupted = ""
        #: A mistake in the suite found while running (a dependency cycle): exit 4.
        self.usage_error = ""
        #: Tests held back until the tests they depend on finish: node id -> refs.
        self.waiting: dict[str, tuple[str, ...]] = {}
        #: Each test's outcome once no attempt of it is left to run.
        self.final: dict[str, str] = {}
        self._seen_after: set[str] = set()
        #: Signals received during the loop (SIGINT/SIGTERM), in order.
        self._signals: list[int] = []
        #: Signals that had come when the graceful stop began (a later one kills).
        self._signals_at_stop = 0
        self._grace_until: float | None = None
        #: -x/--maxfail: failures that stop the run (0: none do), and pytest's
        #: "stopping after N failures" as it was at the Nth.
        self._maxfail: int = session.config.getoption("maxfail", 0) or 0
        self._stopped_at = ""
        self.retries = Retries(settings.retry)
        #: Attempts made so far per node id.
        self._attempts: dict[str, int] = {}
        #: Tests with a failing attempt so far: a later pass makes them flaky.
        self._failed_once: set[str] = set()
        #: Per test isolated for memory: (tier, resident MB after it) of each attempt
        #: that left its worker past --max-worker-memory.
        self.memory_breaches: dict[str, list[tuple[str, float]]] = {}
        #: Per-test retry counts from ``flaky(reruns=N)`` markers.
        self.reruns: dict[str, int] = {}
        for item in direct_items:
            reruns = marker_reruns(item)
            if reruns is not None:
                self.reruns[item.nodeid] = reruns
        #: Workers replaced after reaching --max-tests-per-worker/--max-worker-memory.
        self.recycled = 0
        self._started = time.monotonic()
        self.config = session.config
        self.run = run
        self.sink = sink
        self.view = view
        self.files = list(files)
        self.direct = {item.nodeid: item for item in direct_items}
        self.selector = selectors.DefaultSelector()
        self.conns: dict[int, _Conn] = {}
        self.known = len(self.direct)
        self._seen: set[str] = set()
        self._deselected: set[str] = set()
        #: Per worker slot: how many workers in a row died having done nothing.
        self._barren: dict[int, int] = {}
        self._collect_warnings: set[tuple[str, str, str, int]] = set()
        #: Files whose collection was skipped (recorded once, however often collected).
        self._collect_skips: set[str] = set()
        self.pending_results: list[TestResult] = []
        self.pending_collect: dict[str, float] = {}
        self.stopping = False
        self.counts: dict[str, int] = {}
        self._last_flush = time.monotonic()
        self._last_view = 0.0
        self._last_feed = 0.0
        self._launcher: Launcher | None = None
        self._cold_factory: Callable[[], Launcher] | None = None
        self._cold: Launcher | None = None
        #: A test that hung on a shared worker runs alone on both tiers at once:
        #: node id -> the slots whose attempt has not ended yet.
        self._hedged: dict[str, set[int]] = {}
        #: Tests that failed on a shared worker and passed alone: (node id, tier).
        self.isolation_passes: list[tuple[str, str]] = []
        #: Quarantined tests whose final attempt failed (they do not fail the run).
        self.quarantined_failures: list[str] = []
        #: Warning classes workers named that this process has not imported.
        self._stand_ins: dict[str, type[Warning]] = {}
        self.planner: Planner | None = None
        self._status = (
            StatusFile(settings.status_path, run.run_id) if settings.status_path else None
        )
        self._junit_setup()

    # -- setup -----------------------------------------------------------------

    def _junit_setup(self) -> None:
        """aqe's JUnit XML takes the run's ``junit_*`` options; pytest's own
        ``--junitxml``, if on, gets what workers recorded (see ``_junitxml``)."""
        from _pytest.junitxml import xml_key

        self.run.junit = junit_options(self.config)
        logxml = self.config.stash.get(xml_key, None)
        if logxml is not None:
            self.config.pluginmanager.register(Bridge(logxml), "aqe-junit-bridge")

    def execute(
        self, launcher: Launcher, cold_launcher: Callable[[], Launcher] | None = None
    ) -> None:
        if not self.files and not self.direct:
            return
        self._launcher = launcher
        self._cold_factory = cold_launcher
        sweep_worker_files()
        try:
            estimates, collect_est = self.sink.estimates()
            workers = pool_size(self.settings.workers, len(self.files) + len(self.direct))
            self.run.workers = workers
            if self.view is not None:
                self.view.started(workers, len(self.files), len(self.direct))
            self.planner = Planner(
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
                self.planner.expect_retries()
            # SIGINT/SIGTERM only set a flag: the loop stops the run gracefully.
            with handling(self._on_signal):
                # One that came during start-up and whose KeyboardInterrupt was lost
                # on the way (see ``interrupt``) stops the run as if it came now.
                self._signals.extend(received())
                try:
                    for worker_id in range(workers):
                        self._spawn(worker_id)
                    self._loop()
                    self._record_unfinished()
                    if self._stopped_at:
                        # Failures of tests that were already running count, but the
                        # message stays pytest's: where the run stopped.
                        self.session.shouldfail = self._stopped_at
                finally:
                    # Under the same handlers: a late signal must not cut this write.
                    self._flush(force=True)
            if self.retries.refused_by_budget:
                share = self.settings.retry.budget
                self._write_error(
                    f"aqe: retry budget spent: {self.retries.spent} retries "
                    f"({share:.0%} of {self.known} tests); "
                    f"{self.retries.refused_by_budget} more failures were not retried"
                )
        finally:
            self._flush(force=True)
            for conn in self.conns.values():
                self._close(conn)
            launcher.stop()
            if self._cold is not None:
                self._cold.stop()
            self.selector.close()
        self._tail_idle()
        self._refresh_view(final=True)
        self._report_isolation()
        self._report_quarantine()
        self._report_accounting()

    def _spawn(self, worker_id: int, tier: str = "hot") -> None:
        assert self._launcher is not None
        launcher = self._launcher
        if tier == "cold":
            if self._cold is None and self._cold_factory is not None:
                self._cold = self._cold_factory()
            launcher = self._cold or launcher
        pid, sock = launcher.spawn(worker_id)
        sock.setblocking(False)
        conn = _Conn(worker_id, pid, sock, last_finish=time.time(), busy_since=time.monotonic())
        conn.tier, conn.launcher = tier, launcher
        self.conns[worker_id] = conn
        self.selector.register(sock, selectors.EVENT_READ, conn)

    # -- loop ------------------------------------------------------------------

    def _loop(self) -> None:
        assert self.planner is not None
        while any(not conn.closed for conn in self.conns.values()) or (
            self.planner.delayed and not self.stopping
        ):
            for key, _ in self.selector.select(_TICK):
                self._read(key.data)
            self._flush()
            self._refresh_view()
            if self.view is not None:
                self.view.flush()
            now = time.monotonic()
            self._on_signals(now)
            self._enforce_limits(now)
            if self.waiting and not self.stopping and self._idle():
                self._settle_waiting()
            self._release_retries(now)
            if now - self._last_feed >= _TICK:
                # Re-plan every tick too: a decision deferred while another worker
                # was collecting must never wait for an event that does not come.
                self._last_feed = now
                self._end_exited()
                self._feed_all()

    def _read(self, conn: _Conn) -> bool:
        """Handle what the worker sent; False once there is nothing (more) to read."""
        try:
            data = conn.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:
            self._on_eof(conn)
            return False
        for message in conn.reader.feed(data):
            self._dispatch(conn, message)
        return not conn.closed

    def _end_exited(self) -> None:
        """A worker that exited while its socket stays open: a process a test forked
        holds the other end (it inherited it). pytest does not wait for such a
        process; aqe reads what the worker sent, then treats it as gone."""
        for conn in list(self.conns.values()):
            launcher = conn.launcher or self._launcher
            if conn.closed or launcher is None or launcher.poll(conn.pid) is None:
                continue
            while self._read(conn):
                pass
            if not conn.closed:
                self._on_eof(conn)

    def _dispatch(self, conn: _Conn, message: ToCoordinator) -> None:
        if conn.cancelled:
            return
        match message:
            case WorkerReady(stacks=stacks, outputs=outputs):
                conn.stacks = stacks
                conn.outputs = outputs
                conn.busy_since = time.monotonic()
                limits = Limits(self.settings.max_tests_per_worker, self.settings.max_worker_memory)
                if limits != Limits():
                    self._send(conn.worker, [limits])
                self._feed(conn.worker)
            case Retiring(reason=reason, alone=alone, announce=announce):
                conn.killed = True  # leaves on purpose: the rest of its queue is innocent
                self.recycled += 1
                if announce:
                    self._write_error(f"aqe: worker {conn.worker}: {reason}")
                if alone is not None and "memory" not in self.settings.isolate_on:
                    # (isolated for memory, its attempts on the next tiers say more)
                    self._write_error(
                        f"aqe: {alone} alone took a fresh worker past the memory limit: "
                        f"worker {conn.worker} {reason}"
                    )
            case CollectStarted(files=files):
                conn.collecting = files
            case Importing(active=active):
                conn.importing = active
            case Collected():
                conn.collecting = ()
                conn.progress += 1
                conn.busy_since = time.monotonic()
                self._on_collected(conn, message)
            case TestFinished():
                conn.progress += 1
                conn.busy_since = time.monotonic()
                self._on_finished(conn, message)
            case NotFound(nodeids=nodeids):
                assert self.planner is not None
                for nodeid in nodeids:
                    self.planner.on_finished(conn.worker, nodeid)
                    self._not_found(conn.worker, nodeid)
                self._feed(conn.worker)
            case TestInterrupted(nodeid=nodeid, where=where):
                assert self.planner is not None
                conn.killed = True  # it leaves: the tests queued behind it are not to blame
                self.planner.on_finished(conn.worker, nodeid)
                if self._grace_until is None:  # the first interrupt is the run's reason
                    # (pytest's banner shows a crash location when its text names
                    # KeyboardInterrupt: this one would be aqe's own line)
                    why = f"{nodeid} raised KeyboardInterrupt"
                    self._stop_gracefully(f"{nodeid} at {where}", why)
            case NothingReported(nodeid=nodeid):
                conn.busy_since = time.monotonic()
                assert self.planner is not None
                self.planner.on_finished(conn.worker, nodeid)
                self._feed(conn.worker)
            case WarningRecorded():
                self._on_warning(message)
            case WorkerFailed(traceback=text):
                conn.failure = text
                plan = self.planner.workers[conn.worker] if self.planner else None
                if plan is not None and plan.outstanding:
                    return  # a test escaped pytest's protocol: it gets the blame, at EOF
                if not conn.collecting:  # while collecting, the files get the blame
                    self.run.collection_errors.append((f"aqe worker {conn.worker}", text))
                    self._write_error(f"aqe: worker {conn.worker} failed internally:\n{text}")
            case _:
                assert_never(message)

    def _send(self, worker: int, messages: Sequence[ToWorker]) -> None:
        conn = self.conns[worker]
        for message in messages:
            try:
                conn.sock.setblocking(True)
                _transport.send(conn.sock, message)
            except OSError:
                return
            finally:
                with contextlib.suppress(OSError):
                    conn.sock.setblocking(False)

    def _feed(self, worker: int) -> None:
        assert self.planner is not None
        idle = not self.planner.workers[worker].outstanding
        messages = self.planner.next_messages(worker)
        if idle and messages:
            self.conns[worker].busy_since = time.monotonic()
        self._send(worker, messages)
        for other in self.planner.broken_promises():
            if other in self.conns and not self.conns[other].closed:
                self._send(other, [RunTests((), more=False)])

    def _feed_all(self) -> None:
        assert self.planner is not None
        now = time.monotonic()
        for worker, conn in self.conns.items():
            if not conn.closed:
                self.planner.set_elapsed(worker, now - conn.busy_since)
        for worker, conn in self.conns.items():
            if not conn.closed:
                self._feed(worker)

    # -- events ----------------------------------------------------------------

    def _on_collected(self, conn: _Conn, message: Collected) -> None:
        assert self.planner is not None
        hook = self.config.hook
        for note in message.notes:
            self._write_error(f"aqe: {note}")
        for data in message.reports:
            report = hook.pytest_report_from_serializable(config=self.config, data=data)
            if report.__dict__.pop(COLLECT_ERROR_REPR, False) and isinstance(report.longrepr, str):
                report.longrepr = CollectErrorRepr(report.longrepr)
            if report.skipped and report.nodeid in self._collect_skips:
                continue  # the file collected again: pytest counts its skip once
            hook.pytest_collectreport(report=report)
            if report.failed:
                self.run.collection_errors.append((report.nodeid, report.longreprtext))
            elif report.skipped:
                self._record_collect_skip(conn.worker, report)
        # A file collected again (a replacement worker, a tier re-run, a stolen tail)
        # deselects the same tests again: pytest counts each once.
        unseen = [n for n in message.deselected if n not in self._deselected]
        if unseen:
            self._deselected.update(unseen)
            hook.pytest_deselected(items=[_Deselected(n) for n in unseen])
        self.pending_collect.update(message.seconds)
        nodeids = [item.nodeid for item in message.items]
        if self.view is not None:
            self.view.collected(nodeids)  # pytest's order, for the summary sections
        for item in message.items:
            if item.timeout is not None:
                self.timeouts[item.nodeid] = item.timeout
            if item.reruns is not None:
                self.reruns[item.nodeid] = item.reruns
                if item.reruns > 0:
                    self.planner.expect_retries()
        # A file collected again by a worker that stole some of its tests brings
        # ids the coordinator already knows: count each id once.
        fresh = set(nodeids) - self._seen
        self._seen |= fresh
        self.known += len(fresh)
        groups = {item.nodeid: item.group for item in message.items if item.group is not None}
        held = set()
        for item in message.items:
            if not item.after:
                continue
            held.add(item.nodeid)  # released by _check_waiting, on any worker
            if item.nodeid not in self.final and item.nodeid not in self._seen_after:
                self._seen_after.add(item.nodeid)
                self.waiting[item.nodeid] = item.after
        self.planner.hold(bool(self.waiting))
        missing = self.planner.on_collected(
            conn.worker, message.files, nodeids, message.order_bound, groups, held
        )
        for nodeid in missing:
            self._not_found(conn.worker, nodeid)
        if held:
            self._check_waiting()
        if self.stopping:
            self._drop_pending()
        self._feed_all()

    def _on_finished(self, conn: _Conn, message: TestFinished) -> None:
        assert self.planner is not None
        hook = self.config.hook
        nodeid, location = message.nodeid, message.location
        reports = [
            hook.pytest_report_from_serializable(config=self.config, data=data)
            if isinstance(data, dict)
            else data
            for data in message.reports
        ]
        result = message.result
        # The worker waits for this failure to be counted (see ``_after_finish``).
        held = bool(self._maxfail) and any(report.failed for report in reports)
        if conn.tier != "hot":
            result = dataclasses.replace(result, tier=conn.tier)
        memory = message.memory_mb if "memory" in self.settings.isolate_on else None
        if memory is not None:
            self.memory_breaches.setdefault(nodeid, []).append((conn.tier, memory))
            if _NEXT_TIER.get(conn.tier) is None:
                # Past the limit alone on every tier: that is the test's verdict.
                self._record_crash(
                    nodeid,
                    self._memory_verdict(nodeid),
                    conn.worker,
                    "crashed",
                    error_type="MemoryLimit",
                    seconds=result.duration,
                    tier=conn.tier,
                    output=(result.stdout, result.stderr),
                    retry=False,
                )
                if message.raw_output and self.view is not None:
                    self.view.test_output(result, message.raw_output)
                self._after_finish(conn, nodeid, result.stop, result.duration, held)
                return
            if result.outcome not in FAILING_OUTCOMES:
                limit = self.settings.max_worker_memory
                result = dataclasses.replace(
                    result,
                    error_type="MemoryLimit",
                    message=f"worker at {memory:.0f} MB after this test, past the "
                    f"{limit:g} MB limit (--max-worker-memory)",
                )
        result = self._attempt(result)
        if result.outcome == "flaky" and conn.tier != "hot":
            self.isolation_passes.append((nodeid, conn.tier))
        passing = result.outcome not in FAILING_OUTCOMES
        if self._hedge_ended(nodeid, conn.worker, passing):
            for report in reports:  # the test's other tier is still running it
                if report.failed:
                    report.outcome = "rerun"
        elif memory is not None and self._isolate(result, "memory"):
            for report in reports:  # this attempt stands only if it stays under alone
                if report.failed or report.when == "call":
                    report.outcome = "rerun"
        elif result.outcome in FAILING_OUTCOMES and self._retry(result, conn.worker):
            for report in reports:
                if report.failed:
                    report.outcome = "rerun"  # not a failure (yet): it runs again
        elif result.outcome == "flaky":
            for report in reports:
                setattr(report, "aqe_outcome", "flaky")  # noqa: B010 - pytest reports take extra attributes
        elif result.quarantined and result.outcome in FAILING_OUTCOMES:
            self.quarantined_failures.append(nodeid)
            for report in reports:
                if report.failed:
                    report.outcome = "quarantined"  # recorded, shown apart, not a failure
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        for report in reports:
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
        if not any(report.outcome == "rerun" for report in reports):
            self._finished(nodeid, result.outcome)
        self.run.results.append(result)
        self.pending_results.append(result)
        self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1
        if result.outcome in FAILING_OUTCOMES:
            self._last_view = 0.0  # show the new count with the failure, not a tick later
        if message.raw_output and self.view is not None:
            self.view.test_output(result, message.raw_output)
        self._after_finish(conn, nodeid, result.stop, result.stop - result.start, held)

    def _after_finish(
        self, conn: _Conn, nodeid: str, stop: float, seconds: float, held: bool = False
    ) -> None:
        assert self.planner is not None
        conn.last_finish = stop
        self.planner.on_finished(conn.worker, nodeid, seconds)
        self._stop_if_failed()
        if held:  # it waits for this count: go on, or stop here (Stop already sent)
            self._send(conn.worker, [Stop() if self.stopping else Proceed()])
        self._feed(conn.worker)

    def _stop_if_failed(self) -> None:
        """-x/--maxfail: pytest's session counted the replayed failures and set
        ``shouldfail`` at the Nth. Stop scheduling and have every worker drop the
        tests it holds queued; tests already running finish and are reported."""
        if self.stopping or not (self.session.shouldfail or self.session.shouldstop):
            return
        self._stopped_at = str(self.session.shouldfail or "")
        self.stopping = True
        self._drop_pending()
        for conn in self.conns.values():
            if not conn.closed:
                conn.killed = True  # its queue is dropped on purpose, not lost to a crash
                self._send(conn.worker, [Stop()])

    def _memory_figures(self, nodeid: str) -> str:
        """ "234 MB hot, 239 MB warm": its worker's memory after each attempt past the limit."""
        return ", ".join(f"{mb:.0f} MB {tier}" for tier, mb in self.memory_breaches[nodeid])

    def _memory_verdict(self, nodeid: str) -> str:
        return (
            f"MemoryLimit: needs more than the {self.settings.max_worker_memory:g} MB limit "
            "(--max-worker-memory) even alone; its worker's resident memory after it: "
            + self._memory_figures(nodeid)
        )

    # -- retries ---------------------------------------------------------------

    def _attempt(self, result: TestResult) -> TestResult:
        """Number the attempt; a pass after failed attempts is ``flaky``."""
        attempt = self._attempts.get(result.nodeid, 0) + 1
        self._attempts[result.nodeid] = attempt
        if result.nodeid in self.settings.quarantined:
            result = dataclasses.replace(result, quarantined=True)
        if result.outcome in FAILING_OUTCOMES:
            self._failed_once.add(result.nodeid)
        if attempt == result.attempt:
            return result
        outcome = result.outcome
        if outcome == "passed" and result.nodeid in self._failed_once:
            outcome = "flaky"
        return dataclasses.replace(result, attempt=attempt, outcome=outcome)

    def _retry(self, result: TestResult, worker: int) -> bool:
        """Schedule another attempt of a failed one, if the policy allows it."""
        assert self.planner is not None
        if self.stopping:
            return False
        error = f"{result.error_type or ''}: {result.message or ''}"
        delay = self.retries.next_delay(
            result.attempt, self.reruns.get(result.nodeid), error, self.known
        )
        if delay is None:
            return False
        self.planner.retry_later(result.nodeid, worker, time.monotonic() + delay)
        return True

    def _isolate(self, result: TestResult, reason: str) -> bool:
        """Run a test that crashed, hung or left its worker past the memory limit
        again alone, on the next tier: a fresh fork (warm), then a fresh interpreter
        (cold)."""
        assert self.planner is not None
        if result.nodeid in self._hedged:
            return False  # its other tier is still at it: that attempt decides
        tier = _NEXT_TIER.get(result.tier)
        if tier is None or reason not in self.settings.isolate_on or self.stopping:
            return False
        # A hang costs a whole timeout per tier: run the warm and cold attempts side
        # by side (hedged) rather than one timeout after the other.
        tiers = [tier, "cold"] if reason == "timeout" and tier == "warm" else [tier]
        slots = set()
        for each in tiers:
            slot = self.planner.isolate_test(result.nodeid)
            self._spawn(slot, each)
            slots.add(slot)
        if len(slots) > 1:
            self._hedged[result.nodeid] = slots
        return True

    def _hedge_ended(self, nodeid: str, slot: int, passing: bool) -> bool:
        """An attempt of a hedged test ended on ``slot``. Returns whether another is
        still running (this one is then not the verdict); a passing one is the
        verdict at once, and the others are stopped unrecorded."""
        others = self._hedged.get(nodeid)
        if others is None:
            return False
        others.discard(slot)
        if others and not passing:
            return True
        assert self.planner is not None
        for other in others:  # (the entry stays, empty: no tier after these)
            self.planner.cancel(other)
            conn = self.conns.get(other)
            if conn is not None and not conn.closed:
                conn.cancelled = conn.killed = True
                _kill(conn.pid, signal.SIGKILL)
        others.clear()
        return False

    def _report_accounting(self) -> None:
        """How many ids pytest's collection gave and how many ran, always: a run
        never covers fewer tests than it says without saying so."""
        ids = self._seen | set(self.direct)
        ran = {
            result.nodeid
            for result in self.run.results
            if not (result.message or "").startswith("not run")
        }
        self.run.collected, self.run.ran = len(ids), len(ids & ran)
        text = f"aqe: collected {len(ids)} tests"
        if self._deselected:
            text += f" ({len(self._deselected)} deselected)"
        text += f", ran {self.run.ran}"
        if missing := len(ids) - self.run.ran:
            why = "the run stopped early" if self.stopping else "see the errors above"
            text += f"; {missing} did not run ({why})"
        self._write_error(text)

    def _report_quarantine(self) -> None:
        if not self.quarantined_failures:
            return
        shown = ", ".join(self.quarantined_failures[:10])
        more = len(self.quarantined_failures) - 10
        self._write_error(
            f"aqe: {len(self.quarantined_failures)} quarantined tests failed (recorded; "
            f"they do not fail the run): {shown}" + (f" and {more} more" if more > 0 else "")
        )

    def _report_isolation(self) -> None:
        """Tier figures, and tests that passed only alone (they likely depend on
        state other tests leave behind)."""
        tiers = tier_figures(self.run.results)
        if set(tiers) <= {"hot"}:
            return
        parts = [
            f"{tier} {fig['tests']:g} tests, {fig['failures']:g} failed, "
            f"{fig['fallbacks']:g} sent on, median {fig['median_seconds']:.2f}s, "
            f"{fig['workers']:g} workers"
            for tier, fig in tiers.items()
        ]
        self._write_error("aqe: tiers: " + "; ".join(parts))
        for nodeid, tier in self.isolation_passes:
            self._write_error(
                f"aqe: {nodeid} passed only alone ({tier} tier): it may depend on state "
                "other tests leave behind"
            )
        last_tier = {result.nodeid: result.tier for result in self.run.results}
        for nodeid, breaches in self.memory_breaches.items():
            if last_tier.get(nodeid) in {tier for tier, _ in breaches}:
                continue  # the verdict already says it, or it never ran alone
            figures = self._memory_figures(nodeid)
            if len(breaches) == 1:
                self._write_error(
                    f"aqe: {nodeid} went past the memory limit only among other tests "
                    f"({figures}); alone it stayed under: memory other tests kept was "
                    "still in its worker"
                )
            else:
                self._write_error(
                    f"aqe: {nodeid} went past the memory limit on forked workers ({figures}) "
                    f"but not in a fresh interpreter ({last_tier[nodeid]} tier)"
                )

    # -- dependencies ---------------------------------------------------------

    def _finished(self, nodeid: str, outcome: str) -> None:
        self.final[nodeid] = outcome
        if self.waiting:
            self._check_waiting()

    def _deps_of(self, refs: tuple[str, ...]) -> list[tuple[str, str | None]]:
        """(ref, outcome so far) per dependency; a ref that names a parametrized test
        stands for all its instances (a failing one counts first)."""
        states: list[tuple[str, str | None]] = []
        for ref in refs:
            if ref in self.final:
                states.append((ref, self.final[ref]))
                continue
            family = [o for n, o in self.final.items() if n.startswith(ref + "[")]
            bad = [o for o in family if o not in _PASSING]
            states.append((ref, bad[0] if bad else (family[0] if family else None)))
        return states

    def _check_waiting(self) -> None:
        """Release waiting tests whose dependencies all passed; skip those with a
        dependency that did not pass, naming it."""
        assert self.planner is not None
        for nodeid, refs in list(self.waiting.items()):
            if nodeid not in self.waiting:
                continue  # settled by a skip recorded in this loop
            states = self._deps_of(refs)
            failed = [(ref, o) for ref, o in states if o is not None and o not in _PASSING]
            if failed:
                ref, outcome = failed[0]
                del self.waiting[nodeid]
                self._record_skip(nodeid, f"depends on {ref}, which {_VERB.get(outcome, outcome)}")
            elif all(o is not None for _, o in states):
                del self.waiting[nodeid]
                self.planner.retry_later(nodeid, -1, 0.0)  # due now, on any worker
        self.planner.hold(bool(self.waiting))

    def _settle_waiting(self) -> None:
        """Nothing else can run: what still waits depends on tests that never ran,
        or on each other (a cycle: a mistake in the suite, reported as such)."""
        assert self.planner is not None
        graph = {n: [r for r in refs if r in self.waiting] for n, refs in self.waiting.items()}
        cycle = _find_cycle(graph)
        loop = " -> ".join([*cycle, cycle[0]]) if cycle else ""
        if cycle:
            self.usage_error = f"dependency cycle: {loop}"
        for nodeid, refs in list(self.waiting.items()):
            if nodeid not in self.waiting:
                continue
            missing = [ref for ref, o in self._deps_of(refs) if o is None]
            reason = (
                f"in a dependency cycle: {loop}"
                if nodeid in cycle
                else f"depends on {missing[0] if missing else refs[0]}, which did not run"
            )
            del self.waiting[nodeid]
            self._record_skip(nodeid, reason)
        self.planner.hold(False)

    def _idle(self) -> bool:
        assert self.planner is not None
        return self.planner.idle()

    def _record_skip(self, nodeid: str, reason: str) -> None:
        from _pytest.reports import TestReport

        file = nodeid.split("::", 1)[0]
        location = (file, None, nodeid.split("::", 1)[-1])
        report = TestReport(
            nodeid=nodeid,
            location=location,
            keywords={},
            outcome="skipped",
            longrepr=(file, 0, f"Skipped: {reason}"),
            when="setup",
        )
        hook = self.config.hook
        hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
        hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
        now = time.time()
        result = TestResult(
            nodeid=nodeid,
            file=file,
            line=None,
            outcome="skipped",
            phases={},
            worker=-1,
            when="setup",
            error_type="Skipped",
            message=reason,
            start=now,
            stop=now,
        )
        self.run.results.append(result)
        self.pending_results.append(result)
        self.counts["skipped"] = self.counts.get("skipped", 0) + 1
        self._finished(nodeid, "skipped")

    def record_collect_reports(self, reports: Sequence[CollectReport]) -> None:
        """Skips and errors of the collection this process did before the loop,
        recorded as those workers report (pytest's summary already counted them)."""
        for report in reports:
            if report.failed:
                self.run.collection_errors.append((report.nodeid, report.longreprtext))
            elif report.nodeid not in self._collect_skips:
                self._record_collect_skip(-1, report)

    def _record_collect_skip(self, worker: int, report: CollectReport) -> None:
        """A module or conftest skipped while collecting (``allow_module_level``,
        ``importorskip``): pytest's summary counts it as skipped, so its result does."""
        self._collect_skips.add(report.nodeid)
        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, (tuple, list)) else str(longrepr)
        text = str(tuple(longrepr)) if isinstance(longrepr, (tuple, list)) else str(longrepr)
        now = time.time()
        result = TestResult(
            nodeid=report.nodeid,
            file=report.nodeid.split("::", 1)[0],
            line=None,
            outcome="skipped",
            phases={},
            worker=worker,
            when="collect",
            message=reason,
            traceback=text,  # what pytest's junitxml writes for it
            start=now,
            stop=now,
        )
        self.run.results.append(result)
        self.pending_results.append(result)
        self.counts["skipped"] = self.counts.get("skipped", 0) + 1
        self.final[report.nodeid] = "skipped"  # (not a known test: pytest collected none)

    def _release_retries(self, now: float) -> None:
        assert self.planner is not None
        if not self.planner.delayed or self.planner.delayed[0][0] > now:
            return
        alive = {worker for worker, conn in self.conns.items() if not conn.closed}
        for slot in self.planner.release_due(now, alive):
            if slot in alive:
                self._feed(slot)
            elif slot not in self.conns or self.conns[slot].closed:
                self._spawn(slot)

    def _on_warning(self, message: WarningRecorded) -> None:
        if message.when == "collect":
            # Every worker imports what the test modules import (see _preimport),
            # so one import-time warning can arrive once per worker; pytest shows it once.
            key = (message.category, message.message, message.filename, message.lineno)
            if key in self._collect_warnings:
                return
            self._collect_warnings.add(key)
        category = self._warning_class(message.category)
        try:
            instance = category(message.message)
        except Exception:  # a class whose constructor wants more than a message
            category = self._warning_class(message.category, stand_in=True)
            instance = category(message.message)
        warning = warnings.WarningMessage(
            message=instance,
            category=category,
            filename=message.filename,
            lineno=message.lineno,
        )
        self.config.hook.pytest_warning_recorded.call_historic(
            kwargs={
                "warning_message": warning,
                "when": message.when,
                "nodeid": message.nodeid,
                "location": None,
            }
        )

    def _warning_class(self, name: str, stand_in: bool = False) -> type[Warning]:
        """The class a worker named (``module:qualname``): the real one when this
        process has imported it, else a stand-in of that name, which is all the
        summary shows (the worker has already applied the warning filters)."""
        module, _, qualname = name.rpartition(":")
        found: Any = None if stand_in else sys.modules.get(module or "builtins")
        for part in qualname.split("."):
            found = getattr(found, part, None)
        if isinstance(found, type) and issubclass(found, Warning):
            return found
        cached = self._stand_ins.get(name)
        if cached is None:
            short = qualname.rsplit(".", 1)[-1] or "UserWarning"
            cached = type(short, (UserWarning,), {"__module__": module, "__qualname__": qualname})
            self._stand_ins[name] = cached
        return cached

    def _on_eof(self, conn: _Conn) -> None:
        assert self.planner is not None and self._launcher is not None
        self._close(conn)
        status = (conn.launcher or self._launcher).reap(conn.pid)
        stacks = _take_stacks(conn.stacks)
        output = _take_outputs(conn.outputs)
        worker = conn.worker
        plan = self.planner.workers[worker]
        if conn.cancelled or (plan.shut_down and not plan.outstanding and not conn.collecting):
            return
        # The worker died with work in hand. What it was doing gets the blame (a
        # test, or the file it was collecting); the rest goes to a fresh worker.
        how = describe_exit(status)
        consumed = conn.progress > 0
        if conn.timed_out is not None:
            nodeid, limit, ran = conn.timed_out
            # If the test finished just before the kill, the one after it is innocent:
            # it goes back to the queue with the rest.
            if plan.outstanding and plan.outstanding[0][0] == nodeid:
                plan.pop(nodeid)
                self._record_timeout(conn, nodeid, limit, ran, stacks, output)
                consumed = True
        elif conn.killed or conn.importing:
            pass  # stopped or retired on purpose, or in another file's import: no blame
        elif conn.collecting:
            consumed |= self._collection_crash(conn, how)
        elif plan.outstanding:
            crashed = plan.outstanding[0][0]
            plan.pop(crashed)
            text = f"worker {worker} (pid {conn.pid}) {how} while running this test"
            if conn.failure:  # e.g. the test raised KeyboardInterrupt or SystemExit past pytest
                text += ": " + conn.failure.strip().splitlines()[-1]
            self._record_crash(
                crashed,
                text,
                worker,
                "crashed",
                tier=conn.tier,
                detail=conn.failure,
                seconds=max(0.0, time.monotonic() - conn.busy_since),
                output=output,
            )
            consumed = True
        self.planner.orphan(worker)
        self._barren[worker] = 0 if consumed else self._barren.get(worker, 0) + 1
        if self.stopping or not self.planner.has_work(worker):
            return
        if self._barren[worker] < _MAX_BARREN_DEATHS:
            self._spawn(worker)
            return
        # Workers of this slot die before doing anything: hand its work to a live
        # worker instead of forking replacements forever.
        self._write_error(
            f"aqe: {_MAX_BARREN_DEATHS} workers in a row in slot {worker} died before "
            f"doing anything (last one {how}); not starting another"
        )
        alive = [c.worker for c in self.conns.values() if not c.closed]
        if alive:
            self.planner.transfer(worker, alive[0])
            self._feed(alive[0])

    def _collection_crash(self, conn: _Conn, how: str) -> bool:
        """A worker died collecting a batch: one file is to blame, or one of several.
        Returns whether a file was blamed (so the run made progress)."""
        assert self.planner is not None
        files = conn.collecting
        conn.collecting = ()
        if len(files) > 1:
            self.planner.collect_alone(files)  # collected one at a time from now on
            return False
        index = files[0]
        self.planner.drop_file(index)
        nodeid = self.files[index].nodeid
        text = f"worker {conn.worker} (pid {conn.pid}) {how} while collecting this file"
        if conn.failure:
            text += f":\n{conn.failure}"
        self._record_collection_error(nodeid, text)
        return True

    def _record_collection_error(self, nodeid: str, text: str) -> None:
        from _pytest.reports import CollectReport

        report = CollectReport(nodeid, "failed", text, [])
        self.config.hook.pytest_collectreport(report=report)
        self.run.collection_errors.append((nodeid, text))

    def _record_unfinished(self) -> None:
        """Work no worker could do (every one that tried died) is never dropped silently."""
        assert self.planner is not None
        if self.stopping:
            return
        files, nodeids = self.planner.unfinished()
        for path in files:
            self._record_collection_error(path, "not collected: no worker was left to collect it")
        for nodeid in nodeids:
            self._record_crash(nodeid, "not run: no worker was left to run it", -1, retry=False)

    def _record_crash(
        self,
        nodeid: str,
        message: str,
        worker: int,
        outcome: Outcome = "failed",
        *,
        error_type: str = "WorkerCrashed",
        detail: str = "",
        seconds: float = 0.0,
        retry: bool = True,
        tier: str = "hot",
        output: tuple[str, str] = ("", ""),
    ) -> None:
        """Record a test that has no reports of its own (its worker died, or it
        never ran); pytest's hooks see a failed call, the history ``outcome``.
        ``output``: the last lines it wrote to stdout and stderr, if known."""
        from _pytest.reports import TestReport

        file = nodeid.split("::", 1)[0]
        text = f"{message}\n\n{detail}" if detail else message
        for name, lines in zip(("stdout", "stderr"), output, strict=True):
            if lines:
                text += f"\n\nLast lines of its {name}:\n{lines}"
        now = time.time()
        result = TestResult(
            nodeid=nodeid,
            file=file,
            line=None,
            outcome=outcome,
            phases={"call": seconds} if seconds else {},
            worker=worker,
            when="call",
            error_type=error_type,
            message=message,
            traceback=cap_text(text),
            stdout=output[0],
            stderr=output[1],
            start=now - seconds,
            stop=now,
            tier=tier,
        )
        result = self._attempt(result)
        reason = {"crashed": "crash", "timeout": "timeout"}.get(outcome, "")
        again = retry and (
            self._hedge_ended(nodeid, worker, passing=False)
            or self._isolate(result, reason)
            or self._retry(result, worker)
        )
        report = TestReport(
            nodeid=nodeid,
            location=(file, None, nodeid),
            keywords={},
            outcome="failed",
            longrepr=text,
            when="call",
            duration=seconds,
            aqe_outcome=outcome,
        )
        if again:
            report.outcome = "rerun"  # type: ignore[assignment]  # pytest-rerunfailures' word
        else:
            self._finished(nodeid, outcome)
            if result.quarantined:
                self.quarantined_failures.append(nodeid)
                report.outcome = "quarantined"  # type: ignore[assignment]
        hook = self.config.hook
        hook.pytest_runtest_logstart(nodeid=nodeid, location=report.location)
        hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=nodeid, location=report.location)
        self.run.results.append(result)
        self.pending_results.append(result)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self._stop_if_failed()

    def _not_found(self, worker: int, nodeid: str) -> None:
        self._record_crash(
            nodeid,
            f"not run: worker {worker} collected {nodeid.split('::', 1)[0]} to run it and "
            "did not find it there (the file collects differently from one time to the next)",
            worker,
            "error",
            error_type="NotCollected",
            retry=False,
        )

    def _record_timeout(
        self,
        conn: _Conn,
        nodeid: str,
        limit: float,
        ran: float,
        stacks: str,
        output: tuple[str, str] = ("", ""),
    ) -> None:
        message = (
            f"Timeout: still running after {limit:g}s; aqe killed worker {conn.worker} "
            f"(pid {conn.pid})"
        )
        detail = ""
        if stacks:
            detail = f"Stacks of the worker's threads when it was stopped:\n{trim_stacks(stacks)}"
        self._record_crash(
            nodeid,
            message,
            conn.worker,
            "timeout",
            tier=conn.tier,
            error_type="Timeout",
            detail=detail,
            seconds=ran,
            output=output,
        )

    # -- limits ----------------------------------------------------------------

    def _limit(self, nodeid: str) -> float | None:
        own = self.timeouts.get(nodeid)
        if own is not None:
            return own + self._marker_grace if own > 0 else None
        return self.settings.timeout

    def _enforce_limits(self, now: float) -> None:
        """Stop tests that ran past their limit, and the run past its own."""
        assert self.planner is not None
        run_limit = self.settings.run_timeout
        if run_limit is not None and not self.interrupted and now - self._started > run_limit:
            self._stop_run(f"run timeout of {run_limit:g}s reached")
        for conn in self.conns.values():
            if conn.closed:
                continue
            if conn.kill_at is not None:
                if now >= conn.kill_at or _stacks_written(conn.stacks):
                    conn.kill_at = None
                    _kill(conn.pid, signal.SIGKILL)
                continue
            plan = self.planner.workers[conn.worker]
            if conn.collecting or not plan.outstanding or conn.timed_out is not None:
                continue
            nodeid = plan.outstanding[0][0]
            limit = self._limit(nodeid)
            ran = now - conn.busy_since
            if limit is None or ran <= limit:
                continue
            conn.timed_out = (nodeid, limit, ran)
            # Stacks first (faulthandler answers from C, even with the GIL held),
            # then the kill; a replacement worker takes the rest of the queue.
            _kill(conn.pid, STACKS_SIGNAL)
            conn.kill_at = now + _STACKS_WAIT

    # -- interruption --------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        self._signals.append(signum)

    def _on_signals(self, now: float) -> None:
        """First signal: stop scheduling, let running tests finish within the grace
        period. A second one, or the end of the grace period: kill every worker."""
        if self._signals and self._grace_until is None:
            name = signal.Signals(self._signals[0]).name
            self._stop_gracefully(f"{name} received", f"{name} received", again=True)
        elif self._grace_until is not None and (
            len(self._signals) > self._signals_at_stop or now >= self._grace_until
        ):
            self._kill_all()

    def _stop_gracefully(self, reason: str, why: str, again: bool = False) -> None:
        """Interrupt the run as pytest would (exit 2): stop scheduling; running tests
        get ``shutdown_grace`` seconds to finish, a signal meanwhile kills them."""
        self.interrupted = reason
        self.stopping = True
        self._drop_pending()
        grace = self.settings.shutdown_grace
        self._grace_until = time.monotonic() + grace
        self._signals_at_stop = len(self._signals)
        running = 0
        for conn in self.conns.values():
            if not conn.closed:
                conn.killed = True
                running += bool(self.planner and self.planner.workers[conn.worker].outstanding)
                self._send(conn.worker, [Stop()])
        self._write_error(
            f"aqe: {why}: stopping; waiting up to {grace:g}s for {running} running tests"
            + (" (again to stop at once)" if again else "")
        )

    def _kill_all(self) -> None:
        for conn in self.conns.values():
            if not conn.closed:
                conn.killed = True
                _kill(conn.pid, signal.SIGKILL)

    def _stop_run(self, reason: str) -> None:
        """End the run now: stop scheduling, kill every worker, keep what finished."""
        self.interrupted = reason
        self.stopping = True
        self._drop_pending()
        running = sum(
            len(self.planner.workers[conn.worker].outstanding) if self.planner else 0
            for conn in self.conns.values()
            if not conn.closed
        )
        self._kill_all()
        self._write_error(f"aqe: {reason}; stopped {running} queued or running tests")

    def _drop_pending(self) -> None:
        assert self.planner is not None
        self.planner.drop_pending()

    # -- helpers ---------------------------------------------------------------

    def _close(self, conn: _Conn) -> None:
        if conn.closed:
            return
        conn.closed = True
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn.sock)
        conn.sock.close()
        if not conn.last_finish:
            conn.last_finish = time.time()

    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_flush < 0.5 and len(self.pending_results) < 500:
            return
        self._last_flush = now
        if self.pending_results or self.pending_collect:
            self.sink.record(list(self.pending_results), dict(self.pending_collect))
            self.pending_results.clear()
            self.pending_collect.clear()

    def _refresh_view(self, final: bool = False) -> None:
        if (self.view is None and self._status is None) or self.planner is None:
            return
        now = time.monotonic()
        show = self.view is not None and now - self._last_view >= _TICK
        write = self._status is not None and (final or self._status.due(now))
        if not show and not write:
            return
        running = {
            worker: plan.outstanding[0][0]
            for worker, plan in enumerate(self.planner.workers)
            if plan.outstanding and worker in self.conns and not self.conns[worker].closed
        }
        alive = sum(1 for conn in self.conns.values() if not conn.closed) or 1
        remaining = self.planner.remaining_est()
        collecting = self.planner.is_collecting() or any(p.files_todo for p in self.planner.workers)
        snapshot = Progress(
            done=len(self.run.results),
            known=max(self.known, len(self.run.results)),
            collecting=collecting,
            eta=None if collecting or remaining is None else remaining / alive,
            running=running,
            counts=dict(self.counts),
        )
        if show and self.view is not None:
            self._last_view = now
            self.view.progress(snapshot)
        if write and self._status is not None:
            self._status.write(
                state="finished" if final else "stopping" if self.stopping else "running",
                done=len(self.final),
                attempts=snapshot.done,
                known=snapshot.known,
                collecting=collecting and not final,
                eta=None if final else snapshot.eta,
                counts=snapshot.counts,
                outcomes=dict(Counter(self.final.values())),
                workers=[
                    WorkerState(
                        slot=conn.worker,
                        pid=conn.pid,
                        tier=conn.tier,
                        test=running.get(conn.worker, ""),
                        busy_for=now - conn.busy_since,
                    )
                    for conn in self.conns.values()
                    if not conn.closed
                ],
                failures=first_failures(self.run.results, self.final),
            )

    def _tail_idle(self) -> None:
        finishes = {
            w: c.last_finish for w, c in self.conns.items() if c.last_finish and c.tier == "hot"
        }
        if not finishes:
            return
        end = max(finishes.values())
        self.run.tail_idle = {w: round(end - t, 4) for w, t in finishes.items()}

    def _write_error(self, text: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            getattr(reporter, "note", reporter.write_line)(text)


class _Deselected:
    """Stands in for an item deselected in a worker, for the terminal's counts."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def pool_size(requested: int, units: int) -> int:
    """Workers for a run: as asked, but never more than there is work for."""
    return max(1, min(requested, units))


def _find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle in ``graph`` (node -> nodes it waits for), or []."""
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        path = [start]
        on_path = {start}
        stack: list[Iterator[str]] = [iter(graph.get(start, ()))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
            elif child in on_path:
                return path[path.index(child) :]
            elif child not in done:
                stack.append(iter(graph.get(child, ())))
                path.append(child)
                on_path.add(child)
    return []


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _stacks_written(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


#: Lines of a dead test's output kept with its result.
OUTPUT_LINES = 20


def _take_outputs(paths: Sequence[str]) -> tuple[str, str]:
    """The last lines a dead worker's test wrote (stdout, stderr), and the files gone.

    ``paths``: the worker's uncaptured output, then pytest's stdout and stderr
    capture files; without capture (``-s``) everything is in the first."""
    texts = []
    for path in paths:
        try:
            with open(path, "rb") as stream:
                stream.seek(0, os.SEEK_END)
                stream.seek(max(0, stream.tell() - 16384))
                texts.append(stream.read().decode("utf-8", "replace"))
        except OSError:
            texts.append("")
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
    uncaptured, stdout, stderr = (*texts, "", "", "")[:3]
    stdout = "\n".join(filter(None, (uncaptured.rstrip("\n"), stdout.rstrip("\n"))))
    return _last_lines(stdout), _last_lines(stderr)


def _last_lines(text: str) -> str:
    lines = text.rstrip("\n").splitlines()[-OUTPUT_LINES:]
    return "\n".join(line[:500] for line in lines)


def _take_stacks(path: str) -> str:
    """The stacks a worker dumped (if any), and the file gone."""
    if not path:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read().strip()
    except OSError:
        return ""
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _size(node: nodes.Collector) -> int:
    path = getattr(node, "path", None)
    try:
        return os.stat(path).st_size if path is not None else 1000
    except OSError:
        return 1000
