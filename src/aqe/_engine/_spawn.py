"""Spawned workers: the fallback where forking is unsafe or unavailable.

A spawned worker is a fresh interpreter running ``pytest.main`` with the same
arguments and directory as the coordinator. Its aqe plugin repeats the same
shallow collection (deterministic, so file indexes agree), then serves as a worker
on the socket it inherited. Slower to start than a fork, same results.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from typing import Any

import pytest

from . import _identity
from ._coverage import SpawnedWorkerCoverage, spawn_env
from ._worker import run_worker

_ROLE_ENV = "_AQE_SPAWNED_WORKER"


class SpawnLauncher:
    """Starts workers as fresh interpreters: ``spawn(worker_id) -> (pid, socket)``."""

    def __init__(self, config: pytest.Config, defer: bool) -> None:
        self.config = config
        self.args = list(config.invocation_params.args)
        self.cwd = str(config.invocation_params.dir)
        self.defer = defer
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, worker_id: int) -> tuple[int, socket.socket]:
        mine, its = socket.socketpair()
        env = dict(os.environ)
        env[_ROLE_ENV] = f"{worker_id}:{its.fileno()}:{int(self.defer)}"
        workerinput = _identity.configure_node(self.config, worker_id).workerinput
        env.update(_identity.environment(workerinput))
        env[_identity.INPUT_ENV] = _identity.encode_input(workerinput)
        env.update(spawn_env())
        proc = subprocess.Popen(
            [sys.executable, "-m", "aqe._engine._spawn", *self.args],
            cwd=self.cwd,
            env=env,
            pass_fds=[its.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        its.close()
        self.procs.append(proc)
        return proc.pid, mine

    def reap(self, pid: int, grace: float = 0.5) -> int | None:
        """The worker's wait status once it has exited; killed if it lingers past ``grace``."""
        proc = next((p for p in self.procs if p.pid == pid), None)
        if proc is None:
            return None
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return _wait_status(proc.returncode)

    def poll(self, pid: int) -> int | None:
        proc = next((p for p in self.procs if p.pid == pid), None)
        if proc is None or proc.poll() is None:
            return None
        return _wait_status(proc.returncode)

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_status(code: int) -> int:
    """Popen reports a signal as a negative code; turn it back into a wait status."""
    return -code if code < 0 else code << 8


class SpawnedWorkerPlugin:
    """Inside the spawned interpreter: collect like the coordinator, then serve."""

    def __init__(self, worker_id: int, fd: int, defer: bool) -> None:
        from ._plugin import ShallowCollector

        self.worker_id = worker_id
        self.fd = fd
        self.collector = ShallowCollector(defer)
        self.code = 0
        self.workerinput = _identity.spawned_input()

    @pytest.hookimpl(tryfirst=True)
    def pytest_cmdline_main(self, config: pytest.Config) -> None:
        # Before pytest_configure, as pytest-xdist does: plugins decide there.
        if self.workerinput is not None:
            _identity.become(config, self.workerinput)

    def pytest_configure(self, config: pytest.Config) -> None:
        from ._plugin import register_markers

        register_markers(config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> bool | None:
        return self.collector.collect(session)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        sock = socket.socket(fileno=self.fd)
        items = {item.nodeid: item for item in session.items}
        self.code = run_worker(session, self.worker_id, sock, self.collector.files, items)
        return True

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Teardown already ran in the worker loop; skip reports and summaries.
        sys.stdout.flush()
        os._exit(self.code)


def main() -> None:
    from .._signals import die_with_parent

    # Its own session keeps terminal signals away; this keeps it from outliving
    # the coordinator (a SIGKILL, a cancelled ``aqe mcp`` run) as an orphan.
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:
        os._exit(3)
    worker_id, fd, defer = os.environ.pop(_ROLE_ENV).split(":")
    plugin = SpawnedWorkerPlugin(int(worker_id), int(fd), defer == "1")
    pytest.main(sys.argv[1:], plugins=[plugin, SpawnedWorkerCoverage()])
    os._exit(plugin.code)


if __name__ == "__main__":
    main()
