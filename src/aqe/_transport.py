"""Length-prefixed pickle frames over a stream socket.

The coordinator multiplexes many workers with non-blocking reads, so framing is
explicit: a 4-byte big-endian length, then the pickled message. Both ends are
aqe processes of the same version, so pickle is safe here. Several frames may
travel in one send (a worker holds fast tests' results briefly, see ``Journal``):
framing is per message either way, so any stream (a socketpair, TCP) carries them.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import struct
from typing import Any

_HEADER = struct.Struct(">I")


def encode(message: object) -> bytes:
    """One frame; raises what pickle raises for an object it cannot pickle."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def send(sock: socket.socket, message: object) -> None:
    """Send one message; blocks until written (workers use blocking sockets)."""
    sock.sendall(encode(message))


class FrameReader:
    """Incremental decoder for a non-blocking socket: feed bytes, get messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Every message that arrived whole, in order. Typed by the reader (the peer is
        an aqe process of the same version: ``ToCoordinator`` or ``ToWorker``)."""
        self._buffer += data
        messages: list[Any] = []
        offset = 0
        while len(self._buffer) - offset >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer, offset)
            end = offset + _HEADER.size + size
            if len(self._buffer) < end:
                break
            messages.append(pickle.loads(self._buffer[offset + _HEADER.size : end]))
            offset = end
        if offset:
            del self._buffer[:offset]
        return messages


_COUNT = struct.Struct(">Q")


class Journal:
    """Frames written to a file before they are sent, so results a process holds to
    send several at once survive its death: the reader recovers what it never got
    (``recover``). A write to a file wakes no one, where a send wakes the reader.

    The file is a count of the frames sent before it, then the frames written since;
    ``sent`` after each send starts it over.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        #: The count the file starts with, while no frame follows it.
        self._empty: int | None = None

    def write(self, frame: bytes) -> None:
        """Raises ``OSError`` when the file is gone (a test closed every descriptor)."""
        view = memoryview(frame)
        while view:
            view = view[os.write(self._fd, view) :]
        self._empty = None

    def sent(self, count: int) -> None:
        """Every frame so far has left; ``count`` in all since the process started."""
        if self._empty == count:
            return
        os.ftruncate(self._fd, 0)
        os.write(self._fd, _COUNT.pack(count))
        self._empty = count

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def recover(path: str, received: int) -> list[Any]:
    """The messages of a dead writer's journal past the first ``received`` it sent
    (those the reader got); the file is removed. A frame cut short by the death,
    or a file that is not a journal, yields nothing more."""
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError:
        return []
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    if len(data) < _COUNT.size:
        return []
    (base,) = _COUNT.unpack_from(data)
    try:
        messages = FrameReader().feed(data[_COUNT.size :])
    except Exception:
        return []
    return messages[max(0, received - base) :]
