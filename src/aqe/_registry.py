"""Finding plugins: entry points by group, aqe's own by name without a metadata scan.

Scanning installed distributions' metadata costs milliseconds on every run, so a
built-in name (``pytest``, ``junit``, ``sqlite``...) is loaded directly; only other
names, and adapter detection, read the entry points. Every way a plugin can fail to
load becomes one :class:`PluginError` line naming its entry point.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points

from ._exceptions import PluginError

#: aqe's own plugins, as ``pyproject.toml`` registers them (also found without metadata,
#: as when running from a source tree). Their names are reserved.
BUILTINS: Mapping[str, Mapping[str, str]] = {
    "aqe.adapters": {"pytest": "aqe._adapters.pytest:PytestAdapter"},
    "aqe.reporters": {
        "junit": "aqe._reporting.junit:JunitReporter",
        "json": "aqe._reporting.json_report:JsonReporter",
        "terminal": "aqe._reporting.summary:TerminalSummary",
        "html": "aqe._reporting.html:HtmlReporter",
        "github": "aqe._reporting.github:GithubReporter",
        "agent": "aqe._reporting.agent:AgentReporter",
    },
    "aqe.stores": {"sqlite": "aqe._store._sqlite:HistoryStore"},
    "aqe.backends": {
        "local": "aqe._engine._backend:LocalBackend",
        "ray": "aqe._engine._ray:RayBackend",
    },
}

_KINDS = {
    "aqe.adapters": "adapter",
    "aqe.reporters": "reporter",
    "aqe.stores": "store",
    "aqe.backends": "backend",
}


def builtin(group: str, name: str) -> EntryPoint | None:
    value = BUILTINS.get(group, {}).get(name)
    return None if value is None else EntryPoint(name, value, group)


def installed(group: str) -> dict[str, EntryPoint]:
    """Every entry point of ``group``, the built-ins first (their names win)."""
    found = {name: EntryPoint(name, value, group) for name, value in BUILTINS[group].items()}
    for entry in entry_points(group=group):
        found.setdefault(entry.name, entry)
    return found


def find(group: str, name: str) -> EntryPoint:
    """The entry point called ``name``; a one-line error listing the known ones if none."""
    entry = builtin(group, name)
    if entry is not None:
        return entry
    known = installed(group)
    if name not in known:
        raise PluginError(
            f"no {_KINDS[group]} named {name!r} (installed: {', '.join(sorted(known))})"
        )
    return known[name]


def load(entry: EntryPoint) -> object:
    """The object ``entry`` names; its import errors become one line."""
    try:
        return entry.load()
    except Exception as exc:
        raise PluginError(
            f"{describe(entry)} failed to load: {type(exc).__name__}: {_first_line(exc)}"
        ) from None


def describe(entry: EntryPoint) -> str:
    """How errors name a plugin: ``adapter entry point 'shell' (aqe_shell:ShellAdapter)``."""
    return f"{_KINDS.get(entry.group, 'plugin')} entry point {entry.name!r} ({entry.value})"


def lacking(instance: object, methods: tuple[str, ...]) -> list[str]:
    return [name for name in methods if not callable(getattr(instance, name, None))]


def check(entry: EntryPoint, instance: object, methods: tuple[str, ...]) -> None:
    missing = lacking(instance, methods)
    if missing:
        raise PluginError(f"{describe(entry)} lacks {', '.join(missing)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"
