"""An interrupt CPython could not raise (it landed in a finalizer) is remembered and
not printed as a traceback; any other unraisable exception still is."""

from __future__ import annotations

import gc
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from aqe import _signals


@pytest.fixture
def passed_on() -> Iterator[list[type[BaseException]]]:
    """What reaches the hook that was there before (here: a recorder)."""
    seen: list[type[BaseException]] = []

    def recorder(unraisable: Any) -> None:
        seen.append(type(unraisable.exc_value))

    before = sys.unraisablehook
    sys.unraisablehook = recorder
    _signals.quiet_lost_interrupts()
    try:
        yield seen
    finally:
        sys.unraisablehook = before
        _signals._received.clear()


class _Raises:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __del__(self) -> None:
        raise self.error


def _finalize(error: BaseException) -> None:
    _Raises(error)
    gc.collect()


def test_an_interrupt_lost_in_a_finalizer_is_remembered_not_printed(
    passed_on: list[type[BaseException]],
) -> None:
    with pytest.raises(KeyboardInterrupt):
        _signals.interrupt(signal.SIGINT, None)
    _finalize(KeyboardInterrupt())
    assert _signals.received() == [signal.SIGINT]
    assert passed_on == []


def test_other_unraisable_exceptions_still_reach_the_previous_hook(
    passed_on: list[type[BaseException]],
) -> None:
    _finalize(ValueError("a finalizer's own bug"))
    _finalize(KeyboardInterrupt())  # not one aqe's handler raised: not aqe's to hide
    assert passed_on == [ValueError, KeyboardInterrupt]
