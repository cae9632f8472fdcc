"""Coverage measured in workers: each saves its own data file, the coordinator combines them.

pytest-cov (or ``coverage run``) starts coverage.py in the coordinator; forked workers
inherit its running tracer, but they end with ``os._exit``, so coverage's own save at
exit never runs and what they measured is lost. Here a worker keeps the inherited
``Coverage`` object running (so pytest-cov's ``no_cover`` and ``--cov-context`` still
act on it) but points it at a data file of its own, named after the coordinator's
pid, and writes it between tests now and then and before it exits. After the run
loop the coordinator reads those files into its own data, which pytest-cov then
reports (term, html, xml, json, lcov, ``--cov-fail-under``) and ``coverage run``
saves at exit, as for a serial run.

A spawned worker is a fresh interpreter where pytest-cov starts afresh:
:class:`SpawnedWorkerCoverage` keeps it from erasing other workers' data at start and
from combining and reporting at the end, which are the coordinator's to do.

coverage.py is never imported here unless the process already has it loaded.
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from coverage import Coverage, CoverageData
    from coverage.collector import Collector

#: A worker's data file is ``<data file>.aqe-<coordinator pid>-<worker pid>``.
_PREFIX = "aqe-"
#: Set for a spawned worker: the configuration of the coordinator's ``coverage run``.
_SPAWN_ENV = "_AQE_COVERAGE_CONFIG"
#: Set where a worker's parent is not the coordinator (a Ray node's host): the
#: coordinator's pid, which names the worker's data file.
OWNER_ENV = "_AQE_COVERAGE_OWNER"


@dataclass(frozen=True, slots=True)
class _Measuring:
    """What a worker measures with: the inherited ``Coverage`` object, its collector
    (the tracer's in-memory data) and the worker's own data file."""

    cov: Coverage
    collector: Collector
    data: CoverageData


#: Set in a worker by ``worker_started`` when coverage.py is measuring.
_measuring: _Measuring | None = None

#: CPU seconds between a worker's writes of its data file while it runs tests.
CHECKPOINT_EVERY = 0.5
_last_checkpoint = -CHECKPOINT_EVERY


def _current() -> Coverage | None:
    module = sys.modules.get("coverage")
    if module is None:
        return None
    current: Coverage | None = module.Coverage.current()
    return current


def _base(cov: Coverage) -> str:
    """The absolute data file name the ``Coverage`` object was made with."""
    data = getattr(cov, "_data", None)
    if data is not None:
        return str(data.base_filename())
    return os.path.abspath(cov.config.data_file)


def spawn_env() -> dict[str, str]:
    """The environment a spawned worker needs to measure like the coordinator when
    ``coverage run`` started coverage there (pytest-cov starts it in the worker itself)."""
    cov = _current()
    serialize = getattr(cov.config, "serialize", None) if cov is not None else None
    return {_SPAWN_ENV: serialize()} if serialize is not None else {}


def _start_spawned(config: str) -> Coverage | None:
    """Start coverage in a spawned worker with the coordinator's configuration."""
    try:
        from coverage import Coverage
        from coverage.control import CONFIG_DATA_PREFIX

        cov = Coverage(config_file=CONFIG_DATA_PREFIX + config, auto_data=False)
        cov.start()
    except Exception as exc:
        sys.stderr.write(f"aqe: worker {os.getpid()} could not start coverage: {exc}\n")
        return None
    return cov


def worker_started() -> None:
    """In a worker before its first test: send the running tracer's data to a file of
    this worker's own. The tracer, and the data it already holds from before the
    fork (harmless: combining is a union), are kept."""
    global _measuring
    config = os.environ.pop(_SPAWN_ENV, None)
    cov = _current()
    if cov is None and config is not None:
        cov = _start_spawned(config)
    collector = getattr(cov, "_collector", None)
    if cov is None or collector is None or not hasattr(cov, "_data"):
        return  # not measuring, or a coverage.py whose internals differ
    try:
        from coverage import CoverageData

        data = CoverageData(
            basename=_base(cov),
            suffix=f"{_PREFIX}{os.environ.get(OWNER_ENV) or os.getppid()}-{os.getpid()}",
            warn=getattr(cov, "_warn", None),
        )
        # The inherited data object would write to the coordinator's own file (or,
        # for ``coverage run`` without -p, erase it on first use).
        cov._data = data
        collector.use_data(data, cov.config.context)
    except Exception as exc:  # the tests still run, unmeasured
        sys.stderr.write(f"aqe: worker {os.getpid()} cannot measure coverage: {exc}\n")
        return
    _measuring = _Measuring(cov, collector, data)


def checkpoint() -> None:
    """In a worker after a test: write what the tracer holds to the data file, once
    per ``CHECKPOINT_EVERY`` seconds of the worker's CPU time, so a test that later
    kills the worker (then run again on the next tier) loses its own lines and those
    of the tests just before it, not the whole worker's. Writing after every test
    cost a quarter of a worker's CPU on tomlkit's suite (2 ms a test, coverage.py's
    SQLite inserts); CPU time, not wall time, keeps that share small on a loaded
    machine too."""
    global _last_checkpoint
    if _measuring is None:
        return
    now = time.process_time()
    if now - _last_checkpoint < CHECKPOINT_EVERY:
        return
    _last_checkpoint = now
    try:
        _measuring.collector.flush_data()
    except Exception as exc:
        _stop_measuring(f"could not save coverage data: {exc}")


def worker_finished() -> None:
    """In a worker that is about to exit: stop measuring and write the rest."""
    if _measuring is None:
        return
    with contextlib.suppress(Exception):
        _measuring.cov.stop()  # (a test may have left a Coverage of its own on top)
    try:
        # Not ``save()``: its checks for unimported and unrun files are the
        # coordinator's to make, once, on the combined data.
        _measuring.collector.flush_data()
    except Exception as exc:  # never lose the worker's results over its coverage
        _stop_measuring(f"could not save coverage data: {exc}")
    else:
        _stop_measuring(None)


def _stop_measuring(problem: str | None) -> None:
    global _measuring
    if _measuring is not None:
        with contextlib.suppress(Exception):
            _measuring.data.close()
    _measuring = None
    if problem:
        sys.stderr.write(f"aqe: worker {os.getpid()} {problem}\n")


def combine_workers() -> int:
    """In the coordinator after the run loop: read every data file its workers saved
    into the running ``Coverage`` object's data and delete them; how many there were."""
    cov = _current()
    if cov is None:
        return 0
    _sweep_stale(_base(cov))
    pattern = f"{glob.escape(_base(cov))}.{_PREFIX}{os.getpid()}-*"
    paths = sorted(p for p in glob.glob(pattern) if not p.endswith("-journal"))
    if not paths:
        return 0
    from coverage import CoverageData

    # Not ``get_data()``: its warnings would judge the coordinator's data alone.
    data: CoverageData | None = getattr(cov, "_data", None)
    if data is None:
        data = cov.get_data()
    for path in paths:
        part = CoverageData(basename=path)
        try:
            part.read()
            data.update(part)
        except Exception as exc:
            sys.stderr.write(f"aqe: could not combine coverage data {path}: {exc}\n")
            continue
        finally:
            with contextlib.suppress(Exception):
                part.close()
        with contextlib.suppress(OSError):
            os.unlink(path)
    _imported_in_workers(cov, data)
    return len(paths)


def _sweep_stale(base: str) -> None:
    """Delete worker data files a killed coordinator left: ``coverage combine`` (or
    pytest-cov with ``--cov-append``) would otherwise add another run's lines."""
    for path in glob.glob(f"{glob.escape(base)}.{_PREFIX}*-*"):
        try:
            pid = int(path[len(base) + len(_PREFIX) + 1 :].split("-")[0])
            os.kill(pid, 0)
        except (ProcessLookupError, OverflowError):
            with contextlib.suppress(OSError):
                os.unlink(path)
        except (ValueError, PermissionError):
            continue


def _imported_in_workers(cov: Coverage, data: CoverageData) -> None:
    """Take the ``--cov`` packages the workers measured off the list coverage.py warns
    about at save ("Module X was never imported"): the coordinator never imports them."""
    unmatched = getattr(getattr(cov, "_inorout", None), "source_pkgs_unmatched", None)
    if not isinstance(unmatched, list) or not unmatched:
        return
    measured = data.measured_files()
    for package in list(unmatched):
        stem = os.sep + str(package).replace(".", os.sep)
        if any(name.endswith((stem + ".py", stem + os.sep + "__init__.py")) for name in measured):
            unmatched.remove(package)


class SpawnedWorkerCoverage:
    """In a spawned worker: pytest-cov measures as in the coordinator, but neither
    erases data files at start nor combines and reports at the end."""

    @pytest.hookimpl(wrapper=True)
    def pytest_load_initial_conftests(self, early_config: pytest.Config) -> Generator[None]:
        # pytest-cov starts coverage in this hook, erasing the data file and every
        # ``.coverage.*`` beside it (it makes coverage parallel) unless appending.
        namespace = early_config.known_args_namespace
        if hasattr(namespace, "cov_append"):
            namespace.cov_append = True
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionstart(self, session: pytest.Session) -> Generator[None]:
        # A worker that looks like pytest-xdist's (``workerinput`` set) makes
        # pytest-cov start a DistWorker, which reads what xdist's controller
        # would have put there: this process is on the coordinator's host and
        # directory, so its data file lands beside the coordinator's.
        workerinput: Any = getattr(session.config, "workerinput", None)
        if isinstance(workerinput, dict):
            workerinput.setdefault("cov_master_host", socket.gethostname())
            workerinput.setdefault("cov_master_topdir", os.fspath(Path.cwd()))
            workerinput.setdefault("cov_master_rsync_roots", [])
        result = yield
        plugin: Any = session.config.pluginmanager.get_plugin("_cov")
        if plugin is not None and hasattr(plugin, "_disabled"):
            # Its runtestloop wrapper would save, combine the directory's data files
            # and report from this process; the coordinator does that once for all.
            plugin._disabled = True
        return result
