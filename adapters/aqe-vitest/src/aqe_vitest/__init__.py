"""An aqe adapter for Vitest, installed and found like any third-party plugin.

Vitest already runs files in parallel; what aqe adds is balance by measured
duration, retries that keep every attempt, flaky verdicts and quarantine from
history, and never hanging on a stuck Node process. A run has two steps:

1. the selected files, longest first by the history, are dealt in batches to
   ``request.workers`` threads, each with one long-lived Vitest (or Jest) process
   that runs every batch the thread takes (``_server``: started once, in its own
   process group, killed whole past a batch's deadline and replaced); every test
   with a result keeps it as its first attempt;
2. aqe's shared loop (``aqe.plugins.run_tests``) records those attempts and
   decides retries, flaky and quarantine verdicts and the exit code; a retry, or
   a test whose batch crashed or hung, runs alone in its own ``vitest run -t``.

Vitest keeps what it does well: isolation of each file, its pool of forks, its
own per-test timeout (``--testTimeout``, set from aqe's ``--timeout``).

:class:`JestAdapter` runs Jest through the same steps; Jest cannot list a file's
tests without running them, so what needs a listing works from the run instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aqe.plugins import (
    FAILING_OUTCOMES,
    CollectedTest,
    CollectionFailed,
    DurationEstimate,
    Event,
    FilesCollected,
    RunEvents,
    RunRequest,
    TestFinished,
    TestResult,
    run_tests,
    shard_files,
)

from ._jest import CONFIGS as JEST_CONFIGS
from ._jest import Jest
from ._report import SEPARATOR, Case, FileError, has_result, lost, original, to_result
from ._server import Server
from ._vitest import CONFIGS, Batch, Vitest

__all__ = ["JestAdapter", "VitestAdapter"]

#: Seconds a ``vitest run`` may take to start, on top of its tests' time limits
#: (``VITEST_AQE_STARTUP`` overrides it).
STARTUP = float(os.environ.get("VITEST_AQE_STARTUP", "20"))
#: Batches per worker when the history knows nothing yet (more: finer balance,
#: more Node start-ups).
BATCHES_PER_WORKER = 2
#: Like pytest's cache: the ids whose last run failed, for ``--lf`` (beside aqe's history).
LAST_FAILED = Path(".aqe") / "vitest-last-failed.json"


class VitestAdapter:
    name = "vitest"
    #: Applies ``--shard I/N``: whole files per shard (``aqe.plugins.shard_files``).
    shards = True
    tool: type[Vitest] | type[Jest] = Vitest
    configs: tuple[str, ...] = tuple(c for c in CONFIGS if c.startswith("vitest"))

    def detect(self, root: Path) -> bool:
        """The framework in ``package.json``'s dependencies, or its config file."""
        if any((root / config).is_file() for config in self.configs):
            return True
        try:
            package = json.loads((root / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(package, dict):
            return False
        return any(
            isinstance(package.get(key), dict) and self.tool.PACKAGE in package[key]
            for key in ("dependencies", "devDependencies", "peerDependencies")
        )

    def collect(self, request: RunRequest) -> list[CollectedTest]:
        tool = self.tool(request.root)
        if isinstance(tool, Vitest):
            return select(request, tool.list_tests(filters(request)))
        return [CollectedTest(file, file, None) for file in tool.list_files(filters(request))]

    def run(self, request: RunRequest, events: RunEvents) -> int:
        tool = self.tool(request.root)
        with FirstAttempts(tool, request) as first:
            return self._run(tool, first, request, events)

    def _run(
        self, tool: Vitest | Jest, first: FirstAttempts, request: RunRequest, events: RunEvents
    ) -> int:
        listed: list[CollectedTest] = []
        if narrowed(request) and isinstance(tool, Vitest):  # list, run exactly those
            listed = select(request, tool.list_tests(filters(request)))
            files = dict(Counter(test.file for test in listed))
            first.pattern = names_pattern(listed) if listed else None
        else:  # every test of the files: no need to import them all twice
            # The other workers' servers start while the first lists the files (Vitest)
            # or Jest lists them itself.
            first.warm(request.workers - 1 if isinstance(tool, Vitest) else request.workers)
            files = dict.fromkeys(first.list_files(filters(request)), 0)
            failed = last_failed_tests(request, files) if not tool.can_list else []
            if failed:  # Jest's --lf: the failed tests' files, by their names
                listed, first.pattern = failed, names_pattern(failed)
                files = dict(Counter(test.file for test in failed))
        if request.selection.shard is not None:
            files = shard(request, files, events)
            listed = [test for test in listed if test.file in files]
            if not files:  # every selected file is another shard's: nothing to do here
                return 0
        first.run(files, events.estimates(), events.file_estimates())
        first.stop_servers()  # step 2 runs each test alone, in a fresh process
        if first.overheads:  # what each file costs besides its tests, for the next plan
            events.emit(FilesCollected(dict(first.overheads)))
        if first.errors:
            events.emit(*(CollectionFailed(e.file, e.text) for e in first.errors.values()))
        tests = first.tests(listed)
        if not tool.can_list:  # Jest: the names are known only now
            tests = [t for t in tests if keep(request, t)]
        recorder = Recorder(events)
        code = run_tests(request, recorder, tests, first.run_one)
        save_last_failed(request.root, recorder.failed)
        # As aqe does for pytest: the healthy files ran; a broken one fails the run.
        return 1 if first.errors and code in (0, 5) else code


class JestAdapter(VitestAdapter):
    """Jest, through the same batches (see ``_jest``)."""

    name = "jest"
    tool = Jest
    configs = JEST_CONFIGS


def shard(request: RunRequest, files: Mapping[str, int], events: RunEvents) -> dict[str, int]:
    """This job's files of ``--shard I/N``: whole files, by the history's seconds."""
    assert request.selection.shard is not None
    seconds: dict[str, float | None] = dict.fromkeys(files)
    known: Counter[str] = Counter()
    for nodeid, estimate in events.estimates().items():
        file = nodeid.split(SEPARATOR, 1)[0]
        if file in seconds:
            seconds[file] = (seconds[file] or 0.0) + estimate.total
            known[file] += 1
    for file, overhead in events.file_estimates().items():
        if seconds.get(file) is not None:  # a timed file's imports and setup
            seconds[file] = (seconds[file] or 0.0) + overhead
    counts = {file: files[file] or known[file] or 1 for file in files}
    kept, info = shard_files(seconds, sizes(request.root, files), request.selection.shard, counts)
    events.emit(info)
    return {file: files[file] for file in kept}


def keep(request: RunRequest, test: CollectedTest) -> bool:
    """``-k`` and ``--deselect`` on a test found by running it."""
    selection = request.selection
    if selection.keyword and not keyword_matches(selection.keyword, test.nodeid):
        return False
    return not test.nodeid.startswith(tuple(selection.deselect)) if selection.deselect else True


def last_failed_tests(request: RunRequest, files: Mapping[str, int]) -> list[CollectedTest]:
    if not request.selection.last_failed:
        return []
    failed = sorted(load_last_failed(request.root))
    tests = [CollectedTest(nodeid, nodeid.split(SEPARATOR, 1)[0], None) for nodeid in failed]
    return [test for test in tests if test.file in files and SEPARATOR in test.nodeid]


def filters(request: RunRequest) -> list[str]:
    """The selection's paths, as Vitest's file filters relative to the project."""
    out: list[str] = []
    for raw in request.selection.paths:
        path = Path(raw.split("::", 1)[0]).resolve()
        if path == request.root.resolve():
            continue
        try:
            out.append(path.relative_to(request.root.resolve()).as_posix())
        except ValueError:
            out.append(raw)
    return out


def narrowed(request: RunRequest) -> bool:
    selection = request.selection
    return bool(selection.keyword or selection.deselect or selection.last_failed)


def select(request: RunRequest, tests: list[CollectedTest]) -> list[CollectedTest]:
    """``-k`` (case-insensitive substrings of the id, ``and``/``or``/``not`` as
    pytest's), ``--deselect`` (an id or its prefix) and ``--lf``."""
    selection = request.selection
    if selection.keyword:
        tests = [t for t in tests if keyword_matches(selection.keyword, t.nodeid)]
    if selection.deselect:
        tests = [t for t in tests if not t.nodeid.startswith(tuple(selection.deselect))]
    if selection.last_failed:
        failed = load_last_failed(request.root)
        chosen = [t for t in tests if t.nodeid in failed]
        tests = chosen or tests  # as pytest: no known failures, run everything
    return tests


def keyword_matches(expression: str, nodeid: str) -> bool:
    """pytest's ``-k`` grammar over one id: words are case-insensitive substrings."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    words = [t for t in tokens if t not in ("(", ")", "and", "or", "not")]
    text = nodeid.lower()
    python = " ".join(
        t if t in ("(", ")", "and", "or", "not") else repr(t.lower() in text) for t in tokens
    )
    try:
        return bool(eval(python, {"__builtins__": {}}, {}))  # only True/False/and/or/not
    except SyntaxError:
        return all(word.lower() in text for word in words)


def names_pattern(tests: Iterable[CollectedTest]) -> str:
    """A ``-t`` regular expression matching exactly these tests' names."""
    names = sorted({exact_name(test) for test in tests})
    return "^(?:" + "|".join(names) + ")$"


def exact_name(test: CollectedTest) -> str:
    """Vitest matches ``-t`` against the name path joined by spaces. A copy's id
    (``name [2]``) matches its name too: the run picks the copy by its place."""
    names = [test.nodeid]
    copied = original(test.nodeid)
    if copied is not None:
        names.append(copied)
    escaped = [_js_escape(" ".join(name.split(SEPARATOR)[1:])) for name in names]
    return escaped[0] if len(escaped) == 1 else "(?:" + "|".join(escaped) + ")"


def _js_escape(text: str) -> str:
    return re.sub(r"[\\^$.*+?()[\]{}|/]", lambda m: "\\" + m.group(0), text)


class FirstAttempts:
    """Step 1: every selected file's tests in batches, each on a worker's long-lived
    server; their results, by id."""

    def __init__(self, tool: Vitest | Jest, request: RunRequest) -> None:
        self.tool = tool
        self.request = request
        #: A ``-t`` pattern for every batch (a run narrowed by name), or None.
        self.pattern: str | None = None
        #: Servers between batches: a worker thread takes one, or starts one.
        self.idle: list[Server] = []
        #: Each file's seconds outside its tests, as its server measured them.
        self.overheads: dict[str, float] = {}
        self.started = 0
        #: Servers starting in the background (``warm``), and a signal when one is up.
        self.warming = 0
        self.scratch = Path(tempfile.mkdtemp(prefix="aqe-vitest-servers-"))
        self.results: dict[str, TestResult] = {}
        self.cases: dict[str, Case] = {}
        self.errors: dict[str, FileError] = {}
        #: Files whose batch ended without a report.
        self.lost: list[str] = []
        self.interrupted = False
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.failures = 0

    def __enter__(self) -> FirstAttempts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_servers()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def stop_servers(self) -> None:
        with self.changed:
            while self.warming:  # a server still starting joins the idle ones first
                self.changed.wait()
            idle, self.idle = self.idle, []
        for server in idle:
            self.tool.retire(server)

    def warm(self, count: int) -> None:
        """Start ``count`` servers now, in the background, beside whatever the run
        does before its first batch (listing the files): the workers' start-ups then
        overlap instead of following one another."""
        for _ in range(count):
            with self.lock:
                self.warming += 1
            threading.Thread(target=self._warm_one, name="aqe-vitest-warm", daemon=True).start()

    def _warm_one(self) -> None:
        try:
            server: Server | None = self._start()
        except Exception:  # the batch that needs it starts one and reports why not
            server = None
        with self.changed:
            self.warming -= 1
            if server is not None:
                self.idle.append(server)
            self.changed.notify_all()

    def _server(self) -> Server:
        """An idle server (waiting for one still starting), else a new one."""
        with self.changed:
            while not self.idle and self.warming:
                self.changed.wait()
            if self.idle:
                return self.idle.pop()
        return self._start()

    def _start(self) -> Server:
        with self.lock:
            self.started += 1
            scratch = self.scratch / str(self.started)
        scratch.mkdir()
        return self.tool.serve(self.request.timeout, self.request.selection.extra_args, scratch)

    def _release(self, server: Server) -> None:
        if server.alive():
            with self.lock:
                self.idle.append(server)
        else:
            self.tool.retire(server)

    def list_files(self, filters: Sequence[str]) -> list[str]:
        """The selected test files: Vitest's first server lists them (its start-up is
        the run's first batch's), Jest lists them itself."""
        if not isinstance(self.tool, Vitest):
            return self.tool.list_files(filters)
        server = self._start()  # its own, beside those warming
        try:
            return self.tool.server_files(server, filters)
        finally:
            self._release(server)

    def run(
        self,
        files: Mapping[str, int],
        estimates: Mapping[str, DurationEstimate],
        overheads: Mapping[str, float] | None = None,
    ) -> None:
        """``files``: each file's number of selected tests (0: unknown yet);
        ``overheads``: the history's seconds of each file outside its tests."""
        root = self.request.root
        batches = plan(files, estimates, self.request.workers, sizes(root, files), overheads)
        workers = max(1, min(self.request.workers, len(batches)))
        with ThreadPoolExecutor(workers, thread_name_prefix="aqe-vitest") as pool:
            try:
                for _ in pool.map(self._batch, batches):
                    pass
            except BaseException:  # Ctrl-C: end the batches rather than wait for them
                self.interrupted = True
                self.tool.kill_all()
                raise

    def _stopping(self) -> bool:
        if self.interrupted:
            return True
        selection = self.request.selection
        limit = 1 if selection.exitfirst else selection.maxfail
        return limit is not None and self.failures >= limit

    def _batch(self, batch: tuple[list[str], int]) -> None:
        files, count = batch
        if self._stopping():
            return
        timeout = self.request.timeout
        deadline = None if timeout is None else STARTUP + timeout * max(1, count)
        server = self._server()
        done = self.tool.run_on(server, files, self.pattern, deadline)
        self._release(server)
        self._keep(done)
        # Files the report leaves out (its process was killed or crashed, or Vitest
        # failed before running them): their tests are listed and run alone.
        reported = {case.file for case in done.cases} | {error.file for error in done.errors}
        with self.lock:
            self.lost.extend(file for file in files if file not in reported)

    def _keep(self, done: Batch) -> None:
        with self.lock:
            self.overheads.update(done.overheads)
            for error in done.errors:
                self.errors.setdefault(error.file, error)
            for case in done.cases:
                self.cases.setdefault(case.nodeid, case)
                if not has_result(case):
                    continue  # its process died first: it runs alone in step 2
                out, err = done.console.get(case.nodeid, ("", ""))
                result = to_result(case, done.start, done.stop, out, err)
                self.results[case.nodeid] = result
                if result.outcome in FAILING_OUTCOMES:
                    self.failures += 1

    def tests(self, listed: Sequence[CollectedTest]) -> list[CollectedTest]:
        """Every test to record: those the batches reported (with the skipped and todo
        ones ``vitest list`` leaves out, unless the run was narrowed by name), those
        ``listed``, and those of files whose batch died before reporting."""
        chosen = {test.nodeid: test for test in listed}
        for case in self.cases.values():
            if self.pattern is None or case.nodeid in chosen:
                chosen.setdefault(case.nodeid, CollectedTest(case.nodeid, case.file, case.line))
        if self.lost and not self._stopping():
            for test in self.rescue(sorted(set(self.lost))):
                if self.pattern is None or test.nodeid in chosen or test.nodeid == test.file:
                    chosen.setdefault(test.nodeid, test)
        tests = sorted(chosen.values(), key=lambda t: (t.file, t.line or 0))
        if self._stopping():  # -x/--maxfail: tests that never ran are dropped
            tests = [t for t in tests if t.nodeid in self.results]
        return tests

    def rescue(self, files: list[str]) -> list[CollectedTest]:
        """The tests of files whose batch died before reporting, to run alone. Jest
        cannot list them: each file runs alone first, and one that dies again is
        one result under the file's own id."""
        if isinstance(self.tool, Vitest):  # its filters are substrings: keep these files'
            return [test for test in self.tool.list_tests(files) if test.file in files]
        found: list[CollectedTest] = []
        for file in files:
            done = self._file_alone(file)
            self._keep(done)
            found += [CollectedTest(c.nodeid, c.file, c.line) for c in done.cases]
            if not done.cases and file not in self.errors:
                test = CollectedTest(file, file, None)
                self.results[file] = self._lost(test, done)
                found.append(test)
        return found

    def _file_alone(self, file: str) -> Batch:
        timeout = self.request.timeout
        deadline = None if timeout is None else STARTUP + timeout
        extra = self.request.selection.extra_args
        return self.tool.run([file], self.pattern, timeout, deadline, extra)

    def _lost(self, test: CollectedTest, done: Batch) -> TestResult:
        if done.killed:
            cause = "still running at its deadline: its Node process was killed"
            return lost(test, "timeout", cause, done.start, done.stop, done.output)
        cause = "its Node process ended before the test reported a result (killed or crashed)"
        return lost(test, "crashed", cause, done.start, done.stop, done.output)

    def run_one(self, test: CollectedTest) -> TestResult:
        """Step 2: the batch's result first; a retry or a lost test runs alone."""
        with self.lock:
            result = self.results.pop(test.nodeid, None)
        return result if result is not None else self.alone(test)

    def alone(self, test: CollectedTest) -> TestResult:
        if test.nodeid == test.file:  # a whole file that died (Jest): run it again
            done = self._file_alone(test.file)
            if not done.cases:
                return self._lost(test, done)
            results = [to_result(case, done.start, done.stop, tier="cold") for case in done.cases]
            worst = next((r for r in results if r.outcome in FAILING_OUTCOMES), results[0])
            return dataclasses.replace(worst, nodeid=test.nodeid, line=None)
        timeout = self.request.timeout
        deadline = None if timeout is None else STARTUP + timeout
        pattern = "^" + exact_name(test) + "$"
        if isinstance(self.tool, Vitest):
            # A fresh server of its own: the file by its exact path (``vitest run FILE``
            # would also run every file whose path ends the same), a fresh process.
            server = self._start()
            try:
                done = self.tool.run_on(server, [test.file], pattern, deadline)
            finally:
                self.tool.retire(server)
        else:  # --runTestsByPath: Jest takes the path exactly
            extra = self.request.selection.extra_args
            done = self.tool.run([test.file], pattern, timeout, deadline, extra)
        case = done.by_id.get(test.nodeid)
        if case is not None and has_result(case):
            out, err = done.console.get(case.nodeid, ("", ""))
            return to_result(case, done.start, done.stop, out, err, tier="cold")
        return self._lost(test, done)


def plan(
    files: Mapping[str, int],
    estimates: Mapping[str, DurationEstimate],
    workers: int,
    sizes: Mapping[str, int] | None = None,
    overheads: Mapping[str, float] | None = None,
) -> list[tuple[list[str], int]]:
    """Batches of files, each with its number of tests (from the history when not
    given; at least one). Each batch is a Node.js and Vite start-up, which dwarfs many
    a file's tests, so batches are few: the files the history knows in one batch per
    worker, balanced by their measured seconds; those it does not know (they may be
    long) first, in ``BATCHES_PER_WORKER`` batches per worker balanced by their
    ``sizes`` in bytes, the best guess there is. Longest first, in both. A known
    file weighs its tests' seconds and its ``overheads`` (its environment, imports
    and setup: with many small files, most of a batch's time)."""
    seconds = {file: (overheads or {}).get(file, 0.0) for file in files}
    known: Counter[str] = Counter()
    for nodeid, estimate in estimates.items():
        file = nodeid.split(SEPARATOR, 1)[0]
        if file in seconds:
            seconds[file] += estimate.total
            known[file] += 1
    counts = {file: files[file] or known[file] or 1 for file in files}
    sized = sizes or {}
    new = {file: float(sized.get(file, 0)) for file in files if not known[file]}
    old = {file: seconds[file] for file in files if known[file]}
    batches = _balanced(new, max(1, workers) * BATCHES_PER_WORKER) + _balanced(old, workers)
    return [(batch, sum(counts[f] for f in batch)) for batch in batches]


def _balanced(weights: Mapping[str, float], bins: int) -> list[list[str]]:
    """``weights``' files in at most ``bins`` batches of about equal weight (the
    longest-processing-time rule), the heaviest batch first."""
    batches: list[list[str]] = [[] for _ in range(max(1, min(bins, len(weights))))]
    loads = [0.0] * len(batches)
    for file in sorted(weights, key=lambda f: -weights[f]):
        emptiest = min(range(len(batches)), key=lambda i: (loads[i], len(batches[i])))
        batches[emptiest].append(file)
        loads[emptiest] += weights[file]
    ordered = sorted(zip(loads, batches, strict=True), key=lambda pair: -pair[0])
    return [batch for _, batch in ordered if batch]


def sizes(root: Path, files: Iterable[str]) -> dict[str, int]:
    """Each file's size in bytes: how long its tests take, when nothing better is known."""
    found: dict[str, int] = {}
    for file in files:
        try:
            found[file] = (root / file).stat().st_size
        except OSError:
            found[file] = 0
    return found


class Recorder:
    """The run's events, passed on; remembers each test's last outcome for ``--lf``."""

    def __init__(self, events: RunEvents) -> None:
        self.events = events
        self.failed: dict[str, bool] = {}

    def emit(self, *events: Event) -> None:
        for event in events:
            if isinstance(event, TestFinished):
                result = event.result
                self.failed[result.nodeid] = result.outcome in FAILING_OUTCOMES
        self.events.emit(*events)

    def estimates(self) -> Mapping[str, DurationEstimate]:
        return self.events.estimates()

    def file_estimates(self) -> Mapping[str, float]:
        return self.events.file_estimates()


def load_last_failed(root: Path) -> set[str]:
    try:
        data = json.loads((root / LAST_FAILED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return {str(nodeid) for nodeid in data} if isinstance(data, list) else set()


def save_last_failed(root: Path, outcomes: Mapping[str, bool]) -> None:
    """Like pytest's cache: failures stay known until the test passes."""
    known = load_last_failed(root)
    known |= {nodeid for nodeid, failed in outcomes.items() if failed}
    known -= {nodeid for nodeid, failed in outcomes.items() if not failed}
    path = root / LAST_FAILED
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(sorted(known), indent=1) + "\n", encoding="utf-8")
    except OSError:
        pass  # a read-only checkout: --lf then runs everything
