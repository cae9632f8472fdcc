"""Runs started by agents: each one an ``aqe run`` child in its own process group.

The server never runs tests in its own process: it runs threads (the protocol's
I/O), and aqe forks its workers from the collecting process, which must not run
threads. A child also keeps a hung or crashing suite away from the server, and its
process group is what a cancel kills, so no worker can outlive a cancelled run.

A run's directory (``.aqe/mcp/runs/<id>``) holds what the child writes: the live
snapshot (``status.json``, see ``_engine._status``), the JSON report and the
terminal output. Only one run holds a project at a time; later ones wait in a
queue when the caller asked for that.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver.exceptions import ToolError

from .._adapters import Selection, selection_args
from .._engine._status import Snapshot, read_snapshot
from .._engine._status import rss_mb as rss_mb
from .._procs import group_alive as group_alive
from .._procs import kill_run, stop_run
from .._procs import running as running

RunState = Literal["queued", "running", "finished", "cancelled", "failed"]

#: Seconds a cancelled run gets to write its reports before its group is killed.
CANCEL_GRACE = 3.0
#: Finished runs whose files are kept; older ones are deleted.
KEEP_RUNS = 20
#: Runs that may wait behind the active one.
MAX_QUEUE = 5


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What to run: checked values only (see ``_guard``)."""

    paths: tuple[str, ...] = ()
    node_ids: tuple[str, ...] = ()
    keyword: str | None = None
    marker: str | None = None
    last_failed: bool = False
    failed_first: bool = False
    exitfirst: bool = False
    maxfail: int | None = None
    workers: int | None = None
    retries: int | None = None
    timeout: float | None = None
    #: ``aqe run --affected REF`` (issue 20's run_affected tool).
    affected: str | None = None

    def argv(self, directory: Path, run_id: str) -> list[str]:
        argv = [
            sys.executable, "-m", "aqe", "run", "--no-live", "-q",
            "--json", str(directory / "report.json"),
            "--status", str(directory / "status.json"),
            "--run-id", run_id,
        ]  # fmt: skip
        if self.workers is not None:
            argv += ["--workers", str(self.workers)]
        if self.retries is not None:
            argv += ["--retries", str(self.retries)]
        if self.timeout is not None:
            argv += ["--timeout", f"{self.timeout:g}"]
        argv += selection_args(
            Selection(
                keyword=self.keyword,
                marker=self.marker,
                last_failed=self.last_failed,
                failed_first=self.failed_first,
                exitfirst=self.exitfirst,
                maxfail=self.maxfail,
            )
        )
        if self.affected is not None:
            argv.append(f"--affected={self.affected}")
        return argv + list(self.paths) + list(self.node_ids)

    def describe(self) -> dict[str, object]:
        return {
            key: value
            for key, value in (
                ("paths", list(self.paths)),
                ("node_ids", list(self.node_ids)),
                ("keyword", self.keyword),
                ("marker", self.marker),
                ("last_failed", self.last_failed),
                ("failed_first", self.failed_first),
                ("exitfirst", self.exitfirst),
                ("maxfail", self.maxfail),
                ("workers", self.workers),
                ("retries", self.retries),
                ("timeout", self.timeout),
            )
            if value not in (None, False, [], ())
        }


@dataclass
class RunHandle:
    run_id: str
    request: RunRequest
    session: str
    directory: Path
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    state: RunState = "queued"
    exit_code: int | None = None
    process: subprocess.Popen[bytes] | None = None
    cancel_requested: bool = False
    #: Why the run could not start, when ``state == "failed"``.
    error: str = ""
    _report: RunReport | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("finished", "cancelled", "failed")

    def status(self) -> Snapshot | None:
        """The child's latest snapshot, or None before its first one."""
        return read_snapshot(self.directory / "status.json")

    def report(self) -> RunReport | None:
        """The finished run's JSON report, read once and kept without passing tests' output."""
        if self._report is not None or not self.finished:
            return self._report
        try:
            with open(self.directory / "report.json", encoding="utf-8") as stream:
                data: object = json.load(stream)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        self._report = RunReport.from_json(data)
        return self._report

    def output_tail(self, limit: int = 4000) -> str:
        """The end of the run's terminal output (raw: callers clean it)."""
        path = self.directory / "output.log"
        try:
            with open(path, "rb") as stream:
                stream.seek(0, os.SEEK_END)
                end = stream.tell()
                stream.seek(max(0, end - limit))
                return stream.read().decode("utf-8", "replace")
        except OSError:
            return ""


