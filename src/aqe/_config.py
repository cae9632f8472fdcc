"""Configuration: ``[tool.aqe]`` in pyproject.toml, then ``AQE_*`` variables, then flags.

Each layer overrides the one before. Every value is checked against one table of
keys (``_options.OPTIONS``), and a bad one becomes a single line that names the key
and where it came from (file, variable or flag) -- a hand-written validator because a
validation library would double the start-up time of every ``aqe run``.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._exceptions import ConfigError
from ._options import OPTIONS, Config, Spread, _args

__all__ = ["ROOT_MARKERS", "Config", "find_root", "load_config"]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

#: Files that mark a project root, as pytest looks for them; package.json marks a
#: JavaScript project's (the Vitest adapter's, say).
ROOT_MARKERS = (
    "pyproject.toml",
    "pytest.ini",
    ".pytest.ini",
    "tox.ini",
    "setup.cfg",
    "package.json",
)


def find_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` with a project marker file."""
    start = start.resolve()
    base = start if start.is_dir() else start.parent
    for candidate in (base, *base.parents):
        if any((candidate / marker).is_file() for marker in ROOT_MARKERS):
            return candidate
    return base


def suite_owner(root: Path) -> Path:
    """The project whose ``[tool.aqe] suites`` names ``root``, else ``root`` itself:
    a path inside a front end runs under the repository's root, so its ids are the
    ones a run of the whole repository records (``frontend/tests/a.test.ts > x``)."""
    root = root.resolve()
    for candidate in root.parents:
        path = candidate / "pyproject.toml"
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            suites = _args(data.get("tool", {}).get("aqe", {}).get("suites", []))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError, AttributeError):
            continue  # a broken file is reported when its own project is configured
        if any((candidate / suite).resolve() == root for suite in suites):
            return candidate
    return root


def _apply(config: Config, values: Mapping[str, Any], source: Callable[[str], str]) -> Config:
    changes: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        option = OPTIONS.get(key)
        if option is None:
            known = ", ".join(sorted(OPTIONS))
            raise ConfigError(f"unknown key {source(raw_key)} (known keys: {known})")
        try:
            parsed = option.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{source(raw_key)}: {exc}") from None
        if isinstance(parsed, Spread):
            changes.update(parsed.values)
        else:
            changes[key] = parsed
    return replace(config, **changes)


def _from_pyproject(config: Config, root: Path) -> Config:
    path = root / "pyproject.toml"
    if not path.is_file():
        return config
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    section = data.get("tool", {}).get("aqe", {})
    if not isinstance(section, dict):
        raise ConfigError(f"[tool.aqe] in {path} must be a table")
    if "shard" in section:  # one project file, N jobs: each job names its own shard
        raise ConfigError(
            f"'shard' in [tool.aqe] of {path}: a shard is per CI job; give --shard I/N "
            "or AQE_SHARD=I/N in each job"
        )
    return _apply(config, section, lambda key: f"'{key}' in [tool.aqe] of {path}")


#: Unknown ``AQE_*`` variables already named on stderr by this process.
_warned: set[str] = set()


def _from_env(config: Config, environ: Mapping[str, str]) -> Config:
    """Known ``AQE_*`` variables are checked like any layer; an unknown one is named
    once on stderr and ignored: a CI system may define its own ``AQE_SOMETHING``,
    and pytest too only warns about ini keys it does not know."""
    values: dict[str, str] = {}
    for name, value in environ.items():
        if not name.startswith("AQE_") or value == "":
            continue
        key = name[4:].lower().replace("-", "_")
        if key in OPTIONS:
            values[key] = value
        elif name not in _warned:
            _warned.add(name)
            sys.stderr.write(f"aqe: warning: {_unknown_variable(name)}\n")
    return _apply(config, values, lambda key: f"environment variable AQE_{key.upper()}")


def _unknown_variable(name: str) -> str:
    close = difflib.get_close_matches(name[4:].lower(), OPTIONS, n=1, cutoff=0.8)
    hint = f" (did you mean AQE_{close[0].upper()}?)" if close else ""
    return f"ignoring environment variable {name}: not an aqe setting{hint}"


def _flag_source(key: str) -> str:
    option = OPTIONS.get(key.replace("-", "_"))
    return "option " + (option.flag_name(key) if option else f"--{key.replace('_', '-')}")


def load_config(
    root: Path, flags: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Config:
    """Merge the three layers; ``flags`` holds only options the user actually gave."""
    config = _from_pyproject(Config(), root)
    config = _from_env(config, os.environ if environ is None else environ)
    config = _apply(config, flags, _flag_source)
    if "memory" in config.isolate_on and config.max_worker_memory is None:
        raise ConfigError(
            "--isolate-on memory needs a limit to isolate on: set --max-worker-memory"
        )
    return config
