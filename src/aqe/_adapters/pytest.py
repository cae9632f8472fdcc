"""The pytest adapter: runs ``pytest.main`` in-process with aqe's engine plugin.

Selection flags become pytest's own options, so ``-k``, ``-m``, ``--lf`` and
``--deselect`` mean exactly what they mean to pytest; anything after ``--`` goes
to pytest untouched.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib.util
import io
import os
import shlex
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .._compat import CollectReport
from .._exceptions import UsageError
from .._model import RunRecord, TestResult
from .._trace import mark

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
from ..plugins import (
    CollectedTest,
    CollectionFailed,
    FilesCollected,
    RunEvents,
    RunRequest,
    RunSummary,
    TestFinished,
)
from . import selection_args

if TYPE_CHECKING:
    from .._engine._limits import EngineSettings
    from .._engine._plan import Estimate
    from .._engine._plugin import EnginePlugin


def pytest_args(request: RunRequest) -> list[str]:
    selection = request.selection
    args = selection_args(selection)
    if not request.capture:
        args.append("-s")
    if request.verbosity > 0:
        args.append("-" + "v" * request.verbosity)
    elif request.verbosity < 0:
        args.append("-" + "q" * -request.verbosity)
    extra = list(selection.extra_args)
    if xdist_loads(extra, request.root):
        # aqe distributes; pytest-xdist must not. Last, so it wins over a -n given.
        extra.append("-n0")
    return args + extra + list(selection.paths)


def xdist_loads(
    extra: Sequence[str], root: Path, environ: Mapping[str, str] = os.environ
) -> bool:
    """Will pytest load pytest-xdist? Only then may aqe pass ``-n0``: pytest refuses
    an option that no loaded plugin defines. Read as pytest reads it: ``-p`` in the
    ini file's addopts, ``PYTEST_ADDOPTS`` and the args, then autoloading."""
    if importlib.util.find_spec("xdist") is None:
        return False
    args = [*_ini_addopts(root), *shlex.split(environ.get("PYTEST_ADDOPTS", "")), *extra]
    named = _plugin_args(args)
    if "no:xdist" in named:
        return False
    autoload = not environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    if autoload and "--disable-plugin-autoload" not in args:
        return True
    named |= {name.strip() for name in environ.get("PYTEST_PLUGINS", "").split(",")}
    return bool(named & {"xdist", "xdist.plugin"})


def _plugin_args(args: Sequence[str]) -> set[str]:
    """The values of ``-p NAME`` and ``-pNAME``, as pytest's pre-parse finds them."""
    found: set[str] = set()
    for position, arg in enumerate(args):
        if arg == "-p" and position + 1 < len(args):
            found.add(args[position + 1].strip())
        elif arg.startswith("-p") and arg != "-p":
            found.add(arg[2:].strip())
    return found


#: pytest's config files, in the order it tries them in each directory.
_INI_FILES = (
    "pytest.toml", ".pytest.toml", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini",
    "setup.cfg",
)  # fmt: skip


def _ini_addopts(start: Path) -> list[str]:
    """``addopts`` of the config file pytest picks: the first one with a pytest
    section, from ``start`` upwards."""
    for base in (start, *start.parents):
        for name in _INI_FILES:
            if (base / name).is_file():
                found = _addopts_in(base / name)
                if found is not None:
                    return found
    return []


def _addopts_in(path: Path) -> list[str] | None:
    """None when the file holds no pytest section (pytest then looks further)."""
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            if path.name == "pyproject.toml":
                data = data.get("tool", {})
            table = data.get("pytest")
            if isinstance(table, dict) and isinstance(table.get("ini_options"), dict):
                table = table["ini_options"]
        else:
            parser = configparser.ConfigParser(interpolation=None)
            parser.read(path, encoding="utf-8")
            section = "tool:pytest" if path.name == "setup.cfg" else "pytest"
            if parser.has_section(section):
                table = dict(parser[section])
            else:  # pytest.ini is pytest's even without a [pytest] section
                table = {} if path.name in ("pytest.ini", ".pytest.ini") else None
    except (OSError, UnicodeDecodeError, ValueError, configparser.Error):
        return []  # pytest names a broken file itself
    if not isinstance(table, dict):
        return None
    value = table.get("addopts", [])
    if isinstance(value, str):
        return shlex.split(value)
    return [str(word) for word in value] if isinstance(value, list) else []


