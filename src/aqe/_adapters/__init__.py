"""Adapters: the seam between aqe and a test framework.

The protocol and its types are public, in :mod:`aqe.plugins`; this package loads
adapters from the ``aqe.adapters`` entry-point group and picks the project's:
the one ``[tool.aqe] adapter`` names, else the first other adapter whose ``detect``
claims the project, else pytest's (which also runs unittest suites).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _registry
from .._exceptions import PluginError
from ..plugins import ADAPTERS, Adapter, CollectedTest, RunRequest, Selection

if TYPE_CHECKING:
    from .._engine._limits import EngineSettings

__all__ = [
    "Adapter",
    "CollectedTest",
    "RunOptions",
    "Selection",
    "load_adapter",
    "load_adapters",
    "pick_adapter",
    "selection_args",
]

_METHODS = ("detect", "collect", "run")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the command line asks of a run; :meth:`request` makes the adapter's view."""

    root: Path
    workers: int
    verbosity: int = 0
    capture: bool = True
    live: bool = False
    #: The pytest engine's knobs; they reach the pytest adapter as its own options.
    engine: EngineSettings | None = None

    def request(self, selection: Selection, run_id: str = "") -> RunRequest:
        engine = self.engine
        if engine is None:
            return RunRequest(
                root=self.root, selection=selection, workers=self.workers,
                verbosity=self.verbosity, capture=self.capture, live=self.live, run_id=run_id,
            )  # fmt: skip
        return RunRequest(
            root=self.root,
            selection=selection,
            workers=self.workers,
            verbosity=self.verbosity,
            capture=self.capture,
            live=self.live,
            timeout=engine.timeout,
            run_timeout=engine.run_timeout,
            retry=engine.retry,
            fail_on_flaky=engine.fail_on_flaky,
            quarantined=engine.quarantined,
            run_id=run_id,
            status_path=engine.status_path,
            adapter_options=engine,
        )


def selection_args(selection: Selection) -> list[str]:
    """The selection as command-line flags, spelled so that pytest and ``aqe run``
    both take them (``--maxfail=N``); the one place this translation is written."""
    args: list[str] = []
    if selection.keyword:
        args += ["-k", selection.keyword]
    if selection.marker:
        args += ["-m", selection.marker]
    for nodeid in selection.deselect:
        args += ["--deselect", nodeid]
    if selection.last_failed:
        args.append("--lf")
    if selection.failed_first:
        args.append("--ff")
    if selection.exitfirst:
        args.append("-x")
    if selection.maxfail is not None:
        args.append(f"--maxfail={selection.maxfail}")
    return args


def load_adapter(entry: EntryPoint) -> Adapter:
    factory = _registry.load(entry)
    try:
        adapter = factory() if callable(factory) else factory
    except Exception as exc:
        raise PluginError(
            f"{_registry.describe(entry)} failed to start: {type(exc).__name__}: {exc}"
        ) from None
    _registry.check(entry, adapter, _METHODS)
    if not isinstance(getattr(adapter, "name", None), str):
        raise PluginError(f"{_registry.describe(entry)} lacks a name")
    assert isinstance(adapter, Adapter)
    return adapter


def load_adapters() -> dict[str, Adapter]:
    return {name: load_adapter(entry) for name, entry in _registry.installed(ADAPTERS).items()}


def pick_adapter(root: Path, name: str | None = None) -> Adapter:
    """The named adapter, else the first (by name) other than pytest that claims
    ``root``, else pytest: its detection is real, but it stays the default. A project
    with a pytest suite of its own beside another framework's (a Django site with a
    Vitest front end) runs pytest's, and is told how to run the other."""
    if name is not None:
        return load_adapter(_registry.find(ADAPTERS, name))
    adapters = load_adapters()
    others = [
        adapter_name
        for adapter_name in sorted(adapters)
        if adapter_name != "pytest" and _detects(adapters[adapter_name], adapter_name, root)
    ]
    if not others:
        return adapters["pytest"]
    from .pytest import detects

    if detects(root, above=False):
        sys.stderr.write(
            f"aqe: {root.name or root} has a pytest suite and a {' and a '.join(others)} one: "
            f"running pytest's (--adapter {others[0]} runs the other)\n"
        )
        return adapters["pytest"]
    return adapters[others[0]]


def _detects(adapter: Adapter, name: str, root: Path) -> bool:
    try:
        return bool(adapter.detect(root))
    except Exception as exc:
        raise PluginError(
            f"adapter {name!r} failed to detect the project: {type(exc).__name__}: {exc}"
        ) from None
