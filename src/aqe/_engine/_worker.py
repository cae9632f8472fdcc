"""The worker: runs tests through pytest's own runtest protocol in a forked child.

A worker inherits the coordinator's configured pytest session (plugins, conftests,
shallowly collected file nodes) through fork, so it never re-imports the suite. It
collects only the files it is given, runs the node ids it is sent in order, and
sends one ``TestFinished`` per test over its socket. Its stdout and stderr go to a
private spool file, so nothing a test prints can interleave with other workers or
corrupt the message channel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import functools
import gc
import os
import pickle
import select
import socket
import sys
import tempfile
import time
import traceback
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from typing import IO, Any

import pytest

from .. import _transport
from .._compat import CollectReport, TestReport, catch_warnings_for_item, nodes
from .._messages import (
    Collect,
    Collected,
    CollectedItem,
    CollectStarted,
    Importing,
    Limits,
    NotFound,
    NothingReported,
    Proceed,
    Retiring,
    RunTests,
    Shutdown,
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
from .._trace import mark
from . import _bytecode, _coverage, _django, _identity
from ._convert import marker_names, result_from_reports
from ._junitxml import install_recorder
from ._limits import STACKS_SIGNAL, marker_timeout, resident_mb
from ._order import dependencies, order_bound_files, serial_group
from ._preimport import (
    Import,
    forget,
    import_test_modules,
    imports_by_file,
    not_imported,
    preimport,
    reads_registries,
)
from ._retry import marker_reruns

#: Prefix of the files a worker keeps in the temporary directory; its pid follows.
WORKER_FILE = "aqe-worker-"


def sweep_worker_files() -> None:
    """Delete the files of workers that are gone. The coordinator deletes its
    workers' files itself; this catches those of a coordinator that was killed."""
    directory = tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(directory) if n.startswith(WORKER_FILE)]
    except OSError:
        return
    for name in names:
        try:
            pid = int(name[len(WORKER_FILE) :].split("-")[1])
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
        except (ValueError, IndexError, PermissionError):
            continue


