"""Adapters: the seam between aqe and a test framework.

The protocol and its types are public, in :mod:`aqe.plugins`; this package loads
adapters from the ``aqe.adapters`` entry-point group and picks the project's:
the one ``[tool.aqe] adapter`` names, else each suite found (pytest's and another
framework's at the root, those of ``[tool.aqe] suites``) as one ``MixedAdapter``,
else pytest's (which also runs unittest suites).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _registry
from .._exceptions import PluginError, UsageError
from ..plugins import ADAPTERS, Adapter, CollectedTest, RunRequest, Selection

if TYPE_CHECKING:
    from .._engine._limits import EngineSettings
    from ._mixed import Part

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


def pick_adapter(root: Path, name: str | None = None, suites: Sequence[str] = ()) -> Adapter:
    """The project's adapter. Named: that one (over ``suites`` too, where it claims
    them). Else each suite found: at ``root``, pytest's when it has a pytest suite of
    its own and the first other adapter (by name) that claims it; in each of
    ``suites`` (directories under ``root``, ``[tool.aqe] suites``), the first that
    claims it. One suite: its adapter; several: one :class:`MixedAdapter` over them
    (one run, one history, one set of reports); none: pytest's, the default."""
    from ._mixed import MixedAdapter, Part, prefix_of

    directories = [_suite_directory(root, suite) for suite in suites]
    if name is not None:
        named = load_adapter(_registry.find(ADAPTERS, name))
        parts = [
            Part(named, directory, prefix_of(root, directory))
            for directory in (root, *directories)
            if directory == root or _claims(named, name, directory)
        ]
        return named if len(parts) == 1 else MixedAdapter(parts)
    adapters = load_adapters()
    parts = _root_parts(root, adapters)
    for directory in directories:
        claiming = _claiming(adapters, directory) or [
            n for n in ("pytest",) if _claims(adapters[n], n, directory)
        ]
        if not claiming:
            raise UsageError(
                f"no installed adapter claims suite {prefix_of(root, directory).rstrip('/')!r} "
                f"(installed: {', '.join(sorted(adapters))})"
            )
        parts.append(Part(adapters[claiming[0]], directory, prefix_of(root, directory)))
    if not parts:
        return adapters["pytest"]
    if len(parts) == 1 and parts[0].root == root:
        return parts[0].adapter
    return MixedAdapter(parts)


def _root_parts(root: Path, adapters: dict[str, Adapter]) -> list[Part]:
    from ._mixed import Part
    from .pytest import detects

    others = _claiming(adapters, root)
    parts = [Part(adapters[others[0]], root)] if others else []
    if detects(root, above=False):
        parts.insert(0, Part(adapters["pytest"], root))  # first: its workers fork
    return parts


def _claims(adapter: Adapter, name: str, directory: Path) -> bool:
    """Whether a suite's directory is the adapter's own: pytest's needs a pytest suite
    there, not the repository's config above it."""
    if name == "pytest":
        from .pytest import detects

        return detects(directory, above=False)
    return _detects(adapter, name, directory)


def _claiming(adapters: dict[str, Adapter], directory: Path) -> list[str]:
    """The adapters other than pytest that claim ``directory``, by name."""
    return [
        adapter_name
        for adapter_name in sorted(adapters)
        if adapter_name != "pytest" and _detects(adapters[adapter_name], adapter_name, directory)
    ]


def _suite_directory(root: Path, suite: str) -> Path:
    directory = (root / suite).resolve()
    if not directory.is_dir() or not (
        directory == root.resolve() or root.resolve() in directory.parents
    ):
        raise UsageError(f"suite {suite!r} ([tool.aqe] suites) is not a directory under {root}")
    return directory


def _detects(adapter: Adapter, name: str, root: Path) -> bool:
    try:
        return bool(adapter.detect(root))
    except Exception as exc:
        raise PluginError(
            f"adapter {name!r} failed to detect the project: {type(exc).__name__}: {exc}"
        ) from None