class ProjectBusy(ToolError):
    """Another run holds the project and the caller did not ask to queue."""


class RunManager:
    """Starts, watches, queues and cancels one project's runs; thread-safe."""

    def __init__(self, root: Path, directory: Path, keep: int = KEEP_RUNS) -> None:
        self.root = root
        self.directory = directory
        self.keep = keep
        self._lock = threading.RLock()
        self._runs: dict[str, RunHandle] = {}
        self._queue: list[str] = []
        self._closed = False

    # -- looking up ------------------------------------------------------------------

    def get(self, run_id: str) -> RunHandle:
        with self._lock:
            handle = self._runs.get(run_id)
        if handle is None:
            raise ToolError(f"no run {run_id[:80]!r} on this server (see fleet_status for runs)")
        return handle

    def active(self) -> RunHandle | None:
        with self._lock:
            for handle in self._runs.values():
                if handle.state == "running":
                    return handle
        return None

    def queued(self) -> list[RunHandle]:
        with self._lock:
            return [self._runs[run_id] for run_id in self._queue]

    def runs(self) -> list[RunHandle]:
        with self._lock:
            return list(self._runs.values())

    # -- starting --------------------------------------------------------------------

    def submit(self, request: RunRequest, session: str, queue: bool) -> RunHandle:
        with self._lock:
            if self._closed:
                raise ToolError("the server is shutting down")
            holder = self.active() or (self.queued()[0] if self._queue else None)
            if holder is not None and not queue:
                done, known = _progress_of(holder)
                raise ProjectBusy(
                    f"run {holder.run_id} holds the project ({holder.state}, {done}/{known} "
                    "tests done); wait with get_run, stop it with cancel_run, or pass queue=true"
                )
            if len(self._queue) >= MAX_QUEUE:
                raise ToolError(f"{MAX_QUEUE} runs are already queued; wait or cancel one")
            run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
            handle = RunHandle(run_id, request, session, self.directory / run_id)
            self._runs[run_id] = handle
            self._queue.append(run_id)
            self._prune()
            self._start_next()
            return handle

    def _start_next(self) -> None:
        """Start the first queued run if none runs (called with the lock held)."""
        if self.active() is not None or not self._queue or self._closed:
            return
        handle = self._runs[self._queue.pop(0)]
        handle.directory.mkdir(parents=True, exist_ok=True)
        try:
            with open(handle.directory / "output.log", "wb") as log:
                handle.process = subprocess.Popen(
                    handle.request.argv(handle.directory, handle.run_id),
                    cwd=self.root,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: what cancel kills
                    env={**os.environ, "NO_COLOR": "1"},
                )
        except OSError as exc:
            handle.state, handle.error = "failed", f"cannot start aqe run: {exc}"
            handle.ended = time.time()
            self._start_next()
            return
        handle.state, handle.started = "running", time.time()
        threading.Thread(
            target=self._watch, args=(handle,), name=f"aqe-run-{handle.run_id}", daemon=True
        ).start()

    def _watch(self, handle: RunHandle) -> None:
        assert handle.process is not None
        code = handle.process.wait()
        _kill_run(handle)  # a worker the run left behind, if any
        with self._lock:
            handle.exit_code = code
            handle.ended = time.time()
            handle.state = "cancelled" if handle.cancel_requested else "finished"
            self._start_next()

    # -- stopping --------------------------------------------------------------------

    def cancel(self, handle: RunHandle) -> None:
        """Stop ``handle``: a queued run never starts; a running one is stopped.

        The child gets SIGTERM twice (stop scheduling, then kill the workers at
        once and write the reports); if it has not ended after
        :data:`CANCEL_GRACE` seconds its whole process group is killed.
        """
        with self._lock:
            if handle.finished:
                return
            handle.cancel_requested = True
            if handle.state == "queued":
                self._queue.remove(handle.run_id)
                handle.state, handle.ended = "cancelled", time.time()
                return
            process = handle.process
        assert process is not None
        threading.Thread(target=_stop, args=(handle, process), daemon=True).start()

    def shutdown(self) -> None:
        """Kill every run of this server now: the server is going away."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            running = [h for h in self._runs.values() if h.state == "running"]
        for handle in running:
            handle.cancel_requested = True
            assert handle.process is not None
            _kill_run(handle)
            with contextlib.suppress(subprocess.TimeoutExpired):
                handle.process.wait(timeout=5)
            _kill_run(handle)

    def forget_session(self, session: str) -> None:
        """Delete the files of a gone session's finished runs."""
        with self._lock:
            for run_id, handle in list(self._runs.items()):
                if handle.session == session and handle.finished:
                    del self._runs[run_id]
                    shutil.rmtree(handle.directory, ignore_errors=True)

    def _prune(self) -> None:
        finished = [h for h in self._runs.values() if h.finished]
        for handle in finished[: max(0, len(finished) - self.keep)]:
            del self._runs[handle.run_id]
            shutil.rmtree(handle.directory, ignore_errors=True)


