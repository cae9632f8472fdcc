"""Stopping an ``aqe run`` child and every worker it started.

Both the MCP server and the Python API (``aqe.run``) run tests in a child process
of their own, never in-process. Stopping one is not a matter of killing one pid:
the child's workers have a process group of their own (isolated ones a session of
their own), so they are found by the pids the child's status file names, and only
while they still belong to the child's session (a recycled pid is never killed).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["group_alive", "kill_run", "running", "stop_run", "worker_pids"]


def worker_pids(status_path: Path) -> list[int]:
    """Pids of the workers the child's latest status snapshot names."""
    try:
        with open(status_path, encoding="utf-8") as stream:
            snapshot: object = json.load(stream)
    except (OSError, ValueError):
        return []
    if not isinstance(snapshot, dict):
        return []
    pids = []
    for worker in snapshot.get("workers", ()):
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            pids.append(int(worker.get("pid", 0)))
    return [pid for pid in pids if pid > 0]


def kill_run(leader: int, status_path: Path) -> None:
    """SIGKILL the child ``leader``'s process group and each of its workers' groups,
    then wait (briefly) until no worker runs."""
    pids = [leader]
    for pid in worker_pids(status_path):
        if _session_of(pid) in (leader, pid):
            pids.append(pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while any(running(pid) for pid in pids[1:]) and time.monotonic() < deadline:
        time.sleep(0.01)


def stop_run(process: subprocess.Popen[bytes], status_path: Path, grace: float) -> None:
    """Stop a child as Ctrl-C twice stops ``aqe run`` (scheduling ends, workers are
    killed, reports are written); after ``grace`` seconds kill what is left."""
    for _ in range(2):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.3)
            break
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    kill_run(process.pid, status_path)


def _session_of(pid: int) -> int | None:
    """Session id of ``pid`` (from /proc), so a recycled pid is never killed."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            return int(stream.read().rsplit(")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still exists (zombies included)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