def xdist_workers(extra: Sequence[str]) -> list[str]:
    """pytest-xdist's worker count among the args after ``--`` (``-n 2``, ``-n2``,
    ``--numprocesses=auto``), as given."""
    found: list[str] = []
    for position, arg in enumerate(extra):
        if arg in ("-n", "--numprocesses"):
            found.append(" ".join(extra[position : position + 2]))
        elif arg.startswith("--numprocesses=") or (arg.startswith("-n") and arg[2:3].isalnum()):
            found.append(arg)
    return found


def option_names() -> frozenset[str]:
    """Every option pytest and its installed plugins define (a conftest's are not
    known here). For a hint when one is given to aqe before ``--``: it imports every
    plugin, so only on that error path."""
    from .._compat import get_config

    quiet = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
    ):
        warnings.simplefilter("ignore")
        try:
            config = get_config()
            if not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
                config.pluginmanager.load_setuptools_entrypoints("pytest11")
        except Exception:  # a broken plugin: no hint, never a traceback
            return frozenset()
    parser = getattr(config, "_parser", None)
    groups = [getattr(parser, "_anonymous", None), *getattr(parser, "_groups", ())]
    return frozenset(
        name
        for group in groups
        for option in getattr(group, "options", ())
        for name in option.names()
    )


class _ReporterInstaller:
    """Swaps in aqe's terminal reporter once pytest has made its own."""

    def __init__(self, options: RunRequest, workers: int) -> None:
        self.options = options
        self.workers = workers
        self.reporter: object | None = None

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        from .._reporting.terminal import AqeTerminalReporter

        if config.pluginmanager.get_plugin("terminalreporter") is None:
            return
        # The slowest tests, unless asked otherwise (--durations in the args, the
        # ini file or PYTEST_ADDOPTS) or quiet: pytest -q shows them only if asked.
        if config.option.durations is None and config.option.verbose >= 0:
            config.option.durations = 10
        self.reporter = AqeTerminalReporter.install(config, self.options.live, self.workers)


class _CollectRecorder:
    def __init__(self) -> None:
        self.items: list[CollectedTest] = []
        self.errors: list[str] = []

    def pytest_collectreport(self, report: CollectReport) -> None:
        if report.failed:
            self.errors.append(f"error collecting {report.nodeid}:\n{report.longreprtext}")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            path, line, _ = item.location
            self.items.append(CollectedTest(item.nodeid, path, None if line is None else line + 1))


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


