"""Worker identity as pytest-xdist gives it, so suites and plugins see xdist workers.

Suites give each worker its own database, port or directory by asking which
worker they run in: the ``worker_id`` and ``testrun_uid`` fixtures,
``PYTEST_XDIST_WORKER`` / ``PYTEST_XDIST_WORKER_COUNT`` / ``PYTEST_XDIST_TESTRUNUID``
in the environment, or ``config.workerinput`` (pytest-django's test database
suffix, SQLAlchemy's follower databases). Each aqe worker answers as an xdist
worker would: ``gw<slot>``. A replacement for a dead worker takes the slot's id
(the dead one no longer uses its resources); a worker started for a test isolated
on the warm or cold tier has a slot of its own past the count, as pytest-xdist
names a replacement node. The coordinator itself stays the controller ("master").
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

#: The environment variables pytest-xdist sets in its workers.
WORKER_ENV = "PYTEST_XDIST_WORKER"
COUNT_ENV = "PYTEST_XDIST_WORKER_COUNT"
TESTRUNUID_ENV = "PYTEST_XDIST_TESTRUNUID"
#: Carries a spawned worker's ``workerinput`` (JSON) into the fresh interpreter.
INPUT_ENV = "_AQE_WORKERINPUT"


@dataclass
class Fleet:
    """The run's identity, shared by every worker: set before the first fork."""

    testrunuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    count: int = 1
    #: Per slot, the ``workerinput`` the suite's plugins filled (see ``configure_node``).
    nodes: dict[int, Node] = field(default_factory=dict)

    def workerinput(self, slot: int) -> dict[str, Any]:
        """What pytest-xdist's controller gives a worker (plus what plugins added)."""
        node = self.nodes.get(slot)
        if node is not None:
            return dict(node.workerinput)
        return {
            "workerid": f"gw{slot}",
            "workercount": self.count,
            "testrunuid": self.testrunuid,
            "mainargv": list(sys.argv),
        }


@dataclass
class _Gateway:
    id: str


@dataclass
class Node:
    """What pytest-xdist's controller hooks get as ``node``: the parts plugins read."""

    config: pytest.Config
    workerinput: dict[str, Any]
    gateway: _Gateway
    workeroutput: dict[str, Any] = field(default_factory=dict)


