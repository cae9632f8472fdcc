"""The agent: one Ray actor per node, the driver's handle on that node's host.

It starts the node host (``_host``, a fresh single-threaded interpreter: an actor
process runs Ray's threads and must not fork workers) in a session of its own,
relays the driver's requests to it over a socketpair, and keeps each worker's exit
as the host reports it, for ``exits`` (a long poll the driver keeps one of in
flight) and ``reap``. Methods run on the actor's thread pool, hence the lock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from typing import Any

from ... import _transport
from ..._trace import mark
from ._messages import CONTROL_ENV, Exited, Fork, Forked, Ready, Signal

#: Lines of the host's output shown when it ends before it collected.
_TAIL_LINES = 15


class NodeAgent:
    def __init__(self) -> None:
        mark("ray-agent")
        self._lock = threading.Condition()
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._files: tuple[str, ...] | None = None
        self._forked: dict[int, int] = {}
        #: Every exit in the order reported: (pid, wait status).
        self._exits: list[tuple[int, int]] = []
        self._status: dict[int, int] = {}
        self._ended = False
        self._log = ""
        #: Where the host runs (its data files are there), and every worker it forked.
        self._cwd = ""
        self._pids: set[int] = set()

    def start(self, args: list[str], cwd: str | None, env: dict[str, str]) -> str | None:
        """Start the host in ``cwd`` (None: the actor's own directory, Ray's unpacked
        working_dir); a one-line reason when it cannot."""
        mark("ray-agent-start")
        if cwd is not None and not os.path.isdir(cwd):
            return f"has no directory {cwd}"
        mine, its = socket.socketpair()
        fd, self._log = tempfile.mkstemp(prefix="aqe-ray-host-", suffix=".log")
        environ = {**os.environ, **env, CONTROL_ENV: str(its.fileno())}
        # Ray's own variables would make pytest's processes Ray workers.
        for name in [n for n in environ if n.startswith("RAY_") and n != "RAY_ADDRESS"]:
            environ.pop(name)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "aqe._engine._ray._host", *args],
            cwd=cwd,
            env=environ,
            pass_fds=[its.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            start_new_session=True,
        )
        os.close(fd)
        its.close()
        self._control = mine
        self._cwd = os.path.abspath(cwd or os.getcwd())
        threading.Thread(target=self._listen, name="aqe-host-reader", daemon=True).start()
        return None

    def _listen(self) -> None:
        assert self._control is not None
        reader = _transport.FrameReader()
        while True:
            try:
                data = self._control.recv(1 << 16)
                messages = reader.feed(data)
            except Exception:
                data = b""
            with self._lock:
                if not data:
                    self._ended = True
                    self._lock.notify_all()
                    return
                for message in messages:
                    match message:
                        case Ready(files=files):
                            self._files = files
                        case Forked(slot=slot, pid=pid):
                            self._forked[slot] = pid
                            self._pids.add(pid)
                        case Exited(pid=pid, status=status):
                            self._exits.append((pid, status))
                            self._status[pid] = status
                        case _:
                            pass
                self._lock.notify_all()

    def ready(self, timeout: float) -> tuple[str, ...] | str:
        """The files the host collected, or why it has none (its output's tail)."""
        with self._lock:
            self._lock.wait_for(lambda: self._files is not None or self._ended, timeout)
            if self._files is not None:
                # Its output matters only until it has collected: never left behind
                # by an agent killed later (a lost node).
                with contextlib.suppress(OSError):
                    os.unlink(self._log)
                return self._files
        if not self._ended:
            return f"did not finish collecting in {timeout:g}s"
        code = self._proc.wait() if self._proc is not None else None
        return f"pytest ended with code {code} before collecting:\n{self._tail()}"

    def _tail(self) -> str:
        try:
            with open(self._log, encoding="utf-8", errors="replace") as stream:
                lines = stream.read().rstrip().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-_TAIL_LINES:])

    def fork(
        self,
        slot: int,
        address: tuple[str, int],
        token: bytes,
        workerinput: Any,
        env: dict[str, str] | None = None,
        pycache: str = "",
    ) -> int:
        """Have the host fork worker ``slot``: its pid (-1 if the host could not)."""
        with self._lock:
            if self._control is None or self._ended:
                return -1
            self._forked.pop(slot, None)
            request = Fork(slot, address, token, dict(workerinput), dict(env or {}), pycache)
            _transport.send(self._control, request)
            self._lock.wait_for(lambda: slot in self._forked or self._ended, 60.0)
            return self._forked.pop(slot, -1)

    def signal(self, pid: int, signum: int) -> None:
        with self._lock:
            if self._control is not None and not self._ended:
                with contextlib.suppress(OSError):
                    _transport.send(self._control, Signal(pid, signum))

    def exits(self, seen: int, wait: float) -> list[tuple[int, int]]:
        """Exits after the first ``seen``, waiting up to ``wait`` seconds for one."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._exits) > seen or self._ended, wait)
            return self._exits[seen:]

    def reap(self, pid: int, grace: float) -> int | None:
        """Worker ``pid``'s wait status; killed if it lingers past ``grace``."""
        with self._lock:
            if self._lock.wait_for(lambda: pid in self._status or self._ended, grace):
                return self._status.get(pid)
        self.signal(pid, signal.SIGKILL)
        with self._lock:
            self._lock.wait_for(lambda: pid in self._status or self._ended, 5.0)
            return self._status.get(pid)

    def coverage(self, owner: int, skip: list[str], wait: float) -> tuple[str, list[Any]]:
        """Once every worker has exited (up to ``wait`` seconds): the host's directory
        and the coverage data files its workers wrote there for driver ``owner``,
        except those the driver sees itself (``_coverage``)."""
        from . import _coverage

        with self._lock:
            self._lock.wait_for(lambda: self._ended or self._pids <= set(self._status), wait)
        return self._cwd, _coverage.take(self._cwd, owner, skip)

    def stop(self) -> None:
        """End the host and everything it started (its whole session)."""
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        self._proc.wait()
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log)
