"""Configuration: ``[tool.aqe]`` in pyproject.toml, then ``AQE_*`` variables, then flags.

Each layer overrides the one before. Every value is checked against one table of
keys, and a bad one becomes a single line that names the key and where it came
from (file, variable or flag) -- a hand-written validator because a validation
library would double the start-up time of every ``aqe run``.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ._exceptions import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

#: Files that mark a project root, as pytest looks for them.
ROOT_MARKERS = ("pyproject.toml", "pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg")


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of ``aqe run``; field names are the ``[tool.aqe]`` keys."""

    workers: int | None = None  # None: one per CPU
    history: bool = True
    history_path: str = ".aqe/history.db"
    junit_xml: str | None = None
    json: str | None = None
    live: bool | None = None  # None: live view on a TTY outside CI
    bytecode_cache: bool = True
    start_method: str = "auto"  # auto: fork when safe, else spawn
    split: str = "auto"  # may a file's tests be cut between workers: auto, file, test
    order: str = "duration"  # a worker's files: longest first by history, or pytest's order
    timeout: float | None = None  # seconds per test; None: no limit
    run_timeout: float | None = None  # seconds for the whole run; None: no limit
    shutdown_grace: float = 10.0  # seconds running tests get after a first SIGINT/SIGTERM
    max_tests_per_worker: int | None = None  # replace a worker after this many tests
    max_worker_memory: float | None = None  # MB of RSS after a test that retires a worker
    retries: int = 0  # times a failed test runs again
    retry_on: str | None = None  # regex: retry only errors ("Type: message") matching it
    retry_except: str | None = None  # regex: never retry errors matching it
    retry_budget: float = 0.05  # share of the run's tests that may be retried
    retry_delay: float = 0.5  # first wait before retrying a transient error
    retry_backoff: float = 2.0  # multiplier per further attempt
    retry_max_delay: float = 10.0
    retry_jitter: float = 0.25  # +/- this share of the delay, at random
    fail_on_flaky: bool = False  # exit 1 when a test passed only on a retry
    isolate_on: frozenset[str] = frozenset({"crash", "timeout"})  # run alone on the next tier
    quarantine: bool = True  # apply .aqe/quarantine.toml: listed tests' failures do not fail
    auto_quarantine: bool = False  # after a run, quarantine tests found flaky in history
    quarantine_threshold: float = 0.05  # ... whose failure rate on the same code is at least
    quarantine_min_runs: int = 5  # ... seen in at least this many runs
    quarantine_release_runs: int = 10  # passes in a row that propose a release
    flaky_window: int = 50  # recent runs that flakiness is judged on
    pytest_args: tuple[str, ...] = field(default_factory=tuple)
    adapter: str | None = None  # the aqe.adapters entry point to run with; None: detect
    reports: tuple[str, ...] = field(default_factory=tuple)  # more reporters: "name[=PATH]"

    def resolved_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


def _whole(value: Any, minimum: int, expected: str) -> int:
    """An integer >= ``minimum`` from TOML, an environment string or a flag."""
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"expected {expected}, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected {expected}, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"expected {expected}, got {value!r}")
    return number


def _workers(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return _whole(value, 1, "a positive integer or 'auto'")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _optional_bool(value: Any) -> bool | None:
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    return _boolean(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _start_method(value: Any) -> str:
    if value not in ("auto", "fork", "spawn"):
        raise ValueError(f"expected 'auto', 'fork' or 'spawn', got {value!r}")
    return str(value)


def _seconds(value: Any) -> float | None:
    """A positive number of seconds; 0, "0", "none" and "off" mean no limit."""
    if isinstance(value, str) and value.strip().lower() in ("none", "off"):
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of seconds, got {value!r}") from None
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        raise ValueError(f"expected a number of seconds, got {value!r}")
    return seconds or None


def _positive_or_none(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().lower() in ("none", "off"):
        return None
    return _whole(value, 1, "a positive integer")


def _megabytes(value: Any) -> float | None:
    if isinstance(value, str) and value.strip().lower() in ("none", "off"):
        return None
    megabytes = _seconds(value)
    if megabytes is None:
        raise ValueError(f"expected a positive number of MB, got {value!r}")
    return megabytes


def _count(value: Any) -> int:
    return _whole(value, 0, "a whole number >= 0")


def _regex(value: Any) -> str:
    text = _text(value)
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}): {text!r}") from None
    return text


def _fraction(value: Any) -> float:
    number = _seconds(value) or 0.0
    if number > 1:
        raise ValueError(f"expected a fraction between 0 and 1, got {value!r}")
    return number


def _multiplier(value: Any) -> float:
    number = _seconds(value)
    if number is None or number < 1:
        raise ValueError(f"expected a number >= 1, got {value!r}")
    return number


_ISOLATE_REASONS = ("crash", "timeout", "memory")


def _isolate_on(value: Any) -> frozenset[str]:
    """Some of "crash,timeout,memory", or "off"."""
    expected = f"expected some of {','.join(_ISOLATE_REASONS)} (comma-separated) or 'off'"
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str):
        raise ValueError(f"{expected}, got {value!r}")
    words = {w.strip().lower() for w in value.split(",") if w.strip()}
    if words <= {"off", "none"}:
        return frozenset()
    if not words <= set(_ISOLATE_REASONS):
        raise ValueError(f"{expected}, got {value!r}")
    return frozenset(words)


