"""The ``aqe`` command line.

Every user mistake ends here as ``aqe: error: <one line>`` and exit code 4 (usage)
or 3 (environment, e.g. an unreadable history file); a traceback means an aqe bug.
Arguments after ``--`` go to pytest untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import re
import signal
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
import click.globals

from . import __version__
from ._config import find_root, load_config, suite_owner
from ._exceptions import AqeError, UsageError
from ._options import OPTIONS, Config, by_name
from ._signals import catch, interrupt, quiet_lost_interrupts
from ._trace import mark

if TYPE_CHECKING:
    from ._adapters import CollectedTest, Selection
    from ._engine._limits import EngineSettings
    from ._store import Store as HistoryStore  # any registered store (the protocol)

_EXTRA_KEY = "aqe_extra_args"
_PENDING_KEY = "aqe_pending_run"


@dataclasses.dataclass(frozen=True)
class _PendingRun:
    """A run ``aqe run`` has prepared, executed by ``main`` once click's frames are
    gone: no click context is active in the user's code, and tests run about as
    deep in the stack as under plain pytest (a suite may check its recursion
    headroom; structlog's allows the runner 50 frames). ``finish`` gets the exit
    code and returns the final one."""

    args: tuple[Any, ...]
    finish: Callable[[int], int]


def _root_for(paths: Sequence[str]) -> Path:
    if not paths:
        return find_root(Path.cwd())
    first = Path(paths[0].split("::", 1)[0])
    return suite_owner(find_root(first if first.exists() else Path.cwd()))


def _check_paths(paths: Sequence[str]) -> None:
    for value in paths:
        if value.startswith("-"):
            raise UsageError(f"argument {value!r} looks like an option; pytest options go after --")
        path = Path(value.split("::", 1)[0])
        if not path.exists():
            raise UsageError(f"path {value!r} (argument PATHS) does not exist")


def _given(ctx: click.Context, names: Sequence[str]) -> dict[str, Any]:
    """Only the options the user typed, so they override config and nothing else."""
    given: dict[str, Any] = {}
    for name in names:
        source = ctx.get_parameter_source(name)
        if source is click.core.ParameterSource.COMMANDLINE:
            given[name] = ctx.params[name]
    return given


@contextlib.contextmanager
def _outside_click() -> Iterator[None]:
    """Run the user's code with no click context active, as under plain pytest.

    Otherwise ``click.get_current_context()`` in a click-based project's tests (or
    conftest) finds aqe's own ``run`` command, in the coordinator and in every
    worker forked from it.
    """
    stack: list[click.Context] = []
    while (current := click.get_current_context(silent=True)) is not None:
        stack.append(current)
        click.globals.pop_context()
    try:
        yield
    finally:
        for context in reversed(stack):
            click.globals.push_context(context)


def _run_id(value: str | None) -> str | None:
    """A caller-chosen run id (``aqe mcp`` names runs before they start)."""
    if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise click.BadParameter(
            f"{value!r} is not letters, digits, '-' or '_'", param_hint="--run-id"
        )
    return value


def _use_live(config: Config) -> bool:
    if config.live is not None:
        return config.live
    return sys.stdout.isatty() and not os.environ.get("CI") and os.environ.get("TERM") != "dumb"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="aqe")
def cli() -> None:
    """aqe: a parallel, history-aware test fleet for pytest suites."""


def _selection_options(func: Any) -> Any:
    options = [
        click.argument("paths", nargs=-1, type=str),
        click.option("-k", "keyword", metavar="EXPR", help="Only tests matching the expression."),
        click.option("-m", "marker", metavar="MARKEXPR", help="Only tests matching the markers."),
        click.option("--deselect", multiple=True, metavar="NODEID", help="Leave this test out."),
        click.option("--lf", "--last-failed", "last_failed", is_flag=True, help="Rerun failures."),
        click.option("--ff", "--failed-first", "failed_first", is_flag=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _setting_options(func: Any) -> Any:
    """One click option per setting that has a flag, built from its ``Option``; the
    option's name is the setting's, so what the user typed overrides it by name."""
    for name, option in reversed(list(OPTIONS.items())):
        if not option.flags:
            continue
        if option.switch is not None:
            decorator = click.option(
                *option.flags,
                name,
                is_flag=True,
                flag_value=option.switch,
                default=None,
                help=option.help,
            )
        elif any("/" in declaration for declaration in option.flags):
            decorator = click.option(*option.flags, name, default=None, help=option.help)
        else:
            decorator = click.option(*option.flags, name, metavar=option.metavar, help=option.help)
        func = decorator(func)
    return func


@cli.command(context_settings={"ignore_unknown_options": False})
@_selection_options
@click.option("-x", "--exitfirst", is_flag=True, help="Stop after the first failure.")
@click.option("--maxfail", type=click.IntRange(min=1), help="Stop after N failures.")
@click.option("-s", "no_capture", is_flag=True, help="Show test output as each test finishes.")
@click.option("-v", "--verbose", count=True, help="One line per test.")
@click.option("-q", "--quiet", count=True, help="Less output.")
@_setting_options
@click.option(
    "--status",
    "status_path",
    metavar="PATH",
    help="Keep a live JSON snapshot of the run in PATH (for aqe mcp and other tools).",
)
@click.option(
    "--repeat-new",
    metavar="N",
    type=click.IntRange(min=1),
    help="Run tests the history has never seen N more times in varied orders (detect-flaky).",
)
@click.option("--run-id", "run_id", metavar="ID", hidden=True, callback=lambda c, p, v: _run_id(v))
@click.option(
    "--affected",
    metavar="[REF]",
    is_flag=False,
    flag_value="",
    help="Only tests whose recorded dependencies changed since REF (default: the last "
    "run's commit), new or changed test files and tests with no map (docs/affected.md).",
)
@click.option(
    "--changed",
    metavar="[REF]",
    is_flag=False,
    flag_value="",
    help="Only tests in changed test files or importing a changed module (no map needed).",
)
@click.option("--explain", is_flag=True, help="With --affected/--changed: each test's reason.")
@click.pass_context
def run(ctx: click.Context, /, **params: Any) -> None:
    """Run the suite (or PATHS) on a pool of workers; pytest args go after --."""
    mode, ref, paths = _selection_mode(params)
    params["paths"] = paths
    _check_paths(paths)
    root = _root_for(paths)
    flags = _given(ctx, [name for name, option in OPTIONS.items() if option.flags])
    config = load_config(root, flags)
    run_id = params["run_id"] or uuid.uuid4().hex[:12]
    # Before pytest is imported: with nothing affected, the answer is all there is.
    prepared = _prepare_selection(root, config, run_id, mode, ref, params["explain"])
    if prepared is not None and prepared.done is not None:
        ctx.exit(prepared.done)
    from ._adapters import RunOptions, pick_adapter

    selection = _selection(
        ctx,
        params,
        config,
        exitfirst=params["exitfirst"],
        maxfail=params["maxfail"],
        shard=config.shard,
    )
    # Every run keeps a live snapshot for `aqe status`, in .aqe unless told otherwise.
    status_path = params["status_path"] or _live_status(root, run_id)
    options = RunOptions(
        root=root,
        workers=config.resolved_workers(),
        verbosity=params["verbose"] - params["quiet"],
        capture=not params["no_capture"],
        live=_use_live(config),
        engine=_engine_settings(
            config, status_path=status_path, quarantined=_quarantined(root, config)
        ),
    )
    known: set[str] | None = None
    if params["repeat_new"] and config.history:
        store = _history_store(root, config)
        known = store.known_nodeids() if store is not None else set()
        if store is not None:
            store.close()

    if prepared is not None:
        os.environ.update(prepared.env)  # the plugins read it, in forked and spawned workers
        selection = dataclasses.replace(
            selection, extra_args=(*selection.extra_args, *prepared.args)
        )

    def finish(code: int) -> int:
        if prepared is not None:
            _finish_selection(root, config, run_id, prepared)
        if status_path and not params["status_path"]:
            with contextlib.suppress(OSError):
                os.unlink(status_path)  # the history holds the finished run
        if known is not None and code in (0, 1):
            code = max(code, _repeat_new(root, config, run_id, known, params["repeat_new"]))
        return code

    ctx.meta[_PENDING_KEY] = _PendingRun(
        (pick_adapter(root, config.adapter, config.suites), config, selection, options, run_id),
        finish,
    )


def _selection_mode(params: dict[str, Any]) -> tuple[str | None, str | None, tuple[str, ...]]:
    """``--affected``/``--changed`` and their REF; a path click took for REF goes back."""
    paths: tuple[str, ...] = params["paths"]
    if params["affected"] is not None and params["changed"] is not None:
        raise UsageError("--affected and --changed exclude each other: choose one")
    mode = "affected" if params["affected"] is not None else None
    mode = "changed" if params["changed"] is not None else mode
    if mode is None:
        if params["explain"]:
            raise UsageError("--explain explains --affected or --changed: add one")
        return None, None, paths
    from ._affected._command import split_ref

    value = params[mode]
    root = _root_for(paths or ((value,) if value and os.path.exists(value) else ()))
    ref, paths = split_ref(value, paths, root)
    return mode, ref, paths


def _prepare_selection(
    root: Path, config: Config, run_id: str, mode: str | None, ref: str | None, explain: bool
) -> Any:
    """What ``--affected``/``--changed``/``--record-deps`` add to the run (docs/affected.md)."""
    if mode is None and not config.record_deps:
        return None
    from ._affected._command import prepare

    store = None
    if mode is not None and config.history:  # opened without _runner: it imports pytest
        from ._store import open_existing
        from ._store._select import scheme_of

        where = config.history_path
        store = open_existing(where if scheme_of(where) else root / where)
    try:
        return prepare(
            root, run_id, store, mode=mode, ref=ref, record=config.record_deps, explain=explain
        )
    finally:
        if store is not None:
            store.close()


def _finish_selection(root: Path, config: Config, run_id: str, prepared: Any) -> None:
    from ._affected._command import finish
    from ._runner import open_store

    store = open_store(config, root) if prepared.deps_dir is not None else None
    try:
        finish(root, run_id, prepared, store)
    finally:
        if store is not None:
            store.close()


def _selection(
    ctx: click.Context, params: dict[str, Any], config: Config, **more: Any
) -> Selection:
    """What the selection options (and the pytest args after --) ask for."""
    from ._adapters import Selection

    return Selection(
        paths=params["paths"],
        keyword=params["keyword"],
        marker=params["marker"],
        deselect=tuple(params["deselect"]),
        last_failed=params["last_failed"],
        failed_first=params["failed_first"],
        extra_args=(*config.pytest_args, *ctx.meta.get(_EXTRA_KEY, ())),
        **more,
    )


def _collect(
    ctx: click.Context, params: dict[str, Any], config: Config, root: Path
) -> list[CollectedTest]:
    from ._adapters import RunOptions, pick_adapter

    selection = _selection(ctx, params, config)
    adapter = pick_adapter(root, config.adapter, config.suites)
    return adapter.collect(RunOptions(root=root, workers=1).request(selection))


@cli.command(name="list")
@_selection_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout, for tools.")
@click.pass_context
def list_tests(ctx: click.Context, /, **params: Any) -> None:
    """List the collected test ids with their estimated durations."""
    from ._runner import open_existing_store

    paths: tuple[str, ...] = params["paths"]
    _check_paths(paths)
    root = _root_for(paths)
    config = load_config(root, {})
    with _outside_click():
        tests = _collect(ctx, params, config, root)
    # A read-only command: never create a history database just to list tests.
    store = open_existing_store(config, root)
    estimates = store.estimates() if store is not None else {}
    if store is not None:
        store.close()
    if params["as_json"]:
        rows = []
        for test in tests:
            known = estimates.get(test.nodeid)
            rows.append(
                {
                    "nodeid": test.nodeid,
                    "file": test.file,
                    "line": test.line,
                    "estimate": round(known.total, 4) if known else None,
                }
            )
        click.echo(json.dumps({"tests": rows}))
        ctx.exit(0 if tests else 5)
    total = 0.0
    for test in tests:
        known = estimates.get(test.nodeid)
        total += known.total if known else 0.0
        shown = f"{known.total:8.3f}s" if known else "       ? "
        click.echo(f"{shown}  {test.nodeid}")
    click.echo(f"{len(tests)} tests, {total:.2f}s estimated from history", err=True)
    ctx.exit(0 if tests else 5)


@cli.command(name="shards")
@click.argument("count", type=click.IntRange(min=1), metavar="N")
@_selection_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document, with every shard's ids.")
@click.option(
    "--history",
    "history_path",
    metavar="PATH",
    help="History to plan from: a file or postgresql:// URL (default: .aqe/history.db).",
)
@click.pass_context
def shards(ctx: click.Context, /, count: int, **params: Any) -> None:
    """Print how aqe run --shard I/N splits the suite into N shards, without running it."""
    from ._adapters import RunOptions
    from ._adapters.pytest import pytest_args
    from ._runner import open_existing_store
    from ._sharding._pytest import History, plan_only

    paths: tuple[str, ...] = params["paths"]
    _check_paths(paths)
    root = _root_for(paths)
    config = load_config(root, _history_flags(params["history_path"]))
    selection = _selection(ctx, params, config)
    store = open_existing_store(config, root)  # read-only: never made here
    history = History.of(store)
    if store is not None:
        store.close()
    args = pytest_args(RunOptions(root=root, workers=1).request(selection))
    with _outside_click():
        plan = plan_only(args, root, count, history)
    if params["as_json"]:
        click.echo(json.dumps(plan.to_json()))
        ctx.exit(0 if plan.total else 5)
    for shard in plan.shards:
        click.echo(
            f"shard {shard.index}/{count}: {len(shard.nodeids):6d} tests  "
            f"{shard.predicted:9.2f}s predicted  {shard.files:4d} files"
        )
    basis = "the history" if plan.from_history else "test counts and file sizes (no history)"
    click.echo(
        f"aqe: {plan.total} tests in {count} shards, slowest {plan.balance():.2f}x the mean, "
        f"predicted from {basis}; plan {plan.digest}",
        err=True,
    )
    ctx.exit(0 if plan.total else 5)


#: ``--history PATH`` for the commands that read the history.
_read_history = click.option(
    "--history",
    "history_path",
    metavar="PATH",
    help="History to read: a file or postgresql:// URL (default: .aqe/history.db).",
)


def _history_flags(history_path: str | None) -> dict[str, Any]:
    return {"history_path": history_path} if history_path else {}


@cli.group(invoke_without_command=True)
@click.option("-n", "--limit", default=20, type=click.IntRange(min=1), help="How many runs.")
@_read_history
@click.pass_context
def history(ctx: click.Context, limit: int, history_path: str | None) -> None:
    """Recent runs, newest first, one line each (or export / import a history)."""
    if ctx.invoked_subcommand is not None:
        ctx.meta["aqe.history_path"] = history_path
        return
    from ._runner import history_location, open_existing_store
    from ._runner import history_path as resolved
    from ._store._select import scheme_of

    root = find_root(Path.cwd())
    config = load_config(root, _history_flags(history_path))
    location = history_location(config, root)
    if scheme_of(config.history_path) is None and not resolved(config, root).exists():
        click.echo(f"no history yet at {location}")
        return
    store = open_existing_store(config, root)
    if store is None:
        raise UsageError("history is disabled ('history = false' in config)")
    with store:
        rows = store.recent_runs(limit)
    if not rows:
        click.echo(f"no runs recorded yet in {location}")
    for row in rows:
        when = datetime.fromtimestamp(row.start).strftime("%Y-%m-%d %H:%M:%S")
        took = f"{row.end - row.start:7.2f}s" if row.end else "  (unfinished)"
        counts = ", ".join(f"{n} {k}" for k, n in row.counts.items() if n) or "no tests"
        commit = (row.git_commit or "-")[:8] + ("*" if row.git_dirty else "")
        click.echo(
            f"{row.run_id}  {when}  {took}  exit {row.exit_code}  {commit:9}  "
            f"w{row.workers}  {counts}"
        )


@history.command(name="export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_read_history
@click.pass_context
def history_export(ctx: click.Context, file: Path, history_path: str | None) -> None:
    """Write every run of the history to FILE: JSON lines, gzipped if FILE ends in .gz
    (docs/history.md). Import it into any history, SQLite or PostgreSQL."""
    from ._store._dump import write_dumps

    _root, _config, store = _project_history(history_path or ctx.meta.get("aqe.history_path"))
    with store:
        count = write_dumps(file, store.export_runs())
    click.echo(f"exported {count} runs to {file}")


@history.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@_read_history
@click.pass_context
def history_import(ctx: click.Context, files: tuple[Path, ...], history_path: str | None) -> None:
    """Add the runs of exported FILES to the history (made if need be); a run it
    already holds is skipped, so importing a file twice adds nothing twice."""
    from ._runner import history_location, open_store
    from ._store._dump import read_dumps

    root = find_root(Path.cwd())
    config = load_config(root, _history_flags(history_path or ctx.meta.get("aqe.history_path")))
    # Every file is read through once first: a damaged one (a cache cut short) is one
    # line and nothing written, not the runs before the damage, nor an empty history.
    for file in files:
        for _ in read_dumps(file):
            pass
    store = open_store(config, root)
    if store is None:
        raise UsageError("history is disabled ('history = false' in config)")
    added = skipped = 0
    with store:
        for file in files:
            for dump in read_dumps(file):
                if store.import_run(dump):
                    added += 1
                else:
                    skipped += 1
    click.echo(
        f"imported {added} runs into {history_location(config, root)}"
        f" ({skipped} already there, skipped)"
    )


@cli.command()
@click.option(
    "--root",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Project root the server serves (default: found from the current directory).",
)
@click.option(
    "--budget",
    default=8192,
    type=click.IntRange(min=2048, max=1 << 20),
    show_default=True,
    help="Most bytes of one answer; longer lists come in pages.",
)
@click.option(
    "--session-idle",
    default=1800.0,
    type=click.FloatRange(min=1),
    show_default=True,
    help="Seconds after which an idle session and its finished runs are forgotten.",
)
def mcp(root: Path | None, budget: int, session_idle: float) -> None:
    """Serve the fleet to AI coding agents over MCP (stdio)."""
    import importlib.util

    if importlib.util.find_spec("mcp") is None:
        raise UsageError(
            "aqe mcp needs the MCP SDK (not installed): pip install 'mcp>=2.3' (aqe's mcp extra)"
        )
    try:
        from ._mcp._server import serve
    except ImportError as exc:
        raise UsageError(
            f"aqe mcp cannot load the MCP SDK ({exc}): pip install --upgrade 'mcp>=2.3'"
        ) from None
    project = root.resolve() if root is not None else find_root(Path.cwd())
    serve(project, budget=budget, session_idle=session_idle)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("-w", "--workers", metavar="N|auto", help="Workers of each run.")
@click.option("--debounce", default=300, type=click.IntRange(10, 60_000), help="Milliseconds.")
@click.pass_context
def watch(ctx: click.Context, paths: tuple[str, ...], workers: str | None, debounce: int) -> None:
    """On every save under PATHS, run the tests it affects (aqe run --affected)."""
    from ._affected._watch import watch as watch_loop

    root = _root_for(paths)
    run_args = (["-w", workers] if workers else []) + ["--", *ctx.meta.get(_EXTRA_KEY, ())]
    ctx.exit(watch_loop(root, paths, run_args, debounce))


@cli.command()
@click.argument("path", required=False)
@click.option("-n", "--limit", default=20, type=click.IntRange(min=1), help="How many gaps.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for tools.")
def gaps(path: str | None, limit: int, as_json: bool) -> None:
    """Code no test reaches, by function, ranked (from the last run's coverage data)."""
    from ._affected import _gaps

    root = _root_for((path,) if path else ())
    under = None
    if path is not None:
        if not Path(path).exists():
            raise UsageError(f"path {path!r} (argument PATH) does not exist")
        under = Path(path).resolve().relative_to(root.resolve()).as_posix()
        under = None if under == "." else under
    config = load_config(root, {})
    store = _history_store(root, config)
    try:
        found = _gaps.command(root, under, store, limit)
    finally:
        if store is not None:
            store.close()
    if as_json:
        click.echo(json.dumps({"gaps": [gap.to_json() for gap in found]}, indent=2))
    else:
        click.echo("\n".join(_gaps.text(found)) or "no gaps: every measured line is reached")


def _budget(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds != seconds or seconds > 3600:
        raise click.BadParameter(f"must be seconds between 0 and 3600, got {value!r}")
    return seconds


class _GenerateCommand(click.Command):
    """``aqe generate MODULE``, and ``aqe generate api SPEC`` nested in it."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        if args[:1] == ["api"]:
            return generate_api.make_context(f"{info_name} api", args[1:], parent, **extra)
        return super().make_context(info_name, args, parent, **extra)


@cli.command(cls=_GenerateCommand)
@click.argument("target", metavar="MODULE_OR_PATH")
@click.option(
    "--function", "function", metavar="NAME", help="Only this function or Class[.method]."
)
@click.option(
    "--out", metavar="PATH", help="Test file to write (default tests/test_<module>_generated.py)."
)
@click.option(
    "--budget",
    default="20",
    metavar="S",
    callback=_budget,
    show_default=True,
    help="Seconds aimed at: about half searches (its CPU time: the same tests on a busy "
    "machine), the rest checks properties and runs the file (two pytest runs a round: a "
    "few seconds however small the budget).",
)
@click.option("--dry-run", is_flag=True, help="Print the file instead of writing it.")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@click.option(
    "--report",
    is_flag=True,
    help="Per function: coverage, tests kept and dropped; and the file's mutation score "
    "(a sample of 100 mutants, within --budget seconds more).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for tools.")
@click.option("--seed", default=0, type=int, help="Seed of the search.")
@click.option("--gaps", "aim_at_gaps", is_flag=True, help="Aim at the top gap (aqe gaps).")
def generate(
    target: str,
    function: str | None,
    out: str | None,
    budget: float,
    dry_run: bool,
    force: bool,
    report: bool,
    as_json: bool,
    seed: int,
    aim_at_gaps: bool = False,
) -> None:
    """Write unit tests for a module; keep only those that pass in fresh processes under
    four hash seeds. (`aqe generate api SPEC`: contract tests for an HTTP API.)"""
    if aim_at_gaps:  # issue 20: the module's top gap (docs/affected.md) as --function
        from ._affected._gaps import top_function

        if function is not None:
            raise UsageError("--gaps chooses the function: drop --function")
        gap = top_function(find_root(Path.cwd()), target)
        if gap is None:
            raise UsageError(f"aqe generate --gaps: no gap in a function of {target}")
        function = gap.function
        click.echo(f"aqe: aiming at the top gap: {gap.file}::{gap.function}", err=True)
    import importlib.util

    if importlib.util.find_spec("coverage") is None:
        raise UsageError(
            "aqe generate needs coverage.py (not installed): "
            "pip install 'coverage>=7.6' 'hypothesis>=6.100' (aqe's generate extra)"
        )
    from ._generate import Request
    from ._generate import generate as run_generate
    from ._generate._command import as_json as result_json
    from ._generate._command import report_lines, summary

    root = find_root(Path.cwd())
    request = Request(
        target=target,
        root=root,
        out=Path(out) if out else None,
        function=function,
        budget=budget,
        dry_run=dry_run,
        force=force,
        seed=seed,
        mutation=report,
    )
    result = run_generate(request)
    if result.warning:
        click.echo(f"aqe: warning: {result.warning}", err=True)
    if as_json:
        click.echo(json.dumps(result_json(result), indent=2))
        return
    if dry_run:
        click.echo(result.text, nl=False)
    if report:
        click.echo("\n".join(report_lines(result)), err=dry_run)
    click.echo(summary(result), err=dry_run)


@click.command("api")
@click.argument("spec", metavar="SPEC", type=click.Path(path_type=Path))
@click.option("--base-url", metavar="URL", help="The running API to test (http://host:port).")
@click.option("--app", metavar="MODULE:APP", help="Or an ASGI/WSGI app, called in-process.")
@click.option("--out", metavar="DIR", help="Folder of the written tests (default tests/api).")
@click.option(
    "--budget",
    default="30",
    metavar="S",
    callback=_budget,
    show_default=True,
    help="Seconds for --explore's search.",
)
@click.option("--dry-run", is_flag=True, help="Print the files instead of writing them.")
@click.option("--explore", is_flag=True, help="Also search with Hypothesis for failures.")
@click.option("--report", is_flag=True, help="List the failing and dropped cases.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for tools.")
@click.option("--seed", default=0, type=int, help="Seed of --explore's search.")
def generate_api(
    spec: Path,
    base_url: str | None,
    app: str | None,
    out: str | None,
    budget: float,
    dry_run: bool,
    explore: bool,
    report: bool,
    as_json: bool,
    seed: int,
) -> None:
    """Write pytest contract tests for an HTTP API from its OpenAPI 3.0/3.1 description
    (SPEC, YAML or JSON); keep the cases that give the same verdict twice."""
    import importlib.util

    if (base_url is None) == (app is None):
        raise UsageError("aqe generate api needs one of --base-url URL or --app MODULE:APP")
    needed = ["httpx", "jsonschema", "yaml", "openapi_spec_validator"]
    needed += ["hypothesis"] if explore else []
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"aqe generate api needs {', '.join(missing)} (not installed): "
            "pip install 'aqe[api]' (httpx, jsonschema, pyyaml, openapi-spec-validator, "
            "hypothesis)"
        )
    from ._apigen import Request
    from ._apigen import generate as run_generate
    from ._apigen._command import as_json as result_json
    from ._apigen._command import report_lines, summary

    result = run_generate(
        Request(
            spec=spec,
            root=Path.cwd(),
            base_url=base_url,
            app=app,
            out=Path(out) if out else None,
            budget=budget,
            dry_run=dry_run,
            explore=explore,
            seed=seed,
        )
    )
    for warning in result.warnings:
        click.echo(f"aqe: warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps(result_json(result), indent=2))
        return
    if dry_run:
        for name, text in result.files.items():
            click.echo(f"# --- {name} ---\n{text}", nl=False)
    if report:
        click.echo("\n".join(report_lines(result)), err=dry_run)
    click.echo(summary(result), err=dry_run)


def _live_status(root: Path, run_id: str) -> str | None:
    from ._paths import optional_aqe_directory

    directory = optional_aqe_directory(root, "status")
    return None if directory is None else str(directory / f"{run_id}.json")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for tools.")
def status(as_json: bool) -> None:
    """The runs going on in this project (workers, current tests, memory) and the last
    finished one (outcomes and per-tier figures)."""
    from ._status_view import status_lines, status_report

    root = find_root(Path.cwd())
    config = load_config(root, {})
    store = _history_store(root, config)
    try:
        report = status_report(root, store)
    finally:
        if store is not None:
            store.close()
    click.echo(json.dumps(report, indent=2) if as_json else "\n".join(status_lines(report)))


def _repeat_new(root: Path, config: Config, run_id: str, known: set[str], rounds: int) -> int:
    """Judge the tests this run saw for the first time; 1 if one of them is flaky."""
    from ._knowledge import _detect

    store = _history_store(root, config)
    if store is None:
        return 0
    with store:
        ran = list(dict.fromkeys(r.nodeid for r in store.results_for_run(run_id)))
    new = [nodeid for nodeid in ran if nodeid not in known]
    if not new:
        click.echo("aqe: --repeat-new: no new tests in this run")
        return 0
    click.echo(
        f"aqe: --repeat-new: running the run's {len(ran)} tests {rounds} more times in varied "
        f"orders to judge its {len(new)} new tests"
    )
    runner = _detect.Runner(root, config.pytest_args)
    workers = min(2, config.resolved_workers())
    report = _detect.detect(runner, ran, rounds, workers=workers, judge=set(new))
    click.echo("\n".join(_detect.report_lines(report)))
    return 1 if any(t.verdict not in ("stable", "failing") for t in report.tests) else 0


def _quarantined(root: Path, config: Config) -> frozenset[str]:
    if not config.quarantine:
        return frozenset()
    from ._knowledge import _quarantine

    return frozenset(entry.id for entry in _quarantine.load(root))


def _project_history(history_path: str | None = None) -> tuple[Path, Config, HistoryStore]:
    """The current project, its config and its history store, which must exist."""
    from ._runner import history_location

    root = find_root(Path.cwd())
    config = load_config(root, _history_flags(history_path))
    store = _history_store(root, config)
    if store is None:
        raise UsageError(f"no history yet at {history_location(config, root)}: run aqe run first")
    return root, config, store


def _history_store(root: Path, config: Config) -> HistoryStore | None:
    """The project's history store if it exists (read-only commands never create one)."""
    from ._runner import open_existing_store

    return open_existing_store(config, root)


@cli.command()
@click.argument("test_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON document (docs/knowledge.md).")
@click.option("--window", type=click.IntRange(2, 500), help="Recent runs to judge on.")
@click.option("--all", "show_all", is_flag=True, help="Stable tests too.")
@_read_history
def flaky(
    test_id: str | None,
    as_json: bool,
    window: int | None,
    show_all: bool,
    history_path: str | None,
) -> None:
    """Flaky and broken tests from the history, with their evidence; or one test's timeline.

    \b
    Each test of the recent runs gets a label, and a score: the chance that a run
    of the current code fails it, from 0.00 to 1.00.
      1.00 broken  failed on every run since a commit (shown as "since"), or on
                   every run of the window: a real failure, never called flaky
      0.xx flaky   passed and failed on the same code, or passed on a retry; the
                   score is the share of its attempts that failed on that evidence
      0.00 stable  passes on the current code (listed with --all)
    """
    from ._knowledge import _commands

    _root, config, store = _project_history(history_path)
    with store:
        verdicts, runs = _commands.verdicts(store, window or config.flaky_window)
    if test_id is not None:
        verdict = _commands.find(verdicts, test_id)
        if as_json:
            click.echo(json.dumps(verdict.to_json(timeline=True), indent=2))
        else:
            click.echo("\n".join(_commands.timeline_lines(verdict)))
        return
    report = _commands.flaky_report(verdicts, runs, show_all)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo("\n".join(_commands.flaky_lines(report)))


@cli.group(invoke_without_command=True)
@click.option("--run", "run_id", metavar="ID", help="Run to look at (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (docs/knowledge.md).")
@_read_history
@click.pass_context
def failures(
    ctx: click.Context, run_id: str | None, as_json: bool, history_path: str | None
) -> None:
    """A run's failures grouped by root cause, largest group first."""
    if ctx.invoked_subcommand is not None:
        ctx.meta["aqe.history_path"] = history_path
        return
    from ._knowledge import _commands

    root, config, store = _project_history(history_path)
    with store:
        run = _commands.pick_run(store, run_id)
        report = _commands.clusters(
            run,
            store.results_for_run(run),
            str(root),
            _commands.past_transitions(store, run, config.flaky_window),
        )
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo("\n".join(_commands.cluster_lines(report)))


@failures.command(name="similar")
@click.argument("test_id")
@click.option("--run", "run_id", metavar="ID", help="Run of the failure (default: the latest).")
@click.option("-n", "--limit", default=5, type=click.IntRange(1, 100), help="How many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (docs/knowledge.md).")
@_read_history
@click.pass_context
def failures_similar(
    ctx: click.Context,
    test_id: str,
    run_id: str | None,
    limit: int,
    as_json: bool,
    history_path: str | None,
) -> None:
    """The past failures (other runs) nearest to TEST_ID's failure, best first."""
    from ._knowledge import _commands

    # ``aqe failures --history P similar T`` as well as ``aqe failures similar T --history P``.
    history_path = history_path or ctx.meta.get("aqe.history_path")
    root, _config, store = _project_history(history_path)
    with store:
        report = _commands.similar(store, test_id, run_id, limit, root)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo("\n".join(_commands.similar_lines(report)))


@cli.group()
def report() -> None:
    """Reports of a recorded run, from the history."""


@report.command(name="html")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--run", "run_id", metavar="ID", help="Run to show (default: the latest).")
@_read_history
def report_html(path: str, run_id: str | None, history_path: str | None) -> None:
    """Write a run's self-contained HTML report to PATH."""
    from ._reporting.html import write_html
    from ._runner import history_trend, stored_run

    _root, _config, store = _project_history(history_path)
    with store:
        run = stored_run(store, run_id)
        trend = history_trend(store, until=run.start)
    write_html(run, Path(path), trend, from_history=True)
    click.echo(f"aqe: wrote {path} ({len(run.final())} tests of run {run.run_id})")


@cli.command(name="merge")
@click.argument("outputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--junit-xml", "junit_xml", metavar="PATH", help="Write the merged JUnit XML.")
@click.option("--json", "json_path", metavar="PATH", help="Write the merged JSON report.")
@click.option("--html", "html_path", metavar="PATH", help="Write the merged HTML report.")
@click.option(
    "--history",
    "history_path",
    metavar="PATH",
    help="Record the merged run in this history (a file or postgresql:// URL).",
)
@click.pass_context
def merge(
    ctx: click.Context,
    outputs: tuple[Path, ...],
    junit_xml: str | None,
    json_path: str | None,
    html_path: str | None,
    history_path: str | None,
) -> None:
    """Join the JSON reports of aqe run --shard I/N --json into one run: its reports and
    one history run, with each shard's predicted and actual seconds. Exits as the
    whole suite's run would (0 passed, 1 failed)."""
    from ._reporting.html import write_html
    from ._reporting.json_report import write_json_report
    from ._reporting.junit import write_junit_xml
    from ._runner import open_store, record_run
    from ._sharding._merge import merge as merge_outputs
    from ._sharding._merge import read_output

    merged = merge_outputs([read_output(path) for path in outputs], [str(p) for p in outputs])
    run = merged.run
    shards = [(output.shard, output.actual, output.wall) for output in merged.shards]
    store = None
    if history_path:  # opened before any report is written: a bad URL writes nothing
        root = find_root(Path.cwd())
        store = open_store(load_config(root, {"history_path": history_path}), root)
    if junit_xml:
        write_junit_xml(run, Path(junit_xml))
    if json_path:
        write_json_report(run, Path(json_path), shards=shards)
    if html_path:
        write_html(run, Path(html_path), shards=shards, shard_of=merged.shard_of)
    if store is not None:
        record_run(store, run)
    for info, actual, wall in shards:
        took = f"{actual:8.2f}s" if actual is not None else "       ?"
        whole = f"{wall:.2f}s" if wall is not None else "?"
        click.echo(
            f"shard {info.index}/{info.count}: {info.tests:6d} tests  "
            f"predicted {info.predicted:8.2f}s  actual {took}  (its run: {whole})"
        )
    counts = run.final_counts()
    closing = ", ".join(f"{counts[name]} {name}" for name in counts if counts[name])
    click.echo(f"aqe: merged {len(shards)} shards into run {run.run_id}: {closing or 'no tests'}")
    ctx.exit(run.exit_code or 0)


@cli.command(name="detect-flaky")
@_selection_options
@click.option("--runs", default=10, type=click.IntRange(1, 1000), show_default=True)
@click.option("--seed", default=0, type=int, show_default=True, help="Orders are reproducible.")
@click.option("-w", "--workers", default=2, type=click.IntRange(1, 64), show_default=True)
@click.option("--new", "only_new", is_flag=True, help="Only tests the history has never seen.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (docs/knowledge.md).")
@click.option("--all", "show_all", is_flag=True, help="Stable tests too.")
@click.pass_context
def detect_flaky(ctx: click.Context, /, **params: Any) -> None:
    """Run the selection --runs times in shuffled orders and judge each test: stable,
    flaky, brittle (fails alone) or order-dependent (with the polluter found)."""
    from ._knowledge import _detect

    paths: tuple[str, ...] = params["paths"]
    _check_paths(paths)
    root = _root_for(paths)
    config = load_config(root, {})
    with _outside_click():
        tests = _collect(ctx, params, config, root)
    ids = [test.nodeid for test in tests]
    if params["only_new"]:
        store = _history_store(root, config)
        known = store.known_nodeids() if store is not None else set()
        if store is not None:
            store.close()
        ids = [nodeid for nodeid in ids if nodeid not in known]
    if not ids:
        click.echo("no tests to judge", err=True)
        ctx.exit(5)
    runner = _detect.Runner(root, (*config.pytest_args, *ctx.meta.get(_EXTRA_KEY, ())))
    report = _detect.detect(runner, ids, params["runs"], params["workers"], params["seed"])
    if params["as_json"]:
        click.echo(json.dumps(_detect.report_json(report), indent=2))
    else:
        click.echo("\n".join(_detect.report_lines(report, params["show_all"])))
    ctx.exit(1 if any(t.verdict not in ("stable", "failing") for t in report.tests) else 0)


@cli.group()
def quarantine() -> None:
    """The tests whose failures do not fail the run (.aqe/quarantine.toml)."""


@quarantine.command(name="add")
@click.argument("test_ids", nargs=-1, required=True)
@click.option("--reason", default="", help="Why (kept in the file).")
def quarantine_add(test_ids: tuple[str, ...], reason: str) -> None:
    """Quarantine TEST_IDS (node ids)."""
    from ._knowledge import _quarantine

    for test_id in test_ids:
        if test_id.startswith("-") or "::" not in test_id:
            raise UsageError(f"{test_id!r} (argument TEST_IDS) is not a node id like file::test")
    root = find_root(Path.cwd())
    added = _quarantine.add(root, test_ids, reason, os.environ.get("USER", "") or "aqe")
    for entry in added:
        click.echo(f"quarantined {entry.id}")
    known = len(test_ids) - len(added)
    if known:
        click.echo(f"{known} already in quarantine")
    click.echo(f"file: {_quarantine.path_of(root)} (commit it to share it)")


@quarantine.command(name="remove")
@click.argument("test_ids", nargs=-1, required=True)
def quarantine_remove(test_ids: tuple[str, ...]) -> None:
    """Release TEST_IDS from quarantine."""
    from ._knowledge import _quarantine

    root = find_root(Path.cwd())
    gone = _quarantine.remove(root, test_ids)
    for test_id in gone:
        click.echo(f"released {test_id}")
    missing = [t for t in test_ids if t not in gone]
    if missing:
        raise UsageError(f"not in quarantine: {', '.join(missing)}")


@quarantine.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document (docs/knowledge.md).")
def quarantine_list(as_json: bool) -> None:
    """Quarantined tests; those passing for quarantine_release_runs runs in a row are
    proposed for release."""
    from ._knowledge import _commands, _quarantine

    root = find_root(Path.cwd())
    config = load_config(root, {})
    store = _history_store(root, config)
    try:
        listed = _commands.quarantine_status(root, store, config)
    finally:
        if store is not None:
            store.close()
    path = _quarantine.path_of(root)
    if as_json:
        click.echo(json.dumps(_commands.quarantine_json(listed, path), indent=2))
    else:
        click.echo(
            "\n".join(_commands.quarantine_lines(listed, path, config.quarantine_release_runs))
        )


def main(argv: Sequence[str] | None = None) -> None:
    mark("cli")
    # Outside the run loop SIGTERM ends aqe like Ctrl-C: reports and history are
    # still written (the loop itself stops gracefully, see the coordinator).
    catch(interrupt)
    quiet_lost_interrupts()
    try:
        code = _main(list(sys.argv[1:] if argv is None else argv))
        if isinstance(code, _PendingRun):
            from ._runner import execute_run

            try:
                code = code.finish(execute_run(*code.args))
            except AqeError as exc:
                click.echo(f"aqe: error: {exc}", err=True)
                code = exc.exit_code
    except KeyboardInterrupt:  # a signal after the run had handled its own
        click.echo("aqe: interrupted", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: under ``python -m`` the interpreter can still end itself
        # with SIGINT after an interrupt, instead of exit 2.
        os._exit(2)
    except BrokenPipeError:
        _reader_gone()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the code stands; only the last of the output is lost
        _silence_stdout()
    # Done and written: a signal from here on has nothing left to stop. Ignored, not
    # handled: the interpreter resets a Python handler to the default while it exits,
    # and a late Ctrl-C would then kill aqe by signal instead of its exit code.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    # Everything alive now dies with the process: spare the interpreter's final
    # collection a walk over the whole session (about 0.1 s after a 2,000-test run).
    gc.freeze()
    mark("exit")
    _forget_handled_interrupt()
    sys.exit(code)


def _reader_gone() -> NoReturn:
    """Whoever read our output went away (``aqe list | head``): end as Unix tools do,
    killed by SIGPIPE (which shells do not report), never with a traceback. Python
    ignores SIGPIPE, so without this every such pipe printed a BrokenPipeError."""
    _silence_stdout()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + signal.SIGPIPE)  # pragma: no cover - the signal ends the process


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit cannot fail."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _forget_handled_interrupt() -> None:
    """A KeyboardInterrupt raised inside ``exec(str)`` (dataclasses build methods
    that way) sets CPython's "unhandled interrupt" flag even when aqe handled it,
    and under ``python -m`` the interpreter then ends itself with SIGINT instead of
    our exit code. Every ``exec(str)`` clears the flag first: an empty one is enough."""
    exec("")


def _engine_settings(
    config: Config, status_path: str | None, quarantined: frozenset[str]
) -> EngineSettings:
    """The engine's settings, each taken from the setting of the same name."""
    from ._engine._limits import EngineSettings
    from ._engine._retry import RetryPolicy

    return by_name(
        EngineSettings,
        config,
        workers=config.resolved_workers(),
        retry=by_name(RetryPolicy, config, prefix="retry_"),
        status_path=status_path,
        quarantined=quarantined,
    )


#: Commands that pass the arguments after ``--`` to pytest.
_PYTEST_COMMANDS = ("run", "list", "detect-flaky", "watch")


def _no_such_option(exc: click.NoSuchOption, args: Sequence[str]) -> str:
    """Click's message, or for a pytest option given before ``--`` a hint to put it
    after (pytest-xdist's ``-n`` has aqe's own equivalent, ``-w``)."""
    command = exc.ctx.command.name if exc.ctx is not None else None
    name = exc.option_name
    if command not in _PYTEST_COMMANDS:
        return exc.format_message()
    given = _as_given(name, args)
    if name in ("-n", "--numprocesses"):
        count = given[len(name) :].lstrip("= ") or "N"
        assert exc.ctx is not None
        if not any("-w" in getattr(param, "opts", ()) for param in exc.ctx.command.params):
            return f"{given} is pytest-xdist's worker count; aqe {command} runs no tests: drop it"
        return (
            f"{given} is pytest-xdist's worker count; aqe runs the tests on its own "
            f"workers: use -w {count}"
        )
    from ._adapters.pytest import option_names

    if name in option_names():
        return f"{name} is a pytest option: put it after --, as in: aqe {command} -- {given}"
    if exc.possibilities:  # likely a typo of one of aqe's own
        return exc.format_message()
    # A conftest's option, or a plugin's that is not installed here: pytest may know it.
    return f"{exc.format_message()} (pytest's options go after --: aqe {command} -- {given})"


def _as_given(name: str, args: Sequence[str]) -> str:
    """The option as typed (``--tb=short``, ``-pno:cacheprovider``, ``-p no:x``)."""
    for position, arg in enumerate(args):
        if arg == name:
            after = args[position + 1] if position + 1 < len(args) else ""
            return f"{name} {after}" if after and not after.startswith("-") else name
        if arg.startswith(f"{name}=") or (not name.startswith("--") and arg.startswith(name)):
            return arg
    return name


def _main(args: list[str]) -> int | _PendingRun:
    extra: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, extra = args[:cut], args[cut + 1 :]
    try:
        with cli.make_context("aqe", args) as ctx:
            ctx.meta[_EXTRA_KEY] = extra
            cli.invoke(ctx)
            pending = ctx.meta.get(_PENDING_KEY)
            if isinstance(pending, _PendingRun):
                return pending
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.NoSuchOption as exc:
        click.echo(f"aqe: error: {_no_such_option(exc, args)}", err=True)
        return 4
    except click.ClickException as exc:
        click.echo(f"aqe: error: {exc.format_message()}", err=True)
        return 4
    except click.exceptions.Abort:
        click.echo("aqe: interrupted", err=True)
        return 2
    except AqeError as exc:
        click.echo(f"aqe: error: {exc}", err=True)
        return exc.exit_code
    return 0
