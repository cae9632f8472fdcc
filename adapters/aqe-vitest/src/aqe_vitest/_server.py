"""A long-lived framework process: one per aqe worker, running every batch it is dealt.

Each batch used to be a fresh ``vitest run`` (or ``jest``): a Node.js, Vite or Jest
start-up and a cold transform cache, paid per batch. A server (``vitest-server.mjs``,
``jest-server.cjs``) starts once, in its own process group, and runs batch after
batch through the framework's Node API. aqe writes one JSON request per line on its
stdin and reads one JSON answer per line from a pipe of its own
(``AQE_SERVER_FD``); the report of a
batch goes to a file. A server that outlives a batch's deadline is killed whole (its
forks with it) and the next batch starts a new one; one that dies is replaced the
same way. Its output (Vitest's, and what tests print outside a test) goes to files,
read back only to explain a death.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from aqe.plugins import UsageError

#: How often a wait for an answer checks that the server is still alive.
_POLL = 0.5


class ServerDied(Exception):
    """The server ended, or was killed at its deadline (``killed``), before answering."""

    def __init__(self, killed: bool, output: str) -> None:
        super().__init__("killed" if killed else "died")
        self.killed = killed
        self.output = output


class Server:
    """One framework process and its two channels (see the module's docstring)."""

    def __init__(
        self, command: list[str], root: Path, scratch: Path, env: dict[str, str], label: str
    ) -> None:
        self.root = root
        self.label = label
        scratch.mkdir(parents=True, exist_ok=True)
        self.log = scratch / "output.txt"
        read, write = os.pipe()
        try:
            with self.log.open("wb") as output:
                self.process = subprocess.Popen(
                    command, cwd=root, stdin=subprocess.PIPE, stdout=output, stderr=output,
                    env={**env, "AQE_SERVER_FD": str(write)}, start_new_session=True,
                    pass_fds=(write,),
                )  # fmt: skip
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        self.answers = os.fdopen(read, "rb", buffering=0)
        self.pending = b""
        from ._vitest import WATCHDOG_PIPE

        WATCHDOG_PIPE.watch(self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def ready(self, deadline: float | None) -> None:
        """Wait for its first answer; a config the framework rejects is a usage error."""
        try:
            first = self._answer(deadline)
        except ServerDied as died:
            cause = _last_line(died.output) if not died.killed else "it did not start in time"
            raise UsageError(f"{self.label} could not start in {self.root}: {cause}") from None
        if "error" in first:
            self.close()
            raise UsageError(f"{self.label} rejected the project in {self.root}: {first['error']}")

    def ask(self, request: Mapping[str, object], deadline: float | None) -> dict[str, object]:
        """Send one request, wait up to ``deadline`` seconds for its answer (forever when
        None); raises :class:`ServerDied` (the process then killed whole) when none comes."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            self.close()
            raise ServerDied(False, self.output()) from None
        return self._answer(deadline)

    def _answer(self, deadline: float | None) -> dict[str, object]:
        end = None if deadline is None else time.monotonic() + deadline
        while b"\n" not in self.pending:
            left = _POLL if end is None else min(_POLL, end - time.monotonic())
            if left <= 0:
                self.close()
                raise ServerDied(True, self.output())
            ready, _, _ = select.select([self.answers], [], [], left)
            chunk = os.read(self.answers.fileno(), 65536) if ready else b""
            if ready and not chunk:  # end of file: it died
                self.close()
                raise ServerDied(False, self.output())
            self.pending += chunk
            if not ready and self.process.poll() is not None:
                self.close()
                raise ServerDied(False, self.output())
        line, _, self.pending = self.pending.partition(b"\n")
        return cast(dict[str, object], json.loads(line))

    def output(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """Kill it and its children (its process group), and forget it."""
        from ._vitest import WATCHDOG_PIPE

        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        self.process.wait()
        with contextlib.suppress(OSError):
            self.answers.close()
        WATCHDOG_PIPE.release(self.process.pid)


def _last_line(output: str) -> str:
    from ._vitest import _cause

    return _cause(output)
