"""The execution backend seam: where workers come from.

The coordinator never starts a process itself; it asks an ``ExecutionBackend`` for
a worker and gets back a process id and a connected stream socket. Everything else
(which tests run where, retries, verdicts) is the coordinator's and travels as
``_messages`` over that socket, so a backend only has to start a worker, tell
whether it is still there, and end it.

Two backends exist: ``_fork.ForkLauncher`` (a copy-on-write fork of the collected
session, the default) and ``_spawn.SpawnLauncher`` (a fresh interpreter, where
forking is unsafe, and for the cold tier). A remote backend (a Ray cluster, say)
implements the same four methods: ``spawn`` returns a socket bridged to the remote
worker and an id that ``poll``/``reap`` understand.
"""

from __future__ import annotations

import socket
from typing import Protocol


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


#: The engine's older name for a backend.
Launcher = ExecutionBackend
