"""Length-prefixed pickle frames over a stream socket.

The coordinator multiplexes many workers with non-blocking reads, so framing is
explicit: a 4-byte big-endian length, then the pickled message. Both ends are
aqe processes of the same version, so pickle is safe here.
"""

from __future__ import annotations

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
