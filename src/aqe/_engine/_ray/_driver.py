"""The driver's side: the ``ExecutionBackend`` whose workers are forked on Ray nodes.

``spawn`` asks a node's agent to fork a worker and accepts the worker's TCP
connection on a listener here (each worker introduces itself with a one-time
token, so nothing else can pose as one); the pool then reads and writes that socket
as it does a local socketpair. Worker ids are the remote pids (display only: every
signal goes through the agent, never ``os.kill`` here), remapped past any real pid
if two nodes hand out the same one. Exits come from each agent's long poll, kept
in flight and checked without blocking; an agent that dies (its node lost) makes
every worker it had exited, with that as the cause.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..._exceptions import AqeError
from ..._trace import mark
from .._backend import BackendContext
from ._agent import NodeAgent

#: How long the first worker on a node may take to reach the driver (its host is
#: still collecting); later ones are forks of a collected host.
FIRST_CONNECT = 120.0
CONNECT = 30.0
#: Ids past any real pid (Linux's pid_max is at most 2**22) for remapped workers
#: and for the stand-ins of workers that could not start.
_SYNTHETIC = 1 << 30
#: The long poll's wait; the driver checks the reply without blocking.
_EXITS_WAIT = 5.0


@dataclass(eq=False)
class Agent:
    """One node's agent actor, as the driver knows it."""

    handle: Any
    node: str
    ip: str
    cpus: int
    alive: bool = True
    #: Why it is gone (for the blame of its tests).
    lost: str = ""
    #: Exits seen so far, and the long poll in flight.
    seen: int = 0
    pending: Any = None
    workers: set[int] = field(default_factory=set)
    #: The node's host name as Ray reports it (its address alone does not tell two
    #: nodes on one machine apart, nor name a machine behind NAT).
    hostname: str = ""

    @property
    def label(self) -> str:
        """How messages name the node: ``Ray node build-7 (10.0.0.7, 3f2a1b4c)``."""
        name = self.hostname if self.hostname and self.hostname != self.ip else ""
        where = f"{self.ip}, {self.node[:8]}"
        return f"Ray node {name} ({where})" if name else f"Ray node {self.ip} ({self.node[:8]})"

    @staticmethod
    def create(ray: Any) -> list[Agent]:
        """An agent on every alive node with CPUs, pinned there (it uses none itself)."""
        import importlib

        strategies = importlib.import_module("ray.util.scheduling_strategies")
        affinity = strategies.NodeAffinitySchedulingStrategy
        remote = ray.remote(NodeAgent)
        agents = []
        for node in ray.nodes():
            cpus = int(node.get("Resources", {}).get("CPU", 0))
            if not node.get("Alive") or cpus < 1:
                continue
            handle = remote.options(
                num_cpus=0,
                max_concurrency=16,
                max_restarts=0,
                scheduling_strategy=affinity(node["NodeID"], soft=False),
            ).remote()
            agents.append(
                Agent(
                    handle,
                    node["NodeID"],
                    node["NodeManagerAddress"],
                    cpus,
                    hostname=str(node.get("NodeManagerHostname") or ""),
                )
            )
        return agents


def launch(
    agents: list[Agent], args: tuple[str, ...], cwd: str | None, env: dict[str, str]
) -> list[Any]:
    """Have each agent start its node's host (``cwd`` None: Ray's working_dir) with
    ``env`` over the node's own; the pending calls, which ``RayExecution.start``
    waits for."""
    from ._coverage import OWNER_ENV
    from ._messages import PATH0_ENV

    first = sys.path[0] if sys.path else ""
    env = {
        **env,
        OWNER_ENV: str(os.getpid()),
        # The host is ``python -m ...`` in the project directory: sys.path[0] is that
        # directory, which an ``aqe`` script's is not.
        PATH0_ENV: "" if first in ("", os.getcwd()) else first,
    }
    return [agent.handle.start.remote(list(args), cwd, env) for agent in agents]


