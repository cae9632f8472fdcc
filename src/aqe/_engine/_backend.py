"""The execution backend seam: where workers come from.

The coordinator never starts a process itself; it asks an ``ExecutionBackend`` for
a worker and gets back a process id and a connected stream socket. Everything else
(which tests run where, retries, verdicts) is the coordinator's and travels as
``_messages`` over that socket, so a backend only has to start a worker, tell
whether it is still there, and end it.

Backends are plugins (the ``aqe.backends`` entry-point group, ``--backend NAME``):
a ``BackendFactory`` is asked once per run for the ``ExecutionBackend`` that starts
its workers. The built-in ``local`` one uses this machine: ``_fork.ForkLauncher`` (a
copy-on-write fork of the collected session, the default) or ``_spawn.SpawnLauncher``
(a fresh interpreter, where forking is unsafe or plugins configure each worker). A
remote backend (``ray``: ``_engine/_ray``) implements the same four methods:
``spawn`` returns a socket connected to the remote worker (TCP) and an id that
``poll``/``reap`` understand. A pid on another machine means nothing to this one,
so such a backend also implements ``RemoteBackend``'s ``kill`` (the pool signals
its workers through it, never with ``os.kill`` here) and ``cause`` (a death's
account when the wait status is unknown: a node lost). The cold tier (a test run
alone in a fresh interpreter) stays local.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class ExecutionBackend(Protocol):
    """Starts and ends workers for one run; called from the coordinator's loop only."""

    def spawn(self, worker_id: int) -> tuple[int, socket.socket]:
        """Start worker ``worker_id``: its process id and the coordinator's end of
        its socket (the worker sends ``WorkerReady`` first)."""
        ...

    def reap(self, pid: int, grace: float = 0.5) -> int | None:
        """Wait up to ``grace`` seconds for the worker to exit (then kill it): its
        wait status, or None if unknown."""
        ...

    def poll(self, pid: int) -> int | None:
        """The worker's wait status if it has exited, else None; never blocks."""
        ...

    def stop(self) -> None:
        """End every worker still running and whatever they started."""
        ...


class RemoteBackend(ExecutionBackend, Protocol):
    """A backend whose workers run elsewhere: their ids are not this machine's pids."""

    def kill(self, pid: int, signum: int) -> None:
        """Send ``signum`` to worker ``pid`` where it runs; never blocks."""
        ...

    def cause(self, pid: int) -> str | None:
        """Why worker ``pid`` ended when its wait status cannot say, else None. A
        worker lost with its machine says ``was lost with its <machine>: <why>``
        (the summary then does not call its passing retry a test that needs to run
        alone)."""
        ...


#: The engine's older name for a backend.
Launcher = ExecutionBackend


@dataclass(frozen=True, slots=True)
class BackendContext:
    """What a backend is given for one run (pytest's session stays the engine's)."""

    #: How many workers the run starts at once (the pool size).
    workers: int
    #: pytest's arguments and directory, as the coordinator was started with them: a
    #: worker elsewhere repeats the same collection (``python -m aqe._engine._spawn``).
    args: tuple[str, ...]
    cwd: str
    #: The backend aqe picks on this machine (fork when safe, else spawn).
    local: Callable[[], ExecutionBackend]
    #: The ``workerinput`` pytest-xdist's plugins expect in worker ``slot`` (a
    #: worker elsewhere becomes it before its first test).
    workerinput: Callable[[int], dict[str, Any]] = lambda slot: {}
    #: The file node ids the coordinator collected, in order: a worker elsewhere
    #: must collect the same (the plan refers to files by index).
    files: tuple[str, ...] = ()


class BackendFactory(Protocol):
    """An ``aqe.backends`` entry point: called once per run, from the coordinator's
    process, after collection and before the first worker starts."""

    def start(self, context: BackendContext) -> ExecutionBackend: ...


class LocalBackend:
    """``--backend local``: workers are processes on this machine."""

    def start(self, context: BackendContext) -> ExecutionBackend:
        return context.local()


def load_backend(name: str, settings: object = None) -> BackendFactory:
    """The ``aqe.backends`` entry point ``name``, instantiated; one-line errors.

    A factory with a ``configure(settings)`` method gets the run's
    ``EngineSettings`` now, before pytest starts: it checks what it can there
    (a cluster's address) and raises an ``AqeError`` line, never a traceback."""
    from .. import _registry

    entry = _registry.find("aqe.backends", name)
    factory = _registry.load(entry)
    instance = factory() if isinstance(factory, type) else factory
    _registry.check(entry, instance, ("start",))
    configure = getattr(instance, "configure", None)
    if settings is not None and callable(configure):
        configure(settings)
    return instance  # type: ignore[return-value]