#: Files that say a project's tests are pytest's (or unittest's, which pytest runs too);
#: pyproject.toml, tox.ini and setup.cfg count only with a pytest section.
_MARKERS = ("pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "conftest.py")
_SECTIONED = ("pyproject.toml", "tox.ini", "setup.cfg")


def detects(root: Path, above: bool = True) -> bool:
    """Whether ``root`` looks like a pytest project: a pytest config file at or above
    it (as pytest looks; only in ``root`` itself when not ``above``), a conftest.py, or
    test files where pytest would find them."""
    for base in (root, *root.parents) if above else (root,):
        if any((base / name).is_file() for name in _MARKERS):
            return True
        if any((base / name).is_file() and _addopts_in(base / name) is not None
               for name in _SECTIONED):  # fmt: skip
            return True
    if any(root.glob("test_*.py")) or any(root.glob("*_test.py")):
        return True
    tests = root / "tests"
    return tests.is_dir() and any(tests.rglob("test_*.py"))


class _Events:
    """The engine's ``RunSink``, translated: history estimates in, aqe's events out."""

    def __init__(self, events: RunEvents) -> None:
        self.events = events
        self.emitted = 0

    def estimates(self) -> tuple[Mapping[str, Estimate], Mapping[str, float]]:
        from .._engine._plan import Estimate

        durations = self.events.estimates()
        return (
            {nodeid: Estimate(setup=d.setup, total=d.total) for nodeid, d in durations.items()},
            self.events.file_estimates(),
        )

    def record(self, results: Sequence[TestResult], collect_times: Mapping[str, float]) -> None:
        self.emitted += len(results)
        batch: list[TestFinished | FilesCollected] = [TestFinished(r) for r in results]
        if collect_times:
            batch.append(FilesCollected(dict(collect_times)))
        self.events.emit(*batch)

    def finish(self, run: RunRecord) -> None:
        """What the coordinator wrote on its record and did not hand over as results."""
        self.events.emit(
            *(TestFinished(r) for r in run.results[self.emitted :]),
            *(CollectionFailed(location, text) for location, text in run.collection_errors),
            RunSummary(
                workers=run.workers,
                collected=run.collected,
                ran=run.ran,
                tail_idle=dict(run.tail_idle),
                junit=run.junit,
            ),
        )


def _shard_selector(
    shard: tuple[int, int], sink: _Events, events: RunEvents, engine: EnginePlugin
) -> object:
    """The shard's selection, planned from the files the engine's shallow collection
    finds (``aqe._sharding._pytest``); its workers apply it with ``-p
    aqe._sharding._hooks``, added to the arguments by ``run``."""
    from .._sharding._estimate import per_test_cost
    from .._sharding._pytest import History, ShardSelector

    estimates, collect = sink.estimates()
    cost = per_test_cost(getattr(events, "store", None))
    history = History(estimates, collect, cost)
    return ShardSelector(*shard, history, events.emit, engine.collector)


class PytestAdapter:
    name = "pytest"
    #: pytest prints its own summary (aqe's terminal reporter inside pytest).
    prints_summary = True
    #: Applies ``Selection.shard`` (``aqe run --shard I/N``).
    shards = True

    def detect(self, root: Path) -> bool:
        return detects(root)

    def collect(self, request: RunRequest) -> list[CollectedTest]:
        recorder = _CollectRecorder()
        args = [*pytest_args(request), "--collect-only", "-p", "no:terminal"]
        output, errors = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(errors):
            code = pytest.main(args, plugins=[recorder])
        sys.stderr.write(errors.getvalue())  # pytest's own account (a broken conftest...)
        if code == pytest.ExitCode.USAGE_ERROR:
            raise UsageError(_usage_message(output.getvalue() + errors.getvalue()))
        if recorder.errors:
            sys.stderr.write("\n".join(recorder.errors) + "\n")
        return recorder.items

    def run(self, request: RunRequest, events: RunEvents) -> int:
        import time

        from .._engine._backend import load_backend
        from .._engine._bytecode import cache_in
        from .._engine._plugin import EnginePlugin
        from .._paths import optional_aqe_directory

        installer = _ReporterInstaller(request, request.workers)
        # The engine fills a record of its own; what it learns reaches aqe as events.
        run = RunRecord(
            run_id=request.run_id, start=time.time(), command=[], root=str(request.root),
            workers=request.workers,
        )  # fmt: skip
        sink = _Events(events)
        settings = engine_settings(request)
        # A backend that cannot load is one line before pytest starts, not in its loop.
        backend = load_backend(settings.backend, settings)
        engine = EnginePlugin(run, sink, settings, backend)
        selection = request.selection
        args = pytest_args(request)
        xdist = xdist_loads(selection.extra_args, request.root)
        for given in xdist_workers(selection.extra_args) if xdist else ():
            sys.stderr.write(
                f"aqe: {given} is pytest-xdist's worker count; aqe runs the tests on its own "
                "workers (-w/--workers), so it is ignored\n"
            )
        # A backend with workers elsewhere starts their pytest now, beside ours.
        prepare = getattr(backend, "prepare", None)
        if callable(prepare):
            prepare(tuple(args), os.getcwd())
        mark("pytest-main")
        root = request.root
        cache = optional_aqe_directory(root, "pycache") if settings.bytecode_cache else None
        plugins: list[object] = [installer, engine]
        if selection.shard is not None:  # aqe run --shard I/N (aqe._sharding)
            plugins.append(_shard_selector(selection.shard, sink, events, engine))
            args = [*args, "-p", "aqe._sharding._hooks"]
        try:
            with cache_in(cache):
                code = pytest.main(args, plugins=plugins)
        finally:
            sink.finish(run)
        mark("pytest-main-end")
        return int(code)


def engine_settings(request: RunRequest) -> EngineSettings:
    """The engine's settings: the adapter's own options when the CLI gave them,
    else the request's neutral knobs over the engine's defaults."""
    from .._engine._limits import EngineSettings

    if isinstance(request.adapter_options, EngineSettings):
        return request.adapter_options
    return EngineSettings(
        workers=request.workers,
        timeout=request.timeout,
        run_timeout=request.run_timeout,
        retry=request.retry,
        fail_on_flaky=request.fail_on_flaky,
        status_path=request.status_path,
        quarantined=request.quarantined,
    )


def _usage_message(text: str) -> str:
    """One line for pytest's refusal: its first line, with the error it ends on."""
    first = _first_line(text)
    raised = [ln.strip()[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
    if first and raised and raised[-1] not in first:
        return f"{first.rstrip('.')}: {raised[-1]}"
    return first or "pytest rejected the arguments"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
