"""Phase marks for performance work: ``_AQE_TRACE=FILE aqe run ...``.

Each mark appends ``pid wall-clock-seconds cpu-seconds label`` to FILE, from the
coordinator and every worker alike, so one sorted file shows where a run's time
goes (start-up, collection, the loop, exit). Off unless the variable is set; a
mark then costs one check. Marks sit at phase boundaries only, never per test.
"""

from __future__ import annotations

import os
import time

_PATH = os.environ.get("_AQE_TRACE")


def mark(label: str) -> None:
    if not _PATH:
        return
    cpu = os.times()
    line = f"{os.getpid()} {time.time():.4f} {cpu.user + cpu.system:.3f} {label}\n"
    fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