def _facing(ray: Any) -> str:
    """This machine's address as the cluster sees it: the interface that routes to
    the cluster's GCS (on a one-machine cluster on 127.0.0.1, that is 127.0.0.1)."""
    gcs = str(ray.get_runtime_context().gcs_address)
    host, _, port = gcs.rpartition(":")
    with contextlib.suppress(OSError, ValueError):
        with socket.create_connection((host, int(port)), timeout=3.0) as probe:
            return str(probe.getsockname()[0])
    return str(ray.util.get_node_ip_address())


class RayExecution:
    def __init__(
        self,
        ray: Any,
        agents: list[Agent],
        workerinput: Callable[[int], dict[str, Any]],
        listener: socket.socket,
        hot: int,
        env: dict[str, str] | None = None,
    ) -> None:
        self.ray = ray
        #: Slots below this are the pool's shared workers; the rest run one test.
        self.hot = hot
        self.agents = agents
        self.workerinput = workerinput
        self.listener = listener
        self.address: tuple[str, int] = listener.getsockname()[:2]
        #: Worker id -> its agent and its pid on that node.
        self.where: dict[int, tuple[Agent, int]] = {}
        self.status: dict[int, int | None] = {}
        self._slots: dict[int, Agent] = {}
        self._synthetic = _SYNTHETIC
        self._last_check = 0.0
        self._last_death: Agent | None = None
        self._connected: set[Agent] = set()
        #: The driver's variables that changed since the hosts started (``Fork.env``).
        self.env = env or {}
        self.pycache = _pycache()

    @classmethod
    def start(
        cls,
        ray: Any,
        agents: list[Agent],
        starting: list[Any],
        context: BackendContext,
        given: dict[str, str] | None = None,
    ) -> RayExecution:
        """Wait for every node's host (``launch``) to collect, and check what it did."""
        from . import RayError

        mark("ray-start")
        for agent, ref in zip(agents, starting, strict=True):
            problem = _get(ray, ref, 60.0)
            if isinstance(problem, BaseException):
                raise RayError(
                    f"{agent.label} could not start aqe's agent "
                    f"({_line(problem)}): aqe and the project's test dependencies must be "
                    "installed in the Python the node runs (docs/ray.md)"
                )
            if isinstance(problem, str):
                raise RayError(
                    f"{agent.label} {problem}: the project must be "
                    "at the same path on every node (a shared filesystem), or set "
                    "ray_upload = true in [tool.aqe] to send it (docs/ray.md)"
                )
        expected = tuple(context.files)
        for agent in agents:
            files = _get(ray, agent.handle.ready.remote(FIRST_CONNECT), FIRST_CONNECT + 10)
            if isinstance(files, BaseException):
                raise RayError(f"{agent.label} failed: {_line(files)}")
            if isinstance(files, str):
                raise RayError(f"{agent.label}: {files}")
            if tuple(files) != expected:
                extra = sorted(set(files) - set(expected))[:1]
                missing = sorted(set(expected) - set(files))[:1]
                raise RayError(
                    f"{agent.label} collected {len(files)} test files, "
                    f"the driver {len(expected)} ("
                    + (f"missing {missing[0]}" if missing else f"extra {extra[0]}")
                    + "): the project or its environment differs there (docs/ray.md)"
                )
        mark("ray-hosts-ready")
        listener = socket.socket()
        listener.bind((_facing(ray), 0))
        listener.listen(64)
        now = forwarded(os.environ)
        changed = {k: v for k, v in now.items() if (given or {}).get(k) != v}
        execution = cls(ray, agents, context.workerinput, listener, context.workers, changed)
        for agent in agents:
            execution._poll_exits(agent)
        return execution

    # -- ExecutionBackend ----------------------------------------------------------

    def spawn(self, worker_id: int) -> tuple[int, socket.socket]:
        for agent in self._choices(worker_id):
            token = secrets.token_hex(16).encode()
            ref = agent.handle.fork.remote(
                worker_id, self.address, token, self.workerinput(worker_id), self.env,
                self.pycache,
            )
            wait = CONNECT if agent in self._connected else FIRST_CONNECT
            sock = self._accept(token, ref, wait)
            pid = _get(self.ray, ref, 10.0)
            if sock is None or not isinstance(pid, int) or pid < 0:
                if sock is not None:
                    sock.close()
                self._check(force=True)
                continue
            self._connected.add(agent)
            self._slots[worker_id] = agent
            key = pid if pid not in self.where else self._next_synthetic()
            self.where[key] = (agent, pid)
            agent.workers.add(key)
            return key, sock
        # No node could start it: a worker that ends at once, so the coordinator
        # blames and re-plans as for any death (and stops after a few in a row).
        mine, its = socket.socketpair()
        its.close()
        key = self._next_synthetic()
        self.status[key] = None
        return key, mine

    def poll(self, pid: int) -> int | None:
        self._check()
        if pid not in self.status:
            return None
        status = self.status[pid]
        return 0 if status is None else status

    def reap(self, pid: int, grace: float = 0.5) -> int | None:
        if pid in self.status:
            return self.status[pid]
        agent, remote = self.where.get(pid, (None, 0))
        if agent is None or not agent.alive:
            return None
        status = _get(self.ray, agent.handle.reap.remote(remote, grace), grace + 10.0)
        if isinstance(status, BaseException):
            self._lose(agent, status)
            return None
        self.status[pid] = status if isinstance(status, int) else None
        return self.status[pid]

    def kill(self, pid: int, signum: int) -> None:
        agent, remote = self.where.get(pid, (None, 0))
        if agent is not None and agent.alive:
            agent.handle.signal.remote(remote, signum)

    def cause(self, pid: int) -> str | None:
        agent, _ = self.where.get(pid, (None, 0))
        if agent is None:
            return "could not be started on any Ray node" if pid in self.status else None
        if agent.alive:
            return None
        return f"was lost with its {agent.label}: {agent.lost}"

    def stop(self) -> None:
        mark("ray-stop")
        self._bring_back_coverage()
        stopping = [a.handle.stop.remote() for a in self.agents if a.alive]
        with contextlib.suppress(Exception):
            self.ray.wait(stopping, num_returns=len(stopping), timeout=10.0)
        with contextlib.suppress(OSError):
            self.listener.close()
        for agent in self.agents:
            with contextlib.suppress(Exception):
                self.ray.kill(agent.handle)
        mark("ray-stop-killed")
        with contextlib.suppress(Exception):
            self.ray.shutdown()
        mark("ray-stop-end")

    def _bring_back_coverage(self) -> None:
        """Coverage data the nodes' workers wrote where the driver cannot see it."""
        from . import _coverage

        if _coverage.measuring() is None:
            return
        owner = os.getpid()
        skip = _coverage.local_files(owner)
        asked = [a.handle.coverage.remote(owner, skip, 10.0) for a in self.agents if a.alive]
        for index, ref in enumerate(asked):
            found = _get(self.ray, ref, 30.0)
            if isinstance(found, BaseException):
                continue  # a node lost: its workers' tests ran again elsewhere
            node_dir, files = found
            _coverage.bring_back(files, node_dir, f"n{index}")

    # -- the rest ----------------------------------------------------------------

    def _choices(self, worker_id: int) -> list[Agent]:
        """Agents to try, best first: a slot's own node for its replacement, else
        the least loaded by CPU, avoiding the node that last lost a worker (a test
        isolated after a crash goes to another node when there is one)."""
        alive = [a for a in self.agents if a.alive]
        own = self._slots.get(worker_id)
        alone = worker_id >= self.hot  # a warm-tier slot: one test, after a death

        def load(agent: Agent) -> tuple[bool, float, int]:
            live = sum(1 for key in agent.workers if key not in self.status)
            avoid = alone and agent is self._last_death
            return (avoid, live / agent.cpus, self.agents.index(agent))

        ranked = sorted(alive, key=load)
        if own is not None and own.alive and not alone:
            ranked.remove(own)
            ranked.insert(0, own)
        return ranked

    def _accept(self, token: bytes, ref: Any, wait: float) -> socket.socket | None:
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            self.listener.settimeout(min(left, 0.5))
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                done, _ = self.ray.wait([ref], timeout=0)
                if done and not isinstance(_get(self.ray, ref, 0.1), int):
                    return None  # the agent failed: no worker will call
                if done and _get(self.ray, ref, 0.1) == -1:
                    return None
                continue
            except OSError:
                return None
            sock.settimeout(10.0)
            try:
                given = _read_exactly(sock, len(token))
            except OSError:
                given = b""
            if not secrets.compare_digest(given, token):
                sock.close()
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        return None

    def _next_synthetic(self) -> int:
        self._synthetic += 1
        return self._synthetic

    def _check(self, force: bool = False) -> None:
        """Take in the exits that arrived, at most every few milliseconds."""
        now = time.monotonic()
        if not force and now - self._last_check < 0.02:
            return
        self._last_check = now
        for agent in self.agents:
            if agent.alive and agent.pending is not None:
                done, _ = self.ray.wait([agent.pending], timeout=0)
                if done:
                    self._poll_exits(agent)

    def _poll_exits(self, agent: Agent) -> None:
        if agent.pending is not None:
            exits = _get(self.ray, agent.pending, 1.0)
            agent.pending = None
            if isinstance(exits, BaseException):
                self._lose(agent, exits)
                return
            for remote, status in exits or ():
                agent.seen += 1
                if status != 0:
                    self._last_death = agent
                for key, (owner, pid) in self.where.items():
                    if owner is agent and pid == remote and key not in self.status:
                        self.status[key] = status
        agent.pending = agent.handle.exits.remote(agent.seen, _EXITS_WAIT)

    def _lose(self, agent: Agent, error: BaseException) -> None:
        """The agent is gone (its node, its process): so is every worker it had."""
        agent.alive = False
        agent.lost = _line(error)
        self._last_death = agent
        for key in agent.workers:
            self.status.setdefault(key, None)


