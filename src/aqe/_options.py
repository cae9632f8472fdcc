"""Every setting of ``aqe run``, each defined once: its type, default, parser and flag.

A setting is one field of :class:`Config`. Its name is the ``[tool.aqe]`` key and,
upper-cased, the ``AQE_*`` variable; its metadata (:class:`Option`) holds the parser
that checks it in every layer and, when it has one, its ``aqe run`` flag with the
help text: the CLI builds its options from this table, and the engine's settings
are filled by name (:func:`by_name`), so adding a setting means adding a field here
and using it. This module is data only (no click, no pytest), so the run control and
the knowledge layer can take a ``Config`` without importing the CLI.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Settings = TypeVar("Settings", bound=DataclassInstance)


@dataclass(frozen=True, slots=True)
class Option:
    """How one setting is read: its parser, and its ``aqe run`` flag if it has one."""

    #: Checks a value from TOML, an environment string or a flag; raises ValueError.
    parse: Callable[[Any], Any]
    #: click's declarations (``("-w", "--workers")``, ``("--live/--no-live",)``);
    #: none: the setting is only read from ``[tool.aqe]`` and ``AQE_*``.
    flags: tuple[str, ...] = ()
    help: str | None = None
    metavar: str | None = None
    #: For a flag without a value: what giving it sets (``--no-history`` sets False).
    switch: bool | None = None

    def flag_name(self, key: str) -> str:
        """The flag as error messages name it (``--workers``, ``--live``)."""
        for declaration in self.flags:
            if declaration.startswith("--"):
                return declaration.split("/", 1)[0]
        return f"--{key.replace('_', '-')}"


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


def _shard(value: Any) -> tuple[int, int] | None:
    """``I/N``: the I-th of N shards, 1-based (as Playwright and pytest-split count)."""
    if isinstance(value, str) and value.strip().lower() in ("none", "off"):
        return None
    text = value.strip() if isinstance(value, str) else ""
    index, slash, count = text.partition("/")
    if not (slash and index.isdigit() and count.isdigit()) or not 1 <= int(index) <= int(count):
        raise ValueError(f"expected I/N with 1 <= I <= N (e.g. 1/4), got {value!r}")
    return int(index), int(count)


def _args(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected a list of strings, got {value!r}")


@dataclass(frozen=True, slots=True)
class Spread:
    """A parsed value that sets other settings instead of its own key.

    ``history = "postgresql://..."`` names where the history is: it sets
    ``history_path`` and leaves history on, as ``history = false`` turns it off.
    """

    values: Mapping[str, Any]


def _history(value: Any) -> bool | Spread:
    """``true``/``false`` turn the history on or off; any other text is its location."""
    try:
        return _boolean(value)
    except ValueError:
        if isinstance(value, str) and value.strip():
            return Spread({"history": True, "history_path": value.strip()})
        raise ValueError(
            f"expected true, false, a file path or a postgresql:// URL, got {value!r}"
        ) from None


def _read(
    parse: Callable[[Any], Any],
    *flags: str,
    help: str | None = None,
    metavar: str | None = None,
    switch: bool | None = None,
) -> dict[str, Option]:
    """A field's metadata: how the setting is parsed and, if it has one, its flag."""
    return {"aqe": Option(parse, flags, help, metavar, switch)}


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of ``aqe run``; field names are the ``[tool.aqe]`` keys.

    The order of the fields with a flag is the order of ``aqe run --help``.
    """

    workers: int | None = field(  # None: one per CPU
        default=None,
        metadata=_read(
            _workers, "-w", "--workers", metavar="N|auto", help="Worker processes (default: CPUs)."
        ),
    )
    junit_xml: str | None = field(
        default=None,
        metadata=_read(_text, "--junit-xml", metavar="PATH", help="Write a JUnit XML report."),
    )
    json: str | None = field(
        default=None,
        metadata=_read(
            _text, "--json", metavar="PATH", help="Write a JSON report (docs/json-report.md)."
        ),
    )
    html: str | None = field(
        default=None,
        metadata=_read(_text, "--html", metavar="PATH", help="Write a self-contained HTML report."),
    )
    reporter: str | None = field(  # None: pytest's output, or ``agent`` under an AI agent
        default=None,
        metadata=_read(
            _text,
            "--reporter",
            metavar="NAME",
            help="Console output: pytest (pytest's own), agent (failures only; the default "
            "under an AI coding agent), github, or another registered reporter.",
        ),
    )
    history_path: str = field(
        default=".aqe/history.db",
        metadata=_read(_text, "--history", metavar="PATH", help="History database file."),
    )
    history: bool = field(  # a location given as ``history`` goes to history_path
        default=True,
        metadata=_read(
            _history,
            "--no-history",
            switch=False,
            help="Run without reading or writing history.",
        ),
    )
    live: bool | None = field(  # None: live view on a TTY outside CI
        default=None,
        metadata=_read(_optional_bool, "--live/--no-live", help="Live view (default: on a TTY)."),
    )
    bytecode_cache: bool = field(default=True, metadata=_read(_boolean))
    timeout: float | None = field(  # seconds per test; None: no limit
        default=None,
        metadata=_read(
            _seconds,
            "--timeout",
            metavar="S",
            help="Stop a test after S seconds (kills its worker).",
        ),
    )
    retries: int = field(  # times a failed test runs again
        default=0,
        metadata=_read(
            _count, "--retries", metavar="N", help="Run a failed test up to N more times."
        ),
    )
    retry_on: str | None = field(  # regex: retry only errors ("Type: message") matching it
        default=None,
        metadata=_read(
            _regex, "--retry-on", metavar="REGEX", help="Retry only errors matching REGEX."
        ),
    )
    retry_except: str | None = field(  # regex: never retry errors matching it
        default=None,
        metadata=_read(
            _regex,
            "--retry-except",
            metavar="REGEX",
            help="Never retry errors matching REGEX.",
        ),
    )
    #: Share of the run's tests that may be retried.
    retry_budget: float = field(default=0.05, metadata=_read(_fraction))
    #: First wait before retrying a transient error; multiplier per further attempt.
    retry_delay: float = field(default=0.5, metadata=_read(_grace))
    retry_backoff: float = field(default=2.0, metadata=_read(_multiplier))
    retry_max_delay: float = field(default=10.0, metadata=_read(_grace))
    #: +/- this share of the delay, at random.
    retry_jitter: float = field(default=0.25, metadata=_read(_fraction))
    fail_on_flaky: bool = field(  # exit 1 when a test passed only on a retry
        default=False,
        metadata=_read(
            _boolean,
            "--fail-on-flaky",
            switch=True,
            help="Exit 1 if a test passed only on retry.",
        ),
    )
    isolate_on: frozenset[str] = field(  # run alone on the next tier
        default=frozenset({"crash", "timeout"}),
        metadata=_read(
            _isolate_on,
            "--isolate-on",
            metavar="crash,timeout,memory|off",
            help="Run a test that crashed, hung or left its worker past --max-worker-memory "
            "again alone (fresh fork, then fresh interpreter).",
        ),
    )
    max_tests_per_worker: int | None = field(  # replace a worker after this many tests
        default=None,
        metadata=_read(
            _positive_or_none,
            "--max-tests-per-worker",
            metavar="N",
            help="Replace a worker after N tests.",
        ),
    )
    max_worker_memory: float | None = field(  # MB of RSS after a test that retires a worker
        default=None,
        metadata=_read(
            _megabytes,
            "--max-worker-memory",
            metavar="MB",
            help="Replace a worker whose RSS passes MB after a test.",
        ),
    )
    run_timeout: float | None = field(  # seconds for the whole run; None: no limit
        default=None,
        metadata=_read(
            _seconds,
            "--run-timeout",
            metavar="S",
            help="End the run after S seconds, keeping results.",
        ),
    )
    #: Seconds running tests get after a first SIGINT/SIGTERM.
    shutdown_grace: float = field(default=10.0, metadata=_read(_grace))
    #: auto: fork when safe, else spawn.
    start_method: str = field(default="auto", metadata=_read(_start_method))
    split: str = field(  # may a file's tests be cut between workers: auto, file, test
        default="auto",
        metadata=_read(
            _split,
            "--split",
            metavar="auto|file|test",
            help="May a file's tests be cut between workers (default auto: not unittest files).",
        ),
    )
    order: str = field(  # a worker's files: longest first by history, or pytest's order
        default="duration",
        metadata=_read(
            _order,
            "--order",
            metavar="duration|pytest",
            help="Order of the files on each worker (default duration: longest first once "
            "the history knows them; pytest: always pytest's).",
        ),
    )
    auto_quarantine: bool = field(  # after a run, quarantine tests found flaky in history
        default=False,
        metadata=_read(
            _boolean,
            "--auto-quarantine",
            switch=True,
            help="After the run, quarantine tests the history shows flaky (see aqe flaky).",
        ),
    )
    #: Apply .aqe/quarantine.toml: listed tests' failures do not fail the run.
    quarantine: bool = field(default=True, metadata=_read(_boolean))
    #: auto_quarantine takes tests whose failure rate on the same code is at least ...
    quarantine_threshold: float = field(default=0.05, metadata=_read(_fraction))
    #: ... seen in at least this many runs.
    quarantine_min_runs: int = field(default=5, metadata=_read(_count_positive))
    #: Passes in a row that propose a release.
    quarantine_release_runs: int = field(default=10, metadata=_read(_count_positive))
    #: Recent runs that flakiness is judged on.
    flaky_window: int = field(default=50, metadata=_read(_window))
    pytest_args: tuple[str, ...] = field(default_factory=tuple, metadata=_read(_args))
    #: the aqe.adapters entry point to run with; None: detect
    adapter: str | None = field(
        default=None,
        metadata=_read(
            _text,
            "--adapter",
            metavar="NAME",
            help="Run with the aqe.adapters entry point NAME (e.g. pytest, vitest) "
            "instead of detecting the project's framework.",
        ),
    )
    #: more suites to run beside the root's: directories under the root with a project
    #: of their own (a JavaScript front end), each run by the adapter that claims it
    suites: tuple[str, ...] = field(default_factory=tuple, metadata=_read(_args))
    #: run only this shard of the suite: (I, N), 1-based; CI gives it per job
    shard: tuple[int, int] | None = field(
        default=None,
        metadata=_read(
            _shard,
            "--shard",
            metavar="I/N",
            help="Run only the I-th of N shards, balanced by predicted time (aqe shards N "
            "shows the plan).",
        ),
    )
    record_deps: bool = field(  # record each test's dependency map (docs/affected.md)
        default=False,
        metadata=_read(
            _boolean,
            "--record-deps",
            switch=True,
            help="Record which files, functions and data files each test uses, for "
            "--affected (docs/affected.md).",
        ),
    )
    #: more reporters: "name[=PATH]"
    reports: tuple[str, ...] = field(default_factory=tuple, metadata=_read(_args))
    #: the aqe.backends entry point that starts the workers; "local": this machine
    backend: str = field(
        default="local",
        metadata=_read(
            _text,
            "--backend",
            metavar="NAME",
            help="Start workers with the aqe.backends entry point NAME (default: local "
            "processes).",
        ),
    )
    #: --backend ray: the cluster to run on (host:port, ray://host:port, auto); None:
    #: RAY_ADDRESS, else Ray's own choice (docs/ray.md)
    ray_address: str | None = field(
        default=None,
        metadata=_read(
            _text,
            "--ray-address",
            metavar="ADDR",
            help="With --backend ray: the Ray cluster to run on (host:port; default: "
            "RAY_ADDRESS, else a running local cluster).",
        ),
    )
    #: --backend ray: send the project to the nodes as Ray's runtime_env working_dir
    #: instead of finding it at the same path there (a shared filesystem)
    ray_upload: bool = field(default=False, metadata=_read(_boolean))

    def resolved_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


def _option(setting: Field[Any]) -> Option:
    option = setting.metadata["aqe"]
    assert isinstance(option, Option), f"Config.{setting.name} has no Option"
    return option


#: Every setting by its key, in field order.
OPTIONS: Mapping[str, Option] = {setting.name: _option(setting) for setting in fields(Config)}


def by_name(kind: type[Settings], config: Config, prefix: str = "", **given: Any) -> Settings:
    """A ``kind`` (a dataclass) whose fields are the settings of the same name (or
    ``prefix`` + name, as ``RetryPolicy.budget`` is ``retry_budget``); ``given``
    fills the rest. A field found nowhere is a programming error, not a default:
    the engine never silently misses a setting it declares."""
    values: dict[str, Any] = {}
    for wanted in fields(kind):
        if wanted.name in given:
            values[wanted.name] = given[wanted.name]
        elif wanted.name in OPTIONS:
            values[wanted.name] = getattr(config, wanted.name)
        elif prefix + wanted.name in OPTIONS:
            values[wanted.name] = getattr(config, prefix + wanted.name)
        else:
            raise TypeError(f"{kind.__name__}.{wanted.name} is no setting of Config")
    return kind(**values)
