"""The worker pool: the coordinator's workers, their sockets and what a dead one left.

Workers come from an execution backend (``_backend``): the run's own (forked, or
spawned where forking is unsafe), and fresh interpreters for the cold tier. The
pool reads and writes their sockets, knows which are alive, kills them, and
collects a dead worker's evidence (its stacks and the last lines its test wrote).
Deciding what a death means is the coordinator's.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .. import _transport
from .._messages import ToCoordinator, ToWorker
from ._backend import ExecutionBackend

#: Lines of a dead test's output kept with its result.
OUTPUT_LINES = 20


@dataclass(slots=True)
class WorkerConn:
    """One worker process as the coordinator sees it."""

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
    #: The worker's journal (``_transport.Journal``), and the messages read so far.
    journal: str = ""
    received: int = 0
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
    backend: ExecutionBackend | None = None

    def busy(self) -> None:
        """It starts something new now (a test, a batch to collect)."""
        self.busy_since = time.monotonic()


class WorkerPool:
    def __init__(
        self,
        backend: ExecutionBackend,
        cold_backend: Callable[[], ExecutionBackend] | None = None,
    ) -> None:
        self.backend = backend
        self._cold_factory = cold_backend
        self._cold: ExecutionBackend | None = None
        self.conns: dict[int, WorkerConn] = {}
        self._selector = selectors.DefaultSelector()
        #: Per worker slot: how many workers in a row died having done nothing.
        self._barren: dict[int, int] = {}

    def spawn(self, worker_id: int, tier: str = "hot") -> WorkerConn:
        backend = self.backend
        if tier == "cold":
            if self._cold is None and self._cold_factory is not None:
                self._cold = self._cold_factory()
            backend = self._cold or backend
        pid, sock = backend.spawn(worker_id)
        sock.setblocking(False)
        conn = WorkerConn(worker_id, pid, sock, last_finish=time.time(), tier=tier)
        conn.busy()
        conn.backend = backend
        self.conns[worker_id] = conn
        self._selector.register(sock, selectors.EVENT_READ, conn)
        return conn

    # -- the sockets -------------------------------------------------------------

    def ready(self, timeout: float) -> list[WorkerConn]:
        """Workers with something to read, waiting up to ``timeout`` seconds."""
        return [key.data for key, _ in self._selector.select(timeout)]

    def read(self, conn: WorkerConn) -> list[ToCoordinator] | None:
        """The messages that arrived whole; None at the end of the stream. Raises
        ``BlockingIOError`` when nothing is waiting."""
        try:
            data = conn.sock.recv(1 << 20)
        except InterruptedError:
            raise BlockingIOError from None
        except BlockingIOError:
            raise
        except OSError:
            data = b""
        if not data:
            return None
        messages = conn.reader.feed(data)
        conn.received += len(messages)
        return messages

    def recover(self, conn: WorkerConn) -> list[ToCoordinator]:
        """What a worker that ended had written to its journal and never sent
        (results it held when it died); the journal is gone after."""
        path, conn.journal = conn.journal, ""
        return _transport.recover(path, conn.received) if path else []

    def send(self, worker: int, messages: Sequence[ToWorker]) -> None:
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

    def close(self, conn: WorkerConn) -> None:
        if conn.closed:
            return
        conn.closed = True
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()
        if not conn.last_finish:
            conn.last_finish = time.time()

    # -- the processes -------------------------------------------------------------

    def live(self) -> list[WorkerConn]:
        return [conn for conn in self.conns.values() if not conn.closed]

    def alive(self, worker: int) -> bool:
        conn = self.conns.get(worker)
        return conn is not None and not conn.closed

    def exited(self) -> list[WorkerConn]:
        """Workers whose process exited while their socket stays open (a process a
        test forked holds the other end: it inherited it)."""
        return [
            conn
            for conn in self.live()
            if (conn.backend or self.backend).poll(conn.pid) is not None
        ]

    def reap(self, conn: WorkerConn) -> int | None:
        """Close a worker that ended and wait for it: its wait status."""
        self.close(conn)
        return (conn.backend or self.backend).reap(conn.pid)

    def kill_all(self) -> None:
        for conn in self.live():
            conn.killed = True
            signal_worker(conn, signal.SIGKILL)

    def relay(self, signum: int) -> None:
        """Pass a signal the run received on to the workers of a remote backend: a
        terminal's Ctrl-C reaches local workers itself (one process group), those
        on other machines only hear it from here."""
        for conn in self.live():
            if getattr(conn.backend, "kill", None) is not None:
                signal_worker(conn, signum)

    def barren(self, worker: int, consumed: bool) -> int:
        """Count a death: how many workers in a row this slot lost having done nothing."""
        self._barren[worker] = 0 if consumed else self._barren.get(worker, 0) + 1
        return self._barren[worker]

    def stop(self) -> None:
        """Close every socket and end every worker; the pool is done."""
        for conn in self.conns.values():
            self.close(conn)
            if conn.journal:
                with contextlib.suppress(OSError):
                    os.unlink(conn.journal)
        self.backend.stop()
        if self._cold is not None:
            self._cold.stop()
        self._selector.close()

    def tail_idle(self) -> dict[int, float]:
        """Seconds each shared worker sat idle at the end, waiting for the last test."""
        finishes = {
            w: c.last_finish for w, c in self.conns.items() if c.last_finish and c.tier == "hot"
        }
        if not finishes:
            return {}
        end = max(finishes.values())
        return {w: round(end - t, 4) for w, t in finishes.items()}


def signal_worker(conn: WorkerConn, signum: int) -> None:
    """Signal a worker wherever it runs: a remote backend's own ``kill`` (its pid
    is another machine's), else ``os.kill`` here."""
    remote = getattr(conn.backend, "kill", None)
    if remote is not None:
        remote(conn.pid, signum)
    else:
        kill(conn.pid, signum)


def kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def stacks_written(path: str) -> bool:
    try:
        return os.path.getsize(path) > 0
    except OSError:
        return False


def take_outputs(paths: Sequence[str]) -> tuple[str, str]:
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


def take_stacks(path: str) -> str:
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
