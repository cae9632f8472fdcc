"""What the agent and its node host say to each other over their control socket.

Their own module, not the host's: the host runs as ``__main__``, and a class
defined there would not unpickle on the agent's side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The host's end of the control socket, inherited from the agent.
CONTROL_ENV = "_AQE_RAY_CONTROL"
#: The driver's ``sys.path[0]``, or ``cwd`` when it is the working directory.
PATH0_ENV = "_AQE_RAY_PATH0"


@dataclass(frozen=True, slots=True)
class Ready:
    """Host -> agent: collection is done; the file node ids, in order."""

    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Fork:
    """Agent -> host: start worker ``slot``; it dials ``address`` and sends ``token``.
    ``env``: the driver's variables that changed since the host started (pytest's
    start-up there: a plugin's ``pytest_configure``), as a local fork would see them."""

    slot: int
    address: tuple[str, int]
    token: bytes
    workerinput: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    #: The driver's cache of rewritten test modules (``_bytecode``: used when bytecode
    #: writing is off), relative to the project directory when it lies inside it.
    pycache: str = ""


@dataclass(frozen=True, slots=True)
class Forked:
    """Host -> agent: the worker for ``slot`` is process ``pid``."""

    slot: int
    pid: int


@dataclass(frozen=True, slots=True)
class Signal:
    """Agent -> host: send ``signum`` to worker ``pid``."""

    pid: int
    signum: int


@dataclass(frozen=True, slots=True)
class Exited:
    """Host -> agent: worker ``pid`` ended with wait status ``status``."""

    pid: int
    status: int
