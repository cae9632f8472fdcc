"""``--backend ray``: aqe's workers on the nodes of a Ray cluster (docs/ray.md).

The coordinator stays on the driver with the one plan (estimates, stealing across
nodes, serial groups, dependencies); only where workers start changes. On each node
an agent actor (``_agent``) starts a node host (``_host``) that collects once and
forks workers, which connect back to the driver over TCP and are ordinary aqe
workers from then on: same messages, same results, same tiers.

``configure`` runs before pytest starts (Ray is imported, the address checked, the
agents created while the driver collects), so every bad input is one line; ``start``
then starts the hosts and checks they collected what the driver did.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..._exceptions import AqeError, UsageError
from ..._trace import mark
from .._backend import BackendContext, ExecutionBackend

#: How long the address check waits for the cluster to answer.
CONNECT_TIMEOUT = 3.0
#: Directories never uploaded as the runtime_env working_dir (Ray's own rules add
#: the project's .gitignore).
UPLOAD_EXCLUDES = (
    ".git", ".venv", "venv", ".tox", ".nox", ".aqe", "node_modules", "__pycache__",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "*.pyc",
)  # fmt: skip


class RayError(AqeError):
    """The cluster cannot run this project (exit 3): the message says why."""


def _import_ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ImportError:
        raise RayError(
            "--backend ray needs Ray: pip install 'aqe[ray]' (in the environment aqe runs in)"
        ) from None


def _check_reachable(address: str) -> None:
    """A host:port address must answer within a few seconds: Ray itself would retry
    for a minute before failing with a traceback."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(
            f"--ray-address {address!r}: expected HOST:PORT (the head's GCS port, "
            "6379 by default), ray://HOST:PORT or auto"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RayError(
            f"cannot reach the Ray cluster at {address} ({reason}): start one there with "
            "'ray start --head' or give its address with --ray-address"
        ) from None


class RayBackend:
    """The ``aqe.backends`` entry point ``ray``."""

    def __init__(self) -> None:
        self.ray: Any = None
        self.agents: list[Any] = []
        self.upload = False
        self.address = "auto"
        #: Each agent's pending ``start`` (see ``prepare``), and for which arguments.
        self.starting: list[Any] = []
        self.prepared: tuple[tuple[str, ...], str] | None = None
        #: The environment the hosts were started with.
        self.env: dict[str, str] = {}

    def configure(self, settings: Any) -> None:
        ray = _import_ray()
        address = settings.ray_address or os.environ.get("RAY_ADDRESS") or None
        if address not in (None, "auto", "local"):
            _check_reachable(address)
        self.upload = bool(settings.ray_upload)
        runtime_env: dict[str, Any] = {}
        if self.upload:
            runtime_env["working_dir"] = os.getcwd()
            runtime_env["excludes"] = list(UPLOAD_EXCLUDES)
        mark("ray-init")
        try:
            ray.init(
                address=address,
                runtime_env=runtime_env or None,
                logging_level=logging.ERROR,
                log_to_driver=False,
                include_dashboard=False,
                configure_logging=True,
                namespace="aqe",
            )
        except Exception as exc:
            where = address or "auto"
            raise RayError(f"cannot use the Ray cluster at {where}: {_line(exc)}") from None
        mark("ray-init-end")
        self.ray = ray
        self.address = address or "auto"
        # The agents' worker processes start (Python and Ray's imports on each node)
        # while pytest starts here; ``prepare`` gives them the run's arguments.
        from ._driver import Agent

        with contextlib.suppress(Exception), _plugins_unimported():
            self.agents = Agent.create(ray)
        mark("ray-agents")

    def prepare(self, args: tuple[str, ...], cwd: str) -> None:
        """As the driver's pytest starts (the adapter calls this just before it, the
        engine again as it collects): each node's host starts its own pytest and
        collection with the same arguments, beside the driver's. Failures wait for
        ``start``, which reports them."""
        if self.ray is None or self.prepared == (args, cwd):
            return
        from ._driver import Agent, forwarded, launch

        mark("ray-prepare")
        if self.prepared is not None:  # other arguments than the hosts were given
            self.close_agents()
            self.prepared = None
        with contextlib.suppress(Exception), _plugins_unimported():
            if not self.agents:
                self.agents = Agent.create(self.ray)
            self.env = forwarded(os.environ)
            self.starting = launch(self.agents, args, None if self.upload else cwd, self.env)
            self.prepared = (args, cwd)

    def start(self, context: BackendContext) -> ExecutionBackend:
        if self.ray is None:  # an API caller that did not configure: Ray's defaults
            self.configure(_Defaults())
        from ._driver import Agent, RayExecution, forwarded, launch

        try:
            if self.upload and (left_out := not_uploaded(context.cwd, context.files)):
                raise RayError(
                    f"ray_upload: {left_out} is left out of the upload of {context.cwd} "
                    "(aqe's excludes, .gitignore or .rayignore), so no node would have it: "
                    "un-ignore it or use a shared filesystem (docs/ray.md)"
                )
            if self.prepared != (context.args, context.cwd) or not self.starting:
                self.close_agents()
                self.agents = Agent.create(self.ray)
                cwd = None if self.upload else context.cwd
                self.env = forwarded(os.environ)
                self.starting = launch(self.agents, context.args, cwd, self.env)
            if not self.agents:
                raise RayError(f"the Ray cluster at {self.address} has no node with CPUs alive")
            return RayExecution.start(self.ray, self.agents, self.starting, context, self.env)
        except AqeError as error:
            self.close()
            # Inside pytest's loop now: its own way out, one line and our exit code.
            raise pytest.exit.Exception(f"aqe: error: {error}", error.exit_code) from None
        except BaseException:
            self.close()
            raise

    def close_agents(self) -> None:
        # Each agent ends its host and removes its log first (a kill alone leaves the
        # log in the node's temporary directory).
        with contextlib.suppress(Exception):
            stopping = [agent.handle.stop.remote() for agent in self.agents]
            self.ray.wait(stopping, num_returns=len(stopping), timeout=5.0)
        with contextlib.suppress(Exception):
            for agent in self.agents:
                self.ray.kill(agent.handle)
        self.agents, self.starting = [], []

    def close(self) -> None:
        self.close_agents()
        with contextlib.suppress(Exception):
            self.ray.shutdown()


