"""Adapters: the seam between aqe's engine and a test framework.

An adapter detects whether a project uses its framework, lists the project's
tests, and runs them while feeding results to aqe's run record and store. Adapters
register under the ``aqe.adapters`` entry-point group, so another framework plugs
in without touching the engine; pytest's adapter is the first and the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from .._engine._coordinator import RunSink
from .._engine._limits import EngineSettings
from .._exceptions import PluginError
from .._model import RunRecord

ENTRY_POINT_GROUP = "aqe.adapters"


@dataclass(frozen=True, slots=True)
class Selection:
    """What to run, in framework-neutral terms."""

    paths: tuple[str, ...] = ()
    keyword: str | None = None
    marker: str | None = None
    deselect: tuple[str, ...] = ()
    last_failed: bool = False
    failed_first: bool = False
    exitfirst: bool = False
    maxfail: int | None = None
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunOptions:
    root: Path
    workers: int
    verbosity: int = 0
    capture: bool = True
    live: bool = False
    #: The engine's knobs (scheduling, limits, retries, tiers); defaults when None.
    engine: EngineSettings | None = None


@dataclass(frozen=True, slots=True)
class CollectedTest:
    nodeid: str
    file: str
    line: int | None


@runtime_checkable
class Adapter(Protocol):
    name: str

    def detect(self, root: Path) -> bool:
        """Whether this framework's tests live in ``root``."""

    def collect(self, selection: Selection, options: RunOptions) -> list[CollectedTest]:
        """The selected tests, in the framework's own order; raises UsageError."""

    def run(self, selection: Selection, options: RunOptions, run: RunRecord, sink: RunSink) -> int:
        """Run the selection on ``options.workers`` workers; returns the exit code."""


def load_adapters() -> dict[str, Adapter]:
    adapters: dict[str, Adapter] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            adapter = entry.load()()
        except Exception as exc:
            raise PluginError(f"adapter entry point {entry.name!r} failed to load: {exc}") from None
        if not isinstance(adapter, Adapter):
            raise PluginError(f"adapter entry point {entry.name!r} lacks detect/collect/run")
        adapters[entry.name] = adapter
    if "pytest" not in adapters:  # running from a source tree without metadata
        from .pytest import PytestAdapter

        adapters["pytest"] = PytestAdapter()
    return adapters


def pick_adapter(root: Path, name: str | None = None) -> Adapter:
    adapters = load_adapters()
    if name is not None:
        if name not in adapters:
            raise PluginError(f"no adapter named {name!r} (installed: {', '.join(adapters)})")
        return adapters[name]
    for adapter_name, adapter in adapters.items():
        if adapter_name != "pytest" and adapter.detect(root):
            return adapter
    return adapters["pytest"]