#: Variables that describe this machine or this shell, not the run: a node keeps
#: its own (as it keeps its own interpreter and temporary directory).
_MACHINE_VARIABLES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "HOSTNAME", "PWD", "OLDPWD", "SHLVL", "_",
    "TMPDIR", "TMP", "TEMP", "DISPLAY", "TERM", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME",
    "LD_LIBRARY_PATH", "LD_PRELOAD", "MAIL", "LANG", "LC_ALL",
})  # fmt: skip
_MACHINE_PREFIXES = ("RAY_", "XDG_", "SSH_", "_AQE_", "CONDA_")


def forwarded(environ: Mapping[str, str]) -> dict[str, str]:
    """The driver's environment as the tests on a node see it, over the node's own:
    the run's variables (``CI``, a database URL, ``PYTHONHASHSEED``) go along, this
    machine's (``PATH``, ``HOME``, ``TMPDIR``, Ray's own) do not (docs/ray.md)."""
    return {
        name: value
        for name, value in environ.items()
        if name == "_AQE_TRACE"
        or (name not in _MACHINE_VARIABLES and not name.startswith(_MACHINE_PREFIXES))
    }


def _pycache() -> str:
    """The driver's cache of rewritten test modules (``Fork.pycache``), relative to
    its working directory when inside it (``ray_upload``: the node's copy), or ''."""
    from .. import _bytecode

    directory = _bytecode._directory
    if not directory:
        return ""
    relative = os.path.relpath(directory, os.getcwd())
    return directory if relative.startswith(os.pardir) else relative


def _get(ray: Any, ref: Any, timeout: float) -> Any:
    """``ray.get`` whose failure is a value: the exception (a dead actor, a timeout)."""
    try:
        return ray.get(ref, timeout=timeout)
    except Exception as exc:
        return exc


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _line(exc: BaseException) -> str:
    if isinstance(exc, AqeError):
        return str(exc)
    text = str(exc).strip().splitlines()
    name = type(exc).__name__
    return f"{name}: {text[0]}" if text else name