class _NullTerminal:
    """Stands in for the terminal reporter inside a worker: output goes nowhere."""

    def __init__(self, config: pytest.Config) -> None:
        from .._compat import TerminalWriter

        self.config = config
        self._tw = TerminalWriter(open(os.devnull, "w"))
        self.verbosity = config.option.verbose
        self.stats: dict[str, list[Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class _WorkerPlugin:
    """Captures what the worker's pytest hooks produce, for sending."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.reports: list[TestReport] = []
        self.collect_reports: list[CollectReport] = []
        self.deselected: list[str] = []

    def pytest_runtest_logreport(self, report: TestReport) -> None:
        self.reports.append(report)

    def pytest_collectreport(self, report: CollectReport) -> None:
        if report.failed or report.skipped:
            self.collect_reports.append(report)

    def pytest_deselected(self, items: Sequence[nodes.Item]) -> None:
        self.deselected.extend(item.nodeid for item in items)

    def pytest_warning_recorded(
        self, warning_message: warnings.WarningMessage, when: str, nodeid: str
    ) -> None:
        self.worker.post(
            WarningRecorded(
                worker=self.worker.worker_id,
                category=_qualified(
                    type(warning_message.message)
                    if isinstance(warning_message.message, Warning)
                    else warning_message.category
                ),
                message=str(warning_message.message),
                filename=str(warning_message.filename),
                lineno=warning_message.lineno,
                when=when,
                nodeid=nodeid,
            )
        )


#: Set on a serialized collect report whose error pytest shows as plain text
#: (``CollectErrorRepr``: an import error, a syntax error): serialization turns it
#: into a string, which pytest's short summary would print in full after the file.
COLLECT_ERROR_REPR = "aqe_collect_error_repr"


def _kept_repr(report: Any, data: dict[str, Any]) -> dict[str, Any]:
    from .._compat import CollectErrorRepr

    if isinstance(report.longrepr, CollectErrorRepr):
        data[COLLECT_ERROR_REPR] = True
    return data


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _picklable(data: dict[str, Any]) -> dict[str, Any]:
    """A serialized report whose values all pickle: the rest become their ``str``,
    which is what pytest's JUnit XML writes for a property value anyway."""

    def ok(value: Any) -> bool:
        try:
            pickle.dumps(value)
        except Exception:
            return False
        return True

    clean = {key: value if ok(value) else str(value) for key, value in data.items()}
    properties = data.get("user_properties")
    if isinstance(properties, list) and not ok(properties):
        clean["user_properties"] = [
            (name, value if ok(value) else str(value)) for name, value in properties
        ]
    return clean


class Worker:
    """One worker's loop; ``main`` returns the process exit code."""

    #: A failure waits for the coordinator's count (see ``_await_verdict``).
    _held = False

    def __init__(
        self,
        session: pytest.Session,
        worker_id: int,
        sock: socket.socket,
        files: Sequence[nodes.Collector],
        items: dict[str, nodes.Item],
    ) -> None:
        self.session = session
        self.config = session.config
        self.worker_id = worker_id
        self.sock = sock
        #: A file collected again gets a new node here (see ``_collect_again``).
        self.files = list(files)
        self.items = dict(items)
        self.queue: deque[nodes.Item] = deque()
        self.shutdown = False
        #: Interrupted: the last test ran with a ``nextitem`` that never comes.
        self.stopped = False
        self.limits = Limits()
        self.tests_run = 0
        #: Resident MB after the last test, when a memory limit is set.
        self._rss: float | None = None
        self.plugin = _WorkerPlugin(self)
        self._reader = _transport.FrameReader()
        self._outbox: list[bytes] = []
        #: Frames sent so far, and the journal of those held unsent (see ``_due``).
        self._sent = 0
        self._journal: _transport.Journal | None = None
        #: Seconds a result may wait (``Limits.hold``), in force from the next send.
        self._hold = self._hold_asked = 0.0
        self._held_since = 0.0
        #: Something in the outbox the coordinator must hear of at once.
        self._urgent = False
        #: The file of the test run last (its first test flushes what is held).
        self._last_path: Any = None
        #: Tests with a ``timeout`` marker: the coordinator times them from the
        #: result before, so that leaves first.
        self._timed = {n for n, item in self.items.items() if marker_timeout(item) is not None}
        self._spool: IO[bytes] | None = None
        #: Named files of the worker's output (see ``_output_file``).
        self.outputs: list[str] = []
        self._stacks: IO[str] | None = None
        #: The coordinator said more tests will come (see ``RunTests.more``).
        self.more = False
        self._session_only: _SessionOnly | None = None
        #: What each file collected here yielded (file index -> its items).
        self._collected: dict[int, list[nodes.Item]] = {}
        #: Module-level imports of each test file, and how many files' are made.
        self._imports: list[list[Import]] | None = None
        self._imported_upto = 0
        #: Lines for the user about the files just collected (sent with ``Collected``).
        self._notes: list[str] = []
        #: ``sys.modules`` as the first test found it (see ``_replaced_modules``).
        self._modules: dict[str, Any] | None = None

    # -- plumbing --------------------------------------------------------------

    def post(self, message: ToCoordinator) -> None:
        frame = _transport.encode(message)
        if not self._outbox:
            self._held_since = time.monotonic()
        self._outbox.append(frame)
        if not isinstance(message, (TestFinished, WarningRecorded, NothingReported)):
            self._urgent = True
        if self._hold and self._journal is not None:
            try:
                self._journal.write(frame)
            except OSError:  # a test closed it: send each result at once from now on
                self._journal = None
                self._hold = self._hold_asked = 0.0

    def flush(self) -> None:
        if self._outbox:
            frames = b"".join(self._outbox)
            self._sent += len(self._outbox)
            self._outbox.clear()
            self.sock.sendall(frames)
        self._urgent = False
        self._hold = self._hold_asked
        if self._hold and self._journal is not None:
            try:
                self._journal.sent(self._sent)
            except OSError:
                self._journal = None
                self._hold = self._hold_asked = 0.0

    def _due(self) -> bool:
        """Whether what the outbox holds leaves now, after a test.

        Each send wakes the coordinator, a context switch on both sides on cores
        the workers fill: tests that finish fast leave together. Every frame is in
        the journal first, so a death loses nothing. They leave at once when
        something else is in them, after ``hold`` seconds, and when they are as
        many as the tests still queued: the coordinator tops a queue up by what it
        believes is left in it, and must not believe twice what is."""
        outbox = self._outbox
        return bool(outbox) and (
            not self._hold
            or self._urgent
            or len(outbox) >= len(self.queue)
            or time.monotonic() - self._held_since >= self._hold
        )

    def _prepare(self) -> None:
        """Detach from the coordinator's terminal, capture and reporting plugins."""
        pm = self.config.pluginmanager
        capman = pm.get_plugin("capturemanager")
        if capman is not None:
            capman.suspend_global_capture()
        sys.stdout.flush()
        sys.stderr.flush()
        self._spool = self._output_file("out")
        os.dup2(self._spool.fileno(), 1)
        os.dup2(self._spool.fileno(), 2)
        if capman is not None and not self._own_global_capture(capman):
            # A capture aqe does not know: a new one (streams bound earlier go stale).
            capman.stop_global_capturing()
            with self._named_capture_files():
                capman.start_global_capturing()
            capman.suspend_global_capture()
        reporter = pm.get_plugin("terminalreporter")
        if reporter is not None:
            pm.unregister(reporter)
            pm.register(_NullTerminal(self.config), "terminalreporter")
        from .._compat import xml_key

        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            pm.unregister(xml)
        install_recorder(self.config)  # record_xml_attribute & co. reach the reports
        logging_plugin = pm.get_plugin("logging-plugin")
        if logging_plugin is not None and hasattr(logging_plugin, "log_cli_handler"):
            from .._compat import LiveLoggingNullHandler as _LiveLoggingNullHandler

            logging_plugin.log_cli_handler = _LiveLoggingNullHandler()
        pm.register(self.plugin, "aqe-worker")
        _django.register(self.config)
        self.sock.setblocking(True)

    def _own_global_capture(self, capman: Any) -> bool:
        """Make pytest's global capture this worker's own, keeping its objects.

        pytest keeps one capture for the whole session, so a stream a module bound
        while conftests loaded (``from sys import stdout``, a logging handler made at
        import) is still ``sys.stdout`` while tests run; structlog's tests check that.
        So the objects stay and only what is under them changes: fd capture gets
        named files of this process in place of the coordinator's (shared with it
        and every other worker since the fork), and the terminal it restores on
        suspend becomes the spool; sys capture is in memory, so it only starts empty.
        False when the capture is not built as this expects."""
        capturing = getattr(capman, "_global_capturing", None)
        if capturing is None:  # -s: nothing captured
            return True
        assert self._spool is not None
        for capture in (capturing.out, capturing.err):
            if capture is None:
                continue
            tmpfile = getattr(capture, "tmpfile", None)
            if tmpfile is None:
                return False
            tmpfile.flush()
            saved = getattr(capture, "targetfd_save", None)
            if isinstance(saved, int):  # FDCapture
                named = self._output_file("capture")
                os.dup2(named.fileno(), tmpfile.fileno())
                named.close()
                os.dup2(self._spool.fileno(), saved)
            else:  # SysCapture, TeeSysCapture: in memory, copied by the fork
                tmpfile.seek(0)
                tmpfile.truncate()
        return True

    def _output_file(self, kind: str) -> IO[bytes]:
        """A named file for output: if the worker dies under a test, the coordinator
        reads the test's last lines from it (an unnamed one would die with it)."""
        fd, path = tempfile.mkstemp(prefix=f"{WORKER_FILE}{kind}-{os.getpid()}-")
        self.outputs.append(path)
        return os.fdopen(fd, "w+b", buffering=0)

    @contextlib.contextmanager
    def _named_capture_files(self) -> Iterator[None]:
        """Let pytest's fd capture write to named files (see ``_output_file``)."""
        from .._compat import capture

        unnamed = getattr(capture, "TemporaryFile", None)
        if unnamed is None:  # another pytest: its capture keeps unnamed files
            yield
            return
        setattr(capture, "TemporaryFile", lambda *a, **k: self._output_file("capture"))  # noqa: B010
        try:
            yield
        finally:
            setattr(capture, "TemporaryFile", unnamed)  # noqa: B010

    def _read_spool(self) -> str:
        if self._spool is None:
            return ""
        sys.stdout.flush()
        sys.stderr.flush()
        size = os.fstat(self._spool.fileno()).st_size
        if not size:
            return ""
        os.lseek(self._spool.fileno(), 0, os.SEEK_SET)
        data = os.read(self._spool.fileno(), size)
        os.ftruncate(self._spool.fileno(), 0)
        os.lseek(self._spool.fileno(), 0, os.SEEK_SET)
        return data.decode("utf-8", "replace")

    def _poll(self, block: bool, wait: float | None = None) -> None:
        """Read whatever messages are waiting; if ``block``, wait for one (at most
        ``wait`` seconds when given)."""
        timeout = (wait if wait is not None else None) if block else 0.0
        while True:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError("coordinator closed the connection")
            messages = self._reader.feed(data)
            for message in messages:
                self._handle(message)
            if messages:
                return
            timeout = (wait if wait is not None else None) if block else 0.0

    def _handle(self, message: ToWorker) -> None:
        if self.stopped and isinstance(message, (Collect, RunTests)):
            return  # sent before the coordinator knew this worker is leaving
        match message:
            case Collect(files=files):
                self._collect(files)
            case RunTests(nodeids=nodeids, more=more):
                self.queue.extend(self.items[nodeid] for nodeid in nodeids if nodeid in self.items)
                if unknown := tuple(nodeid for nodeid in nodeids if nodeid not in self.items):
                    self.post(NotFound(self.worker_id, unknown))
                self.more = more
            case Shutdown():
                self.shutdown = True
            case Stop():
                self.queue.clear()
                self.shutdown = self.stopped = True
            case Limits():
                self.limits = message
                self._hold_asked = message.hold
            case Proceed():
                self._held = False
            case _:
                assert_never(message)

    # -- work ------------------------------------------------------------------

    @contextlib.contextmanager
    def _collecting(self) -> Iterator[None]:
        """pytest's warning filters and recording, as around its own collection,
        and aqe's bytecode cache for the test modules imported now."""
        with (
            _bytecode.caching(),
            catch_warnings_for_item(self.config, ihook=self.config.hook, when="collect", item=None),
        ):
            yield

    def _retire_if_spent(self, nodeid: str) -> None:
        """Past ``--max-tests-per-worker`` or ``--max-worker-memory``: say so, drop
        the queue (the coordinator hands it to a replacement) and stop."""
        limits = self.limits
        reason = ""
        alone = None
        if limits.max_tests is not None and self.tests_run >= limits.max_tests:
            reason = f"ran {self.tests_run} tests (--max-tests-per-worker)"
        elif limits.max_rss_mb is not None and self._rss is not None:
            rss = self._rss  # measured after the test, before its result left
            if rss > limits.max_rss_mb:
                reason = f"uses {rss:.0f} MB > {limits.max_rss_mb:g} MB (--max-worker-memory)"
                alone = nodeid if self.tests_run == 1 else None
        if not reason or (not self.queue and self.shutdown):
            return
        self.post(Retiring(self.worker_id, reason, alone))
        self.queue.clear()
        self.shutdown = self.stopped = True

    def _open_journal(self) -> str:
        fd, path = tempfile.mkstemp(prefix=f"{WORKER_FILE}journal-{os.getpid()}-")
        os.close(fd)
        self._journal = _transport.Journal(path)
        return path

    def _watch_stacks(self) -> str:
        """Let the coordinator ask for this process's stacks before it kills a
        test that ran out of time; returns the file they are written to."""
        fd, path = tempfile.mkstemp(prefix=f"{WORKER_FILE}stacks-{os.getpid()}-", suffix=".txt")
        self._stacks = os.fdopen(fd, "w")
        faulthandler.register(STACKS_SIGNAL, file=self._stacks, all_threads=True)
        return path

    def _import_before(self, index: int) -> None:
        """Make the module-level imports of the test files before ``index`` in
        pytest's order (see ``_preimport.py``): under pytest they ran before it."""
        if self._imported_upto >= index:
            return
        if self._imports is None:
            paths = [getattr(node, "path", None) for node in self.files]
            self._imports = imports_by_file(paths, self.config.getini("python_files"))
        todo = [entry for found in self._imports[self._imported_upto : index] for entry in found]
        self._imported_upto = index
        if not todo:
            return
        self.post(Importing(self.worker_id, active=True))
        self.flush()
        with self._collecting():
            preimport(todo)
        self._read_spool()  # what imports print is collection output: pytest shows none
        self.post(Importing(self.worker_id, active=False))
        self.flush()

    def _first_test(self) -> None:
        """The process as pytest's would be when its first test starts."""
        self._import_before(len(self.files))
        self._modules = dict(sys.modules)
        # The fork froze what existed before it (conftests, plugins) so collecting
        # neither scanned nor copied it; tests see a collector that knows those
        # objects again: gc.get_referrers() finds their referrers (hypothesis's
        # register_random relies on it) and their cycles can be freed.
        gc.unfreeze()

    def _replaced_modules(self) -> list[str]:
        """Packages a test has taken out of ``sys.modules``, or swapped, since the first
        test ran: a module imported now would see the new copy, where under pytest,
        which imports every test module before any test runs, it saw the first."""
        before = self._modules
        if before is None:
            return []
        now = sys.modules
        return sorted(
            {name.partition(".")[0] for name, m in before.items() if now.get(name) is not m}
        )

    def _hand_over(self, indexes: Sequence[int], packages: list[str]) -> None:
        """Leave importing these files to a fresh worker, forked before any test ran."""
        names = ", ".join(packages[:3]) + (
            f" and {len(packages) - 3} more" if len(packages) > 3 else ""
        )
        files = ", ".join(self.files[index].nodeid for index in indexes)
        self.post(
            Retiring(
                self.worker_id,
                f"a test here took {names} out of sys.modules, so {files} goes to a fresh "
                "worker, to import it as pytest would (before any test ran)",
                announce=True,
            )
        )
        self.queue.clear()
        self.shutdown = self.stopped = True

    def _collect(self, indexes: Sequence[int]) -> None:
        if replaced := self._replaced_modules():
            self._hand_over(indexes, replaced)
            return
        mark(f"collect {len(indexes)}")
        session, hook = self.session, self.config.hook
        self.plugin.collect_reports.clear()
        self.plugin.deselected.clear()
        found: list[nodes.Item] = []
        seconds: dict[str, float] = {}
        with self._collecting():
            for index in indexes:
                if index in self._collected:
                    # Asked again (its tests moved back here): collecting a module twice
                    # in one process would not run its decorators again, and a one-shot
                    # iterator in a parametrize mark would yield no tests.
                    found.extend(self._collected[index])
                    continue
                self._import_before(index)
                # One file at a time: if the worker dies now, this file did it.
                self.post(CollectStarted(self.worker_id, (index,)))
                self.flush()
                node = self.files[index]
                started = time.perf_counter()
                reported = len(self.plugin.collect_reports)
                self._collected[index] = list(session.genitems(node))
                if self._reads_registries(index):
                    del self.plugin.collect_reports[reported:]
                    self._collect_again(index)
                found.extend(self._collected[index])
                seconds[node.nodeid] = time.perf_counter() - started
        if len(indexes) > 1:  # the hook sees the whole batch: one of them did it
            self.post(CollectStarted(self.worker_id, tuple(indexes)))
            self.flush()
        hook.pytest_collection_modifyitems(session=session, config=self.config, items=found)
        self._add_to_session(found)
        collected = []
        order_bound = order_bound_files(found)
        for item in found:
            self.items[item.nodeid] = item
            path, line, name = item.location
            timeout = marker_timeout(item)
            if timeout is not None:
                self._timed.add(item.nodeid)
            collected.append(
                CollectedItem(
                    item.nodeid,
                    path,
                    line,
                    (path, line, name),
                    timeout,
                    marker_reruns(item),
                    serial_group(item),
                    dependencies(item),
                )
            )
        mark("collect-end")
        serialize = hook.pytest_report_to_serializable
        self.post(
            Collected(
                worker=self.worker_id,
                files=tuple(indexes),
                items=tuple(collected),
                reports=tuple(
                    _kept_repr(report, serialize(config=self.config, report=report))
                    for report in self.plugin.collect_reports
                ),
                deselected=tuple(self.plugin.deselected),
                seconds=seconds,
                order_bound=tuple(sorted(order_bound)),
                notes=tuple(self._notes),
            )
        )
        self._notes.clear()
        self.flush()

    def _reads_registries(self, index: int) -> bool:
        """The file may have parametrized over what test modules before it define
        at import, and some of those were not imported here (see ``_preimport.py``)."""
        node = self.files[index]
        return (
            isinstance(node, pytest.Module)
            and reads_registries(self._collected[index], getattr(node, "_obj", None))
            and bool(not_imported(self.files[:index]))  # last: linear in the files
        )

    def _collect_again(self, index: int) -> None:
        """Collect a file as pytest's process would: after every test module before
        it was imported, with its own module imported afresh."""
        node = self.files[index]
        assert isinstance(node, pytest.Module)
        mark(f"collect-again {node.nodeid}")
        self.post(Importing(self.worker_id, active=True))
        self.flush()
        import_test_modules(not_imported(self.files[:index]))
        self._read_spool()  # what imports print is collection output: pytest shows none
        self.post(Importing(self.worker_id, active=False))
        self.flush()
        fresh, stale = forget(node, self._collected[index])
        if fresh is None:
            self._notes.append(
                f"{node.nodeid} parametrizes over what other test modules may define; "
                "aqe could not collect it again after importing them, so its tests "
                "may differ from pytest's"
            )
            return
        self.files[index] = fresh
        self._collected[index] = list(self.session.genitems(fresh))
        if twice := stale(self._collected[index]):
            self._notes.append(
                f"{node.nodeid} was collected again after the test modules before it "
                f"were imported (it parametrizes over what they define), but "
                f"{', '.join(twice[:3])} of its first import stayed in a registry: "
                "its tests may differ from pytest's"
            )

    def _add_to_session(self, found: Sequence[nodes.Item]) -> None:
        """``session.items`` holds this worker's items, as in a pytest-xdist worker:
        plugins decide from it (pytest-django sets up the test databases its
        items use; an empty list would leave tests on the configured database)."""
        session = self.session
        have = {id(item) for item in session.items}
        session.items.extend(item for item in found if id(item) not in have)
        session.testscollected = len(session.items)

    def _run_one(self, item: nodes.Item, nextitem: Any) -> None:
        if self._modules is None:
            self._first_test()
        plugin = self.plugin
        plugin.reports.clear()
        start = time.time()
        try:
            item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        except (KeyboardInterrupt, pytest.exit.Exception) as error:
            # pytest ends its session here: run nothing more, let the coordinator
            # stop the run (fixtures are torn down on the way out, as by pytest).
            frame = traceback.extract_tb(error.__traceback__)[-1]
            where = f"{frame[0]}:{frame[1]}"
            interrupted = TestInterrupted(self.worker_id, item.nodeid, where)
            if isinstance(error, pytest.exit.Exception):
                interrupted = TestInterrupted(
                    self.worker_id, item.nodeid, where, error.msg, error.returncode
                )
            self.post(interrupted)
            self.queue.clear()
            self.shutdown = self.stopped = True
            return
        stop = time.time()
        _keep_going(self.session)
        reports = list(plugin.reports)
        self._rss = resident_mb() if self.limits.max_rss_mb is not None else None
        if not reports:
            self.post(NothingReported(self.worker_id, item.nodeid))
            return
        _fail_for_subtests(self.config, item, reports)
        _share_equal_parts(reports)
        over = self._rss is not None and self._rss > (self.limits.max_rss_mb or 0.0)
        message = TestFinished(
            worker=self.worker_id,
            nodeid=item.nodeid,
            location=item.location,
            reports=tuple(reports),
            result=dataclasses.replace(
                result_from_reports(reports, self.worker_id, start, stop),
                markers=marker_names(item),
            ),
            raw_output=self._read_spool(),
            memory_mb=self._rss if over else None,
        )
        try:
            self.post(message)
        except Exception:
            # Something a plugin or test attached to a report (user_properties, an
            # extra attribute) does not pickle: fall back to pytest's own
            # serialization, as pytest-xdist always does.
            serialize = self.config.hook.pytest_report_to_serializable
            self.post(
                dataclasses.replace(
                    message,
                    reports=tuple(
                        _picklable(serialize(config=self.config, report=r)) for r in reports
                    ),
                )
            )
        if self.config.getoption("maxfail", 0) and any(r.failed for r in reports):
            self._await_verdict()

    def _await_verdict(self) -> None:
        """-x/--maxfail: after a failure, run nothing until the coordinator has counted
        it (``Proceed``, or ``Stop`` at the run's Nth failure), so no test starts past
        the point where pytest would have stopped."""
        self.flush()
        self._held = True
        while self._held and not self.stopped:
            self._poll(block=True)

    def main(self) -> int:
        mark("worker")
        _bytecode.as_the_user_set_it()
        self._prepare()
        self.post(
            WorkerReady(
                self.worker_id,
                os.getpid(),
                self._watch_stacks(),
                tuple(self.outputs),
                self._open_journal(),
            )
        )
        self.flush()
        while True:
            # Keep one item of lookahead: pytest needs ``nextitem`` to know which
            # fixtures to tear down. The last item waits for the tests the
            # coordinator said are coming (it tops a queue up as soon as a result
            # arrives, but a loaded machine can make that slow), or briefly when
            # none were promised; then it runs as the last of its file, keeping only
            # session fixtures, so a worker never sits on a test while the
            # coordinator waits for news.
            if len(self.queue) < 2 and not self.shutdown:
                self.flush()
                if len(self.queue) != 1:
                    self._poll(block=True)
                    continue
                if self._wait_for_next():
                    continue
                nextitem: Any = self._keep_session_only()
            elif not self.queue:
                mark("worker-done")
                break
            else:
                nextitem = self.queue[1] if len(self.queue) > 1 else None
            # Run from this frame, not a helper's: every frame between the
            # interpreter's base and a test is recursion headroom the test loses.
            item = self.queue.popleft()
            if self._first_of_file(item) or item.nodeid in self._timed:
                self.flush()
            self._run_one(item, nextitem)
            self._after_test(item.nodeid)
        # Whatever is still set up: session fixtures kept by a last item run as
        # "last of its file", or everything when the run was interrupted.
        with contextlib.suppress(Exception):
            self.session._setupstate.teardown_exact(None)
        self.flush()
        return 0

    def _first_of_file(self, item: nodes.Item) -> bool:
        """Held results do not wait behind the first test of a file (its module
        fixtures may take long), nor behind a test the coordinator times."""
        path = getattr(item, "path", None)
        first = bool(path != self._last_path)
        self._last_path = path
        return first

    def _wait_for_next(self) -> bool:
        """Wait for a test to follow the last queued one: True once it (or the end)
        has come, False when it is time to run the last one without it."""
        started = time.monotonic()
        while len(self.queue) == 1 and not self.shutdown:
            left = started + (_PROMISED_WAIT if self.more else _LOOKAHEAD_WAIT)
            left -= time.monotonic()
            if left <= 0:
                return False
            self._poll(block=True, wait=left)
        return True

    def _keep_session_only(self) -> _SessionOnly:
        if self._session_only is None:
            self._session_only = _SessionOnly.from_parent(self.session, name=_SessionOnly.NAME)
        return self._session_only

    def _after_test(self, nodeid: str) -> None:
        """Report, retire or read new messages once a test has run."""
        self.tests_run += 1
        self._retire_if_spent(nodeid)
        # Sent before the next test starts, or written to the journal: if that one
        # kills the process, the coordinator has everything before it, so blame
        # lands exactly.
        if self._due() or self._hold != self._hold_asked:
            self.flush()
        _coverage.checkpoint()
        self._poll(block=False)


def _share_equal_parts(reports: list[Any]) -> None:
    """One test's phase reports share their node id object (pytest 9 parses one per
    report), location and keywords when equal, so each is pickled once: unpickling
    pytest's ``NodeId`` (a slotted dataclass) runs Python code, in the coordinator,
    three times a test otherwise."""
    first = reports[0].__dict__
    for report in reports[1:]:
        own = report.__dict__
        for name in ("_id", "location", "keywords"):
            value = first.get(name)
            if value is not None and own.get(name) is not value and own.get(name) == value:
                own[name] = value


def _keep_going(session: pytest.Session) -> None:
    """-x / --maxfail are the coordinator's decision, not one worker's: undo the
    stop pytest's own count set here. pytest 9 refuses (with a warning, which would
    land in the next test's output) to unset them through the properties."""
    for name in ("shouldfail", "shouldstop"):
        if hasattr(session, "_" + name):
            setattr(session, "_" + name, False)
        else:  # pytest < 9: plain attributes
            setattr(session, name, False)


def _fail_for_subtests(config: pytest.Config, item: nodes.Item, reports: list[Any]) -> None:
    """pytest's subtests plugin fails a test with failed subtests only when the
    terminal asks for its status, counting failures in this process: decide it here,
    where they were counted, so the coordinator and the history see the same."""
    subtests = _subtests()
    if subtests is None:  # pytest < 9: no built-in subtests
        return
    SubtestReport, failed_subtests_key = subtests
    counts: Any = config.stash.get(failed_subtests_key, None)
    key: Any = getattr(item, "id", item.nodeid)
    count = counts.get(key, 0) if counts else 0
    if not count:
        return
    for report in reports:
        if report.when == "call" and report.passed and not isinstance(report, SubtestReport):
            report.outcome = "failed"
            report.longrepr = f"contains {count} failed subtest{'s' if count > 1 else ''}"


@functools.cache
def _subtests() -> tuple[Any, Any] | None:
    """pytest's built-in subtests (9.0+), looked up once: ``_compat`` resolves a
    name by importing its module on each access, once per test here."""
    try:
        from .._compat import SubtestReport, failed_subtests_key
    except ImportError:
        return None
    return SubtestReport, failed_subtests_key


class _SessionOnly(pytest.Item):
    """A stand-in ``nextitem`` that keeps only the session: pytest tears down the
    module and class fixtures of the item just run, as before another file. An
    item, because plugins read ``nextitem`` in their hooks (SQLAlchemy's calls
    ``nextitem.getparent(pytest.Class)``); it is never run."""

    NAME = "aqe: the next test is not known yet"

    def runtest(self) -> None:  # pragma: no cover - never run
        raise NotImplementedError(self.NAME)


#: How long the last queued test waits for more work before it runs without it...
_LOOKAHEAD_WAIT = 0.05
#: ...and when the coordinator said more is coming: a bound, not a timeout that
#: should fire (say two workers each hold the last test of one serial group).
_PROMISED_WAIT = 2.0


def run_worker(
    session: pytest.Session,
    worker_id: int,
    sock: socket.socket,
    files: Sequence[nodes.Collector],
    items: dict[str, nodes.Item],
) -> int:
    """Run a worker to completion; never raises (the caller ``os._exit``s)."""
    config = session.config
    if getattr(config, "workerinput", None) is None:  # forked: spawned ones have theirs
        _identity.become(config, _identity.fleet(config).workerinput(worker_id))
    _coverage.worker_started()
    worker = Worker(session, worker_id, sock, files, items)
    try:
        return worker.main()
    except EOFError:
        return 0
    except BaseException:
        try:
            worker.flush()
            _transport.send(sock, WorkerFailed(worker_id, traceback.format_exc()))
        except OSError:
            pass
        return 3
    finally:
        # Saved while the socket is still open: the coordinator combines the data
        # files only after every worker's socket has closed.
        _coverage.worker_finished()
