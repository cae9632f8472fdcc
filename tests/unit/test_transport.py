"""Message framing: whole messages out of however the bytes arrive."""

from __future__ import annotations

import os
import pickle
import socket
import struct
from pathlib import Path

import pytest

from aqe import _transport
from aqe._messages import Collect, NotFound, RunTests, WorkerReady


def test_messages_round_trip_in_order() -> None:
    messages = [WorkerReady(0, 42, "stacks", ("a", "b")), RunTests(("t::a",), more=True)]
    data = b"".join(_transport.encode(m) for m in messages)
    assert _transport.FrameReader().feed(data) == messages


def test_a_frame_split_anywhere_comes_out_once_whole() -> None:
    message = NotFound(3, ("t.py::test_a", "t.py::test_b"))
    data = _transport.encode(message) * 2
    for cut in range(1, len(data)):
        reader = _transport.FrameReader()
        got = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert got == [message, message], cut


def test_byte_by_byte() -> None:
    reader = _transport.FrameReader()
    got = []
    for byte in _transport.encode(Collect((1, 2, 3))):
        got += reader.feed(bytes([byte]))
    assert got == [Collect((1, 2, 3))]


def test_a_frame_larger_than_any_read_waits_for_its_last_byte() -> None:
    message = RunTests(("t.py::test_" + "x" * (3 << 20),))
    data = _transport.encode(message)
    assert len(data) > 1 << 20  # more than the coordinator reads at once
    reader = _transport.FrameReader()
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    assert all(reader.feed(chunk) == [] for chunk in chunks[:-1])
    assert reader.feed(chunks[-1]) == [message]


def test_a_header_that_promises_more_than_came_yields_nothing_yet() -> None:
    reader = _transport.FrameReader()
    assert reader.feed(struct.pack(">I", 1 << 30) + b"partial") == []


def test_a_garbled_frame_raises_rather_than_yield_a_wrong_message() -> None:
    payload = b"not a pickle"
    with pytest.raises(pickle.UnpicklingError):
        _transport.FrameReader().feed(struct.pack(">I", len(payload)) + payload)


def test_send_writes_one_frame_on_a_socket() -> None:
    left, right = socket.socketpair()
    with left, right:
        _transport.send(left, Collect((7,)))
        left.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := right.recv(4096):
            data += chunk
    assert _transport.FrameReader().feed(data) == [Collect((7,))]


def test_the_unions_list_every_message_each_side_sends() -> None:
    """``_dispatch`` and the worker's ``_handle`` match these unions exhaustively
    (mypy checks that); a message class left out of both would go unchecked."""
    import dataclasses
    import typing

    from aqe import _messages

    classes = {
        cls
        for cls in vars(_messages).values()
        if isinstance(cls, type)
        and dataclasses.is_dataclass(cls)
        and cls.__module__ == _messages.__name__
    }
    to_worker = set(typing.get_args(_messages.ToWorker))
    to_coordinator = set(typing.get_args(_messages.ToCoordinator))
    assert not to_worker & to_coordinator
    assert classes - to_worker - to_coordinator == {_messages.CollectedItem}  # (part of Collected)


def _journal(tmp_path: Path) -> tuple[_transport.Journal, str]:
    path = str(tmp_path / "journal")
    return _transport.Journal(path), path


def test_a_journal_gives_back_only_what_the_reader_never_got(tmp_path: Path) -> None:
    journal, path = _journal(tmp_path)
    journal.sent(5)  # five frames left before holding began
    held = [NotFound(0, (f"t.py::test_{n}",)) for n in range(3)]
    for message in held:
        journal.write(_transport.encode(message))
    # The writer died after sending the first held frame (6 read in all).
    assert _transport.recover(path, 6) == held[1:]
    assert not os.path.exists(path)  # the reader removes it


def test_a_journal_starts_over_at_each_send(tmp_path: Path) -> None:
    journal, path = _journal(tmp_path)
    journal.sent(0)
    journal.write(_transport.encode(Collect((1,))))
    journal.sent(1)  # it left
    journal.write(_transport.encode(Collect((2,))))
    assert _transport.recover(path, 1) == [Collect((2,))]


def test_a_death_between_the_send_and_the_reset_recovers_nothing_twice(tmp_path: Path) -> None:
    journal, path = _journal(tmp_path)
    journal.sent(2)
    for n in range(4):
        journal.write(_transport.encode(Collect((n,))))
    # All four were sent (the reader got 2 + 4) before the journal was reset.
    assert _transport.recover(path, 6) == []


def test_a_frame_cut_short_by_the_death_is_left_out(tmp_path: Path) -> None:
    journal, path = _journal(tmp_path)
    journal.sent(0)
    journal.write(_transport.encode(Collect((1,))))
    journal.write(_transport.encode(Collect((2,)))[:-3])
    assert _transport.recover(path, 0) == [Collect((1,))]


def test_no_journal_or_one_never_started_recovers_nothing(tmp_path: Path) -> None:
    assert _transport.recover(str(tmp_path / "missing"), 0) == []
    _, path = _journal(tmp_path)  # opened, never started (the worker sends each at once)
    assert _transport.recover(path, 0) == []
    (tmp_path / "garbled").write_bytes(struct.pack(">Q", 0) + struct.pack(">I", 3) + b"bad")
    assert _transport.recover(str(tmp_path / "garbled"), 0) == []