def _grace(value: Any) -> float:
    return _seconds(value) or 0.0


def _split(value: Any) -> str:
    if value not in ("auto", "file", "test"):
        raise ValueError(f"expected 'auto', 'file' or 'test', got {value!r}")
    return str(value)


def _order(value: Any) -> str:
    if value not in ("duration", "pytest"):
        raise ValueError(f"expected 'duration' or 'pytest', got {value!r}")
    return str(value)


def _count_positive(value: Any) -> int:
    return _whole(value, 1, "a positive integer")


def _window(value: Any) -> int:
    number = _whole(value, 2, "an integer from 2 to 500")
    if number > 500:
        raise ValueError(f"expected an integer from 2 to 500, got {value!r}")
    return number


def _args(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected a list of strings, got {value!r}")


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "workers": _workers,
    "history": _boolean,
    "history_path": _text,
    "junit_xml": _text,
    "json": _text,
    "live": _optional_bool,
    "bytecode_cache": _boolean,
    "start_method": _start_method,
    "split": _split,
    "order": _order,
    "timeout": _seconds,
    "run_timeout": _seconds,
    "shutdown_grace": _grace,
    "max_tests_per_worker": _positive_or_none,
    "max_worker_memory": _megabytes,
    "retries": _count,
    "retry_on": _regex,
    "retry_except": _regex,
    "retry_budget": _fraction,
    "retry_delay": _grace,
    "retry_backoff": _multiplier,
    "retry_max_delay": _grace,
    "retry_jitter": _fraction,
    "fail_on_flaky": _boolean,
    "isolate_on": _isolate_on,
    "quarantine": _boolean,
    "auto_quarantine": _boolean,
    "quarantine_threshold": _fraction,
    "quarantine_min_runs": _count_positive,
    "quarantine_release_runs": _count_positive,
    "flaky_window": _window,
    "pytest_args": _args,
    "adapter": _text,
    "reports": _args,
}
assert set(_PARSERS) == {f.name for f in fields(Config)}


def find_root(start: Path) -> Path:
    """The nearest directory at or above ``start`` with a project marker file."""
    start = start.resolve()
    base = start if start.is_dir() else start.parent
    for candidate in (base, *base.parents):
        if any((candidate / marker).is_file() for marker in ROOT_MARKERS):
            return candidate
    return base


def _apply(config: Config, values: Mapping[str, Any], source: Callable[[str], str]) -> Config:
    changes: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = raw_key.replace("-", "_")
        parser = _PARSERS.get(key)
        if parser is None:
            known = ", ".join(sorted(_PARSERS))
            raise ConfigError(f"unknown key {source(raw_key)} (known keys: {known})")
        try:
            changes[key] = parser(value)
        except ValueError as exc:
            raise ConfigError(f"{source(raw_key)}: {exc}") from None
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
        if key in _PARSERS:
            values[key] = value
        elif name not in _warned:
            _warned.add(name)
            sys.stderr.write(f"aqe: warning: {_unknown_variable(name)}\n")
    return _apply(config, values, lambda key: f"environment variable AQE_{key.upper()}")


def _unknown_variable(name: str) -> str:
    close = difflib.get_close_matches(name[4:].lower(), _PARSERS, n=1, cutoff=0.8)
    hint = f" (did you mean AQE_{close[0].upper()}?)" if close else ""
    return f"ignoring environment variable {name}: not an aqe setting{hint}"


#: Keys whose command-line flag is not simply ``--key``.
_FLAG_NAMES = {"history_path": "--history", "history": "--no-history"}


def load_config(
    root: Path, flags: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Config:
    """Merge the three layers; ``flags`` holds only options the user actually gave."""
    config = _from_pyproject(Config(), root)
    config = _from_env(config, os.environ if environ is None else environ)
    config = _apply(
        config,
        flags,
        lambda key: "option " + _FLAG_NAMES.get(key, f"--{key.replace('_', '-')}"),
    )
    if "memory" in config.isolate_on and config.max_worker_memory is None:
        raise ConfigError(
            "--isolate-on memory needs a limit to isolate on: set --max-worker-memory"
        )
    return config
