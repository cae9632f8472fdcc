"""The zygote: a pristine, single-threaded copy of the collected session that forks workers.

The coordinator may start threads later (terminal, store, an MCP server); forking a
threaded process is unsafe. So right after shallow collection, before anything
else, the coordinator forks this zygote once. The zygote sits in its own process
group (a terminal's Ctrl-C reaches only the coordinator, which decides), forks a
worker whenever asked, and passes the worker its socket through ``SCM_RIGHTS``.
If the coordinator dies, the zygote sees end-of-file and kills every worker.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import struct
from collections.abc import Callable

_REQUEST = struct.Struct(">cI")
_REPLY = struct.Struct(">iI")

#: Called in the forked worker with (worker id, connected socket); returns an exit code.
WorkerEntry = Callable[[int, socket.socket], int]


class Zygote:
    """The coordinator's handle on the zygote process."""

    def __init__(self, pid: int, channel: socket.socket) -> None:
        self.pid = pid
        self._channel = channel

    @classmethod
    def start(cls, entry: WorkerEntry) -> Zygote:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 3
            try:
                ours.close()
                code = _serve(theirs, entry)
            finally:
                os._exit(code)
        theirs.close()
        return cls(pid, ours)

    def spawn(self, worker_id: int) -> tuple[int, socket.socket]:
        """Fork a worker; return its pid and the coordinator's end of its socket."""
        mine, its = socket.socketpair()
        try:
            socket.send_fds(self._channel, [_REQUEST.pack(b"F", worker_id)], [its.fileno()])
        finally:
            its.close()
        reply = self._channel.recv(_REPLY.size)
        if len(reply) != _REPLY.size:
            mine.close()
            raise OSError("the zygote process exited")
        pid, _ = _REPLY.unpack(reply)
        return pid, mine

    def stop(self) -> None:
        """Kill the zygote's process group (itself and every worker) and reap it."""
        with contextlib.suppress(OSError):
            self._channel.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _serve(channel: socket.socket, entry: WorkerEntry) -> int:
    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    children: set[int] = set()
    try:
        while True:
            ready, _, _ = select.select([channel], [], [], 0.5)
            _reap(children)
            if not ready:
                continue
            data, fds, _, _ = socket.recv_fds(channel, _REQUEST.size, 1)
            if not data:
                return 0
            kind, worker_id = _REQUEST.unpack(data)
            if kind == b"F" and fds:
                pid = os.fork()
                if pid == 0:  # pragma: no cover - runs in the worker
                    code = 3
                    try:
                        channel.close()
                        signal.signal(signal.SIGINT, signal.SIG_DFL)
                        code = entry(worker_id, socket.socket(fileno=fds[0]))
                    finally:
                        os._exit(code)
                os.close(fds[0])
                children.add(pid)
                channel.sendall(_REPLY.pack(pid, worker_id))
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap(children, block=True)


def _reap(children: set[int], block: bool = False) -> None:
    for pid in list(children):
        try:
            done, _ = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)
