"""Ends aqe's Node.js process groups when aqe dies, however it dies (SIGKILL too).

Run as a script of its own (``python -I -S _watchdog.py``: nothing of aqe imported),
in its own session, with a pipe from aqe on stdin: ``+PGID`` when a group starts,
``-PGID`` when it ended. At end of file (aqe exited: the kernel closes its end of the
pipe, whatever killed it) every group still listed is killed. A process-death signal
(``PR_SET_PDEATHSIG``) would reach only Node's main process, not Vitest's forks, and
not on macOS; a timer inside Node would not fire in a fork stuck in a busy loop.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is aqe's to handle
    groups: set[int] = set()
    for line in sys.stdin:
        sign, number = line[:1], line[1:].strip()
        if not number.isdigit():
            continue
        if sign == "+":
            groups.add(int(number))
        elif sign == "-":
            groups.discard(int(number))
    for group in groups:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


if __name__ == "__main__":
    main()
