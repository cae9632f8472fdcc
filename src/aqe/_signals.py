"""SIGINT and SIGTERM handled alike, for a stretch of code: how aqe stays in charge of
when a run stops (the coordinator's loop) and what a late signal may not cut (the
final reports and history write)."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

Handler = Callable[[int, Any], Any] | int

_received: list[int] = []

#: What aqe was started with. ``nohup cmd &``, or ``cmd &`` in a script, starts a
#: process with SIGINT ignored; pytest then keeps ignoring it, and so do its tests and
#: the processes they start. aqe does too.
INHERITED: dict[int, Handler | None] = {
    signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)
}


def ignored_at_start(signum: int) -> bool:
    return INHERITED.get(signum) == signal.SIG_IGN


def catch(handler: Handler) -> dict[int, Handler | None]:
    """Use ``handler`` for SIGINT and SIGTERM, unless aqe was started ignoring one;
    returns what was there (raises ValueError outside the main thread)."""
    return {
        signum: signal.signal(signum, handler)
        for signum in (signal.SIGINT, signal.SIGTERM)
        if not ignored_at_start(signum)
    }


def interrupt(signum: int, frame: object) -> None:
    """Until the run loop takes over, SIGINT and SIGTERM unwind start-up as
    KeyboardInterrupt; each is also remembered, because code aqe does not own can
    lose the exception (a finalizer, a plugin's ``except BaseException``, CPython
    wrapping it in a RuntimeError inside ``__set_name__``) and the run must still stop."""
    _received.append(signum)
    raise KeyboardInterrupt


def quiet_lost_interrupts() -> None:
    """An interrupt that lands in a finalizer or weakref callback (importlib's module
    locks have one) cannot unwind; CPython prints it as "Exception ignored" with a
    traceback. ``interrupt`` has already remembered it and the run stops on it, so
    that print is noise: drop it, and pass every other unraisable exception on."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and _received:
            return
        previous(unraisable)

    sys.unraisablehook = hook


def received() -> list[int]:
    """The signals ``interrupt`` has seen, oldest first."""
    return list(_received)


@contextlib.contextmanager
def handling(handler: Handler) -> Iterator[None]:
    """Use ``handler`` for SIGINT and SIGTERM inside the block (main thread only;
    elsewhere signals are left alone), then restore what was there."""
    try:
        before = catch(handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for signum, previous in before.items():
            signal.signal(signum, previous)


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when the process that started it dies."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
