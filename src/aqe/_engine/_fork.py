"""Forked workers: each one a copy-on-write image of the shallowly collected coordinator.

The coordinator forks its workers itself, while it is single-threaded (a lock held
by another thread at fork time stays locked forever in the child). No zygote
process sits in between: it would hold a full copy of the session's pages for the
whole run only to fork replacements, and the coordinator can do that itself, since
its loop and its live view run no thread. Should a thread appear anyway (a plugin
may start one), replacements come from the spawn launcher instead.

Workers share one process group of their own: a terminal's Ctrl-C reaches the
coordinator only, which decides; and ``stop`` ends the group, so processes a test
started go too. On Linux a worker also dies with the coordinator
(``PR_SET_PDEATHSIG``), whatever killed it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._signals import die_with_parent, ignored_at_start

if TYPE_CHECKING:
    from ._backend import Launcher

#: Runs in the forked worker with (worker id, its socket); returns the exit code.
WorkerEntry = Callable[[int, socket.socket], int]


class ForkLauncher:
    """Forks workers from the coordinator; ``spawn(worker_id) -> (pid, socket)``."""

    def __init__(self, entry: WorkerEntry, fallback: Callable[[], Launcher]) -> None:
        self._entry = entry
        self._fallback_factory = fallback
        self._fallback: Launcher | None = None
        self._pgid = 0
        self._pids: set[int] = set()
        self._parent_ends: list[socket.socket] = []
        self.exits: dict[int, int] = {}

    @staticmethod
    def can_fork() -> bool:
        return hasattr(os, "fork") and threading.active_count() == 1

    def spawn(self, worker_id: int) -> tuple[int, socket.socket]:
        if not self.can_fork():
            if self._fallback is None:
                self._fallback = self._fallback_factory()
            return self._fallback.spawn(worker_id)
        mine, its = socket.socketpair()
        # Objects alive now are the session's long-lived state: keep the child's
        # collector off them, so it neither scans them nor copies their pages.
        gc.freeze()
        try:
            pid = os.fork()
        except OSError:
            gc.unfreeze()
            mine.close()
            its.close()
            raise
        if pid == 0:  # pragma: no cover - runs in the worker
            code = 3
            try:
                self._become_worker(mine)
                code = self._entry(worker_id, its)
            finally:
                os._exit(code)
        gc.unfreeze()
        its.close()
        self._join_group(pid)
        self._pids.add(pid)
        self._parent_ends = [s for s in self._parent_ends if s.fileno() != -1]
        self._parent_ends.append(mine)
        return pid, mine

    def _become_worker(self, mine: socket.socket) -> None:  # pragma: no cover - child
        mine.close()
        for sock in self._parent_ends:
            with contextlib.suppress(OSError):
                sock.close()
        die_with_parent()
        with contextlib.suppress(OSError):
            os.setpgid(0, self._pgid)
        # As in a fresh interpreter: Ctrl-C in a test raises KeyboardInterrupt and
        # SIGTERM ends the process (the coordinator's handlers are not the tests'),
        # unless aqe was started ignoring them, as pytest's tests would be.
        for signum, handler in (
            (signal.SIGINT, signal.default_int_handler),
            (signal.SIGTERM, signal.SIG_DFL),
        ):
            signal.signal(signum, signal.SIG_IGN if ignored_at_start(signum) else handler)

    def _join_group(self, pid: int) -> None:
        # Done on both sides of the fork, so neither has to wait for the other.
        try:
            os.setpgid(pid, self._pgid)
        except OSError:
            # The group is gone (its members all exited), or the child is already
            # in it: start a new group with this worker as its leader.
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)
        with contextlib.suppress(OSError):
            self._pgid = os.getpgid(pid)

    def reap(self, pid: int, grace: float = 0.5) -> int | None:
        """Collect a worker that closed its socket: its wait status (see ``describe_exit``).

        A worker can close its end and keep running (a test may close every file
        descriptor): after ``grace`` seconds it is killed, never waited on forever.
        """
        if self._fallback is not None and pid not in self._pids:
            return self._fallback.reap(pid, grace)
        deadline = time.monotonic() + grace
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self._pids.discard(pid)
                return self.exits.get(pid)
            if done:
                self._pids.discard(pid)
                self.exits[pid] = status
                return status
            if time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                deadline = float("inf")
            time.sleep(0.002)

    def poll(self, pid: int) -> int | None:
        if self._fallback is not None and pid not in self._pids:
            return self._fallback.poll(pid)
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return self.exits.get(pid)
        if not done:
            return None
        self._pids.discard(pid)
        self.exits[pid] = status
        return status

    def stop(self) -> None:
        """Kill every worker and what they started; reap them."""
        if self._pgid:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pgid, signal.SIGKILL)
        for pid in list(self._pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(pid, 0)
                self.exits[pid] = status
            self._pids.discard(pid)
        for sock in self._parent_ends:
            with contextlib.suppress(OSError):
                sock.close()
        if self._fallback is not None:
            self._fallback.stop()


def describe_exit(status: int | None) -> str:
    """``exited with code 3`` or ``was killed by signal 11 (SIGSEGV)``, from a wait status."""
    if status is None:
        return "exited (status unknown)"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown"
        return f"was killed by signal {number} ({name})"
    if os.WIFEXITED(status):
        return f"exited with code {os.WEXITSTATUS(status)}"
    return f"exited (status {status})"