def _call_each(config: pytest.Config, name: str, **kwargs: Any) -> None:
    """Call every plugin's implementation of an optional xdist hook, each on its
    own: one written for another controller (pytest-cov's for xdist's
    distributed mode when it runs centrally) must not stop the others."""
    hook = getattr(config.hook, name, None)
    if hook is None:  # pytest-xdist is not installed: nobody implements it
        return
    for impl in reversed(hook.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue
        try:
            impl.function(*(kwargs[arg] for arg in impl.argnames))
        except Exception:
            continue


def configure_node(config: pytest.Config, slot: int) -> Node:
    """Let the suite's plugins fill a worker's ``workerinput``, as they do on
    pytest-xdist's controller (``pytest_configure_node``); once per slot."""
    run = fleet(config)
    node = run.nodes.get(slot)
    if node is None:
        workerinput = run.workerinput(slot)
        node = Node(config, workerinput, _Gateway(str(workerinput["workerid"])))
        _call_each(config, "pytest_configure_node", node=node)
        run.nodes[slot] = node
    return node


def nodes_down(config: pytest.Config) -> None:
    """The run's end for the nodes ``configure_node`` made (``pytest_testnodedown``):
    plugins free what they made per worker (SQLAlchemy drops follower databases)."""
    run = fleet(config)
    for node in run.nodes.values():
        _call_each(config, "pytest_testnodedown", node=node, error=None)
    run.nodes.clear()


class EnvironmentWatch:
    """Notes who asks for ``PYTEST_XDIST_WORKER`` while pytest starts in the
    coordinator: settings and conftests that name a database or port after the
    worker (``"db_" + os.environ.get("PYTEST_XDIST_WORKER", "")``) decide at
    import, which a forked worker has already done as the controller. The
    watch patches ``os._Environ`` (``os.getenv``, ``.get``, ``in`` and ``[]`` all
    read through it) from before pytest starts until the first fork."""

    #: Plugins that read it and that aqe answers itself (see ``as_controller``).
    HANDLED = ("pytest_benchmark",)

    def __init__(self) -> None:
        self.readers: list[str] = []
        self._original: Any = None

    def start(self) -> None:
        if self._original is not None:
            return
        original = self._original = os._Environ.__getitem__
        readers = self.readers

        def getitem(environ: Any, key: Any) -> Any:
            if key == WORKER_ENV:
                readers.append(_reader())
            return original(environ, key)

        os._Environ.__getitem__ = getitem  # type: ignore[method-assign]

    def stop(self) -> list[str]:
        """End the watch; the modules that asked, less those aqe answers."""
        if self._original is not None:
            os._Environ.__getitem__ = self._original  # type: ignore[method-assign]
            self._original = None
        return [r for r in dict.fromkeys(self.readers) if not r.startswith(self.HANDLED)]


_PLUMBING = frozenset({"os", "_collections_abc", "collections.abc"})


def _reader() -> str:
    """The module that read the environment, past os and collections.abc."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") in _PLUMBING:
        frame = frame.f_back  # type: ignore[assignment]
    return str(frame.f_globals.get("__name__", "?")) if frame is not None else "?"


def own_configure_keys(config: pytest.Config, count: int) -> list[str]:
    """The ``workerinput`` keys the suite's plugins give each worker a value of its
    own under (a follower database's name, say): they read them in
    ``pytest_configure``, which a forked worker has already run as the
    controller, so such workers must be fresh interpreters. Plugins that only
    copy the controller's state (pytest-randomly's seed) give every worker the
    same values, and forking serves them as it is."""
    if count < 2 or getattr(config.hook, "pytest_configure_node", None) is None:
        return []
    if not config.hook.pytest_configure_node.get_hookimpls():
        return []
    inputs = [configure_node(config, slot).workerinput for slot in range(count)]
    own = ("workerid",)
    keys = sorted({key for each in inputs for key in each if key not in own})
    return [key for key in keys if len({repr(each.get(key)) for each in inputs}) > 1]


fleet_key = pytest.StashKey[Fleet]()


def fleet(config: pytest.Config) -> Fleet:
    """The run's ``Fleet``, made on first use (the coordinator sets its count)."""
    found = config.stash.get(fleet_key, None)
    if found is None:
        found = config.stash[fleet_key] = Fleet()
    return found


def environment(workerinput: dict[str, Any]) -> dict[str, str]:
    """The variables pytest-xdist sets in a worker's environment."""
    return {
        WORKER_ENV: str(workerinput["workerid"]),
        COUNT_ENV: str(workerinput["workercount"]),
        TESTRUNUID_ENV: str(workerinput["testrunuid"]),
    }


def become(config: pytest.Config, workerinput: dict[str, Any]) -> None:
    """Make this process a worker in the eyes of the suite and its plugins."""
    os.environ.update(environment(workerinput))
    config.workerinput = workerinput  # type: ignore[attr-defined]
    config.workeroutput = {}  # type: ignore[attr-defined]


def spawned_input() -> dict[str, Any] | None:
    """In a spawned worker: the ``workerinput`` its coordinator sent, if any."""
    raw = os.environ.pop(INPUT_ENV, None)
    return None if raw is None else dict(json.loads(raw))


def encode_input(workerinput: dict[str, Any]) -> str:
    """``workerinput`` for the environment of a spawned worker; values that are
    not JSON (a plugin's object) become their text."""
    return json.dumps(workerinput, default=str)


class IdentityFixtures:
    """``worker_id`` and ``testrun_uid`` where pytest-xdist is not installed to
    provide them (with it installed, its own fixtures read ``workerinput``)."""

    @pytest.fixture(scope="session")
    def worker_id(self, request: pytest.FixtureRequest) -> str:
        """``gw0``, ``gw1``, ... in a worker; ``master`` in a plain pytest run."""
        workerinput = getattr(request.config, "workerinput", None)
        return str(workerinput["workerid"]) if workerinput else "master"

    @pytest.fixture(scope="session")
    def testrun_uid(self, request: pytest.FixtureRequest) -> str:
        """One id shared by every worker of the run."""
        workerinput = getattr(request.config, "workerinput", None)
        if workerinput:
            return str(workerinput["testrunuid"])
        return fleet(request.config).testrunuid


def register_fixtures(config: pytest.Config) -> None:
    """Provide the xdist fixtures unless pytest-xdist does."""
    pm = config.pluginmanager
    if pm.hasplugin("xdist") or pm.get_plugin("aqe-identity") is not None:
        return
    pm.register(IdentityFixtures(), "aqe-identity")


def as_controller(config: pytest.Config) -> None:
    """Decisions plugins take on pytest-xdist's controller from its ``dist``
    option, which aqe leaves off (its own workers distribute): pytest-benchmark
    turns itself off there, since timings taken beside other busy workers are
    not benchmarks; under aqe it would time every benchmark in a worker and
    report none of them."""
    benchmarks = getattr(config, "_benchmarksession", None)
    if benchmarks is not None and not (benchmarks.skip or benchmarks.disabled):
        benchmarks.disabled = benchmarks.xdist_warning = True
