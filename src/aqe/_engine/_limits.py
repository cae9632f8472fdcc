"""Time limits: the ``timeout`` marker, and the signal that makes a worker dump its stacks.

The coordinator enforces every limit from outside the worker (a test stuck in C
code or holding the GIL cannot stop itself). Before it kills a worker whose test
ran past its limit, it sends :data:`STACKS_SIGNAL`; faulthandler answers from C,
without the GIL, by writing every thread's Python stack to the worker's stacks file.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest

from .._compat import nodes
from ._retry import RetryPolicy

#: Asks a worker to write all its threads' stacks (faulthandler.register).
STACKS_SIGNAL = signal.SIGUSR2


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """What ``aqe run`` asks of the engine."""

    workers: int
    start_method: str = "auto"
    split: str = "auto"
    #: Files on a worker: "duration" (longest first, from history) or "pytest".
    order: str = "duration"
    #: Seconds a test may run before its worker is killed; None for no limit.
    timeout: float | None = None
    #: Seconds the whole run may take; then it stops, keeping every finished result.
    run_timeout: float | None = None
    #: Seconds running tests get to finish after a first SIGINT/SIGTERM.
    shutdown_grace: float = 10.0
    #: Replace a worker after this many tests.
    max_tests_per_worker: int | None = None
    #: Replace a worker whose resident memory exceeds this many MB after a test.
    max_worker_memory: float | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Why a test is run again in isolation, on the next tier: "crash", "timeout".
    isolate_on: frozenset[str] = frozenset({"crash", "timeout"})
    #: A test that passed only on a retry fails the run.
    fail_on_flaky: bool = False
    #: File to keep a live snapshot of the run in (see ``_status``), for ``aqe mcp``.
    status_path: str | None = None
    #: Node ids in the project's quarantine: their failures do not fail the run.
    quarantined: frozenset[str] = frozenset()
    #: Keep compiled test modules in ``.aqe/pycache``, keyed by content.
    bytecode_cache: bool = True
    #: The ``aqe.backends`` entry point that starts the workers.
    backend: str = "local"
    #: ``--backend ray``: the cluster's address, and whether the project is uploaded.
    ray_address: str | None = None
    ray_upload: bool = False


def resident_mb() -> float:
    """This process's resident set now (Linux), else its peak, in MB."""
    try:
        with open("/proc/self/statm", "rb") as stream:
            pages = int(stream.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def register_marker(config: pytest.Config) -> None:
    """Declare ``timeout`` unless pytest-timeout does, so ``--strict-markers`` accepts it."""
    if config.pluginmanager.hasplugin("timeout"):
        return
    config.addinivalue_line(
        "markers",
        "timeout(seconds): aqe stops the test (killing its worker) after this many "
        "seconds; 0 means no limit",
    )


def marker_timeout(item: nodes.Item) -> float | None:
    """The test's own limit from ``@pytest.mark.timeout(S)`` (pytest-timeout's
    signature), 0.0 for an explicit "no limit", None when it has no usable marker."""
    marker = item.get_closest_marker("timeout")
    if marker is None:
        return None
    value: Any = marker.args[0] if marker.args else marker.kwargs.get("timeout")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return max(seconds, 0.0)


def pytest_timeout_active(config: pytest.Config) -> bool:
    """pytest-timeout also acts on the marker, inside the worker; aqe then waits a
    little longer so the test fails the way it would under plain pytest."""
    return config.pluginmanager.hasplugin("timeout")


#: Frames below the test itself: pytest's runner, pluggy, aqe's worker loop.
_RUNNER_FRAME = re.compile(r'^\s+File "[^"]*[/\\](?:_pytest|pluggy|aqe)[/\\]')


def trim_stacks(text: str) -> str:
    """Keep each thread's frames down to where pytest called the test; the runner
    frames below are the same for every test and bury the ones that matter."""
    lines: list[str] = []
    cutting = False
    for line in text.splitlines():
        if not line.startswith(" "):  # "Thread 0x... (most recent call first):"
            cutting = False
            lines.append(line)
        elif not cutting and _RUNNER_FRAME.match(line):
            cutting = True
            lines.append("  ... (pytest's and aqe's frames)")
        elif not cutting:
            lines.append(line)
    return "\n".join(lines)