def _progress_of(handle: RunHandle) -> tuple[int, int | str]:
    status = handle.status()
    return (0, "?") if status is None else (status.done, status.known)


def _stop(handle: RunHandle, process: subprocess.Popen[bytes]) -> None:
    stop_run(process, handle.directory / "status.json", CANCEL_GRACE)


def _kill_run(handle: RunHandle) -> None:
    """SIGKILL every process of a run (see ``_procs.kill_run``)."""
    assert handle.process is not None
    kill_run(handle.process.pid, handle.directory / "status.json")


#: Final outcomes that fail a run.
FAILING = ("failed", "error", "crashed", "timeout")
#: A ``tests[]`` entry of the JSON report: the child's output, untrusted, read
#: defensively where it is used (``digest``, ``_triage``).
Entry = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RunReport:
    """A finished run's JSON report (``docs/json-report.md``) as the tools read it."""

    #: The project root the run ran in.
    root: str | None
    #: Tests per final outcome, and how many tests had one.
    outcomes: dict[str, int]
    total: int | None
    #: Every attempt (a retried test has several).
    attempts: int | None
    tiers: dict[str, Any] | None
    tests: tuple[Entry, ...]
    collection_errors: tuple[Entry, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunReport:
        """Read the report; passing tests' captured output is dropped (never asked for)."""
        tests = tuple(t for t in data.get("tests", ()) if isinstance(t, dict))
        for entry in tests:
            if entry.get("outcome") in ("passed", "skipped", "xfailed", "xpassed"):
                entry["stdout"] = entry["stderr"] = entry["log"] = ""
        final = dict(data.get("outcomes", {}))
        total = final.pop("total", None)
        attempts = data.get("summary", {}).get("total")
        return cls(
            root=data.get("run", {}).get("root"),
            outcomes={k: int(v) for k, v in final.items() if v},
            total=None if total is None else int(total),
            attempts=None if attempts is None else int(attempts),
            tiers=data.get("tiers"),
            tests=tests,
            collection_errors=tuple(
                e for e in data.get("collection_errors", ()) if isinstance(e, dict)
            ),
        )

    def entries_of(self, nodeid: str) -> list[Entry]:
        """Every attempt of ``nodeid``; or, for a file that failed to collect, its error."""
        return [t for t in self.tests if t["nodeid"] == nodeid] or [
            collection_entry(e) for e in self.collection_errors if e.get("location") == nodeid
        ]

    def failures(self) -> Iterator[Entry]:
        """Files that failed to collect, then the final attempt of each test whose final
        outcome is a failure, in report order; all shaped like ``tests[]`` entries."""
        for error in self.collection_errors:
            yield collection_entry(error)
        last: dict[str, Entry] = {}
        for entry in self.tests:
            last[entry["nodeid"]] = entry
        for entry in last.values():
            if entry.get("outcome") in FAILING:
                yield entry


_RAISED = re.compile(r"^E\s+(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")


def collection_entry(error: Entry) -> Entry:
    """A ``collection_errors[]`` entry as a ``tests[]`` one: outcome ``error`` at ``collect``,
    with the exception the last ``E`` line of pytest's text names."""
    location = str(error.get("location", ""))
    text = str(error.get("traceback") or "")
    error_type, message = None, text.strip().splitlines()[-1] if text.strip() else ""
    for line in reversed(text.splitlines()):
        if match := _RAISED.match(line.strip()):
            error_type, message = match["type"], (match["message"] or match["type"])
            break
    return {
        "nodeid": location,
        "file": location.split("::", 1)[0],
        "line": None,
        "outcome": "error",
        "when": "collect",
        "error_type": error_type,
        "message": message,
        "traceback": text,
        "stdout": "",
        "stderr": "",
        "log": "",
        "duration": 0.0,
        "attempt": 1,
        "tier": "hot",
        "worker": 0,
    }