def not_uploaded(cwd: str, files: tuple[str, ...]) -> str | None:
    """The first collected test file that Ray's upload of ``cwd`` would leave out
    (outside it, or matched by ``UPLOAD_EXCLUDES``, a ``.gitignore`` or a
    ``.rayignore`` on its way), as Ray's packaging decides it; None if all travel."""
    try:
        packaging = importlib.import_module("ray._private.runtime_env.packaging")
        base = Path(cwd).resolve()
        ours = packaging._get_excludes(base, list(UPLOAD_EXCLUDES))
    except Exception:  # another Ray's internals: the hosts' collection still checks
        return None
    for nodeid in files:
        path = (base / nodeid.split("::", 1)[0]).resolve()
        if not path.exists():
            continue  # a node id relative to a rootdir above the working directory
        if not path.is_relative_to(base):
            return nodeid
        rel = path.relative_to(base)
        folders = [base, *(base / part for part in reversed(rel.parents[:-1]))]
        rules = [ours]
        # Ray walks down from the top: a rule applies to what lies below its folder.
        for index, folder in enumerate(folders):
            rules += packaging.get_excludes_from_ignore_files(
                folder, include_gitignore=True, logger=logging.getLogger("aqe.ray")
            )
            step = folders[index + 1] if index + 1 < len(folders) else path
            if any(rule(step) for rule in rules):
                return nodeid
    return None


@contextlib.contextmanager
def _plugins_unimported() -> Iterator[None]:
    """Keep pytest's plugin packages out of ``sys.modules`` while Ray makes its first
    remote call before pytest has started: Ray's serializer set-up imports what is
    installed (starlette, hence anyio: a pytest plugin), and pytest warns about a
    plugin module imported before its assertion rewriting. Ray skips a serializer
    whose package does not import; pytest imports the plugins later as always."""
    from importlib.metadata import entry_points

    names = {"starlette"}
    for entry in entry_points(group="pytest11"):
        names.add(entry.value.split(".")[0].split(":")[0])
        if entry.dist is not None:
            names.add(entry.dist.name.replace("-", "_").lower())
    blocked = {name for name in names if name not in sys.modules}
    finder = _Refuse(blocked)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


class _Refuse(importlib.abc.MetaPathFinder):
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self.names:
            raise ImportError(f"not before pytest starts: {name}", name=name)
        return None


class _Defaults:
    ray_address: str | None = None
    ray_upload = False


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
