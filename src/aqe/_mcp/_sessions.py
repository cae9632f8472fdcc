"""Per-client context: the last run and default options, forgotten when idle.

A stdio server has one client, so its requests share one session; on transports
that name sessions (streamable HTTP) each gets its own. A session idle for longer
than its limit is dropped with its finished runs' files, so a long-lived server
does not grow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Default idle time before a session is forgotten, in seconds.
DEFAULT_IDLE = 1800.0


@dataclass
class Defaults:
    """Options a session set once (``set_defaults``) for its later runs."""

    workers: int | None = None
    retries: int | None = None
    timeout: float | None = None


@dataclass
class Session:
    key: str
    last_used: float = field(default_factory=time.monotonic)
    last_run: str | None = None
    defaults: Defaults = field(default_factory=Defaults)


class Sessions:
    def __init__(self, idle: float, on_expire: Callable[[str], None]) -> None:
        self.idle = idle
        self._on_expire = on_expire
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def get(self, key: str) -> Session:
        """The session for ``key``, made fresh if it never was or has expired."""
        self.expire()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._sessions[key] = Session(key)
            session.last_used = time.monotonic()
            return session

    def expire(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            gone = [k for k, s in self._sessions.items() if now - s.last_used > self.idle]
            for key in gone:
                del self._sessions[key]
        for key in gone:
            self._on_expire(key)
        return gone

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
