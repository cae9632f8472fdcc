"""The node host: on one Ray node, aqe's worker side, collected once, forking workers.

Started by the node's agent actor as ``python -m aqe._engine._ray._host ARGS`` in
the project's directory there. It runs pytest's own start-up with the run's
arguments and the same shallow collection as the coordinator (deterministic, so
file indexes agree), then, still single-threaded, serves the agent's requests on
its control socket: fork a worker for a slot (which connects back to the driver's
coordinator over TCP and is an ordinary aqe worker from then on), signal one, and
report each worker's exit as it is reaped. A Ray actor process runs threads (gRPC),
so it never forks workers itself: this process does, as the coordinator does locally.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from ... import _transport
from ..._signals import die_with_parent, ignored_at_start
from ..._trace import mark
from .. import _bytecode, _identity
from .._worker import run_worker
from ._messages import CONTROL_ENV, PATH0_ENV, Exited, Fork, Forked, Ready, Signal

#: How long a forked worker tries to reach the driver before it gives up.
CONNECT_TIMEOUT = 30.0


def connect(address: tuple[str, int], token: bytes) -> socket.socket:
    """The worker's TCP stream to the coordinator, introduced by its token."""
    sock = socket.create_connection(address, timeout=CONNECT_TIMEOUT)
    sock.settimeout(None)
    # Frames are small and each one is awaited: never let Nagle hold one back.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(token)
    return sock


class HostPlugin:
    """Inside the host's pytest: collect like the coordinator, then serve forks."""

    def __init__(self, control: socket.socket) -> None:
        from .._plugin import ShallowCollector

        self.control = control
        self.collector = ShallowCollector()
        self.reader = _transport.FrameReader()
        self.workers: set[int] = set()

    def pytest_configure(self, config: pytest.Config) -> None:
        from .._plugin import register_markers

        register_markers(config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        return self.collector.collect(session)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        files = tuple(node.nodeid for node in self.collector.files)
        mark("ray-host-ready")
        _transport.send(self.control, Ready(files))
        self.serve(session)
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        sys.stdout.flush()
        os._exit(0)

    # -- serving -------------------------------------------------------------------

    def serve(self, session: pytest.Session) -> None:
        """Until the agent closes the control socket: fork, signal, report exits."""
        while True:
            readable, _, _ = select.select([self.control], [], [], 0.05)
            self._reap()
            if not readable:
                continue
            try:
                data = self.control.recv(1 << 16)
            except InterruptedError:
                continue
            if not data:
                self._stop()
                return
            for message in self.reader.feed(data):
                match message:
                    case Fork():
                        pid = self._fork(session, message)
                        _transport.send(self.control, Forked(message.slot, pid))
                    case Signal(pid=pid, signum=signum) if pid in self.workers:
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.kill(pid, signum)
                    case _:
                        pass

    def _reap(self) -> None:
        for pid in list(self.workers):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                self.workers.discard(pid)
                _transport.send(self.control, Exited(pid, status))

    def _stop(self) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def _fork(self, session: pytest.Session, request: Fork) -> int:
        gc.freeze()
        try:
            pid = os.fork()
        except OSError:
            gc.unfreeze()
            return -1
        if pid == 0:  # pragma: no cover - runs in the worker
            code = 3
            try:
                code = self._become_worker(session, request)
            finally:
                os._exit(code)
        gc.unfreeze()
        self.workers.add(pid)
        return pid

    def _become_worker(
        self, session: pytest.Session, request: Fork
    ) -> int:  # pragma: no cover - child
        self.control.close()
        die_with_parent()
        for signum, handler in (
            (signal.SIGINT, signal.default_int_handler),
            (signal.SIGTERM, signal.SIG_DFL),
        ):
            signal.signal(signum, signal.SIG_IGN if ignored_at_start(signum) else handler)
        try:
            sock = connect(request.address, request.token)
        except OSError:
            return 3
        os.environ.update(request.env)
        config = session.config
        if request.workerinput:
            _identity.become(config, request.workerinput)
        items = {item.nodeid: item for item in session.items}
        with _bytecode.cache_in(_cache_directory(request.pycache)):
            return run_worker(session, request.slot, sock, self.collector.files, items)


def _cache_directory(given: str) -> Path | None:  # pragma: no cover - child
    """The driver's cache of rewritten test modules, here (made if missing), so a
    worker's collection reuses it as a local worker's does; None if it cannot be."""
    if not given:
        return None
    directory = Path(given).resolve()  # relative: to the project directory, the cwd
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return directory


def main() -> None:
    # The agent started this process in a session of its own; it must not outlive it.
    die_with_parent()
    # Started from one of Ray's threads, which block SIGINT: a worker forked from
    # here would never see the interrupt the coordinator passes on (Ctrl-C).
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    mark("ray-host-start")
    control = socket.socket(fileno=int(os.environ.pop(CONTROL_ENV)))
    control.setblocking(True)
    # The driver's first import path as ``python -m`` here would not have it (the
    # project's directory only when the driver was started that way too).
    first = os.environ.pop(PATH0_ENV, None)
    if first and sys.path:
        sys.path[0] = first
    plugin = HostPlugin(control)
    from .._coverage import SpawnedWorkerCoverage

    # pytest-cov starts here as in the driver; it must neither erase the data files
    # beside it at start nor report at the end (the driver combines and reports).
    code = pytest.main(sys.argv[1:], plugins=[plugin, SpawnedWorkerCoverage()])
    # pytest ended before the loop (a usage error, a broken conftest): the agent
    # reads this process's output for the reason.
    sys.stdout.flush()
    os._exit(int(code) or 3)


if __name__ == "__main__":
    main()
