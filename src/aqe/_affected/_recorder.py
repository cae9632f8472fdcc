"""Records each test's dependencies in a worker: a pytest plugin (``-p``) that
``aqe run --record-deps`` loads, active only in workers.

Mechanism: on CPython 3.11, probes in the project's code objects (``_probes``: no
tracer, so untraced speed); elsewhere coverage.py's collector, measuring the
project's files only, read and emptied after each test (its per-file line sets,
never its SQLite data: writing that per test costs more than the tests on small
suites; coverage.py picks its core: the C tracer on 3.10, ``sys.monitoring`` where
it supports it). Lines become functions here, each file parsed once per worker.
Higher-scoped fixtures run once but serve many tests: what their setup ran is kept
by fixture name and added to every test that uses the fixture. Files a test opens
(an audit hook on ``open``) are its data dependencies.

Each worker appends JSON lines to its own file in ``$_AQE_DEPS_DIR``; the run
merges them into the history afterwards (``_merge``). A worker that dies loses only
its tests' maps, and a test with no map is selected next time: never a miss.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import pytest

from . import _probes
from ._source import MODULE, content_hash, line_index

#: The directory the workers write their records to (set by ``aqe run``).
DIRECTORY_ENV = "_AQE_DEPS_DIR"
#: The project's root, which the map's paths are relative to.
ROOT_ENV = "_AQE_DEPS_ROOT"
_SKIP_PARTS = frozenset({".git", ".aqe", "__pycache__", ".pytest_cache", ".venv", ".tox"})
_CODE_SUFFIXES = (".py", ".pyc", ".pyo", ".so", ".pyd")
#: The recorder's own package: never probed (it runs between tests).
_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Recorder:
    def __init__(self, root: Path, directory: Path) -> None:
        self.root = str(root.resolve())
        self.directory = directory
        self.started = False
        self.disabled = False
        self.data: dict[str, Any] = {}
        self.current: str | None = None
        #: The current test's functions run, per project file.
        self.lines: dict[str, set[str]] = {}
        self.opened: set[str] = set()
        self.fixtures: dict[str, dict[str, set[str]]] = {}
        self.seen: dict[str, dict[int, str]] = {}
        self.out: Any = None
        self.probes: _probes.Probes | None = None
        self.swept = False
        #: Probe index -> (its file, relative; the functions its lines belong to).
        self._sites: dict[int, tuple[str | None, frozenset[str]]] = {}
        self._wanted_cache: dict[str, bool] = {}

    # -- tracing ---------------------------------------------------------------------

    def start(self, config: pytest.Config) -> None:
        if self.started or self.disabled:
            return
        if getattr(config, "workerinput", None) is None:
            return  # the coordinator: only workers record
        self.started = True
        if _probes.supported():
            self.probes = _probes.Probes(self._wanted)
            _probes.Finder(self.probes).install()  # what collection imports from now on
        elif not self._start_coverage():
            self.disabled = True  # coverage is measuring already (pytest-cov): no second tracer
            return
        sys.addaudithook(self._audit)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{os.getpid()}.jsonl"
        self.out = path.open("a", encoding="utf-8")

    def _start_coverage(self) -> bool:
        import coverage

        if coverage.Coverage.current() is not None:
            return False
        cov = coverage.Coverage(
            data_file=None,
            config_file=False,
            source=[self.root],
            omit=["*/site-packages/*", "*/.venv/*", "*/.tox/*", "*/.aqe/*"],
        )
        cov.start()
        self.cov = cov
        collector = cov._collector  # coverage.py's private collector: its file -> lines sets
        assert collector is not None
        self.data = collector.data
        return True

    def _wanted(self, filename: str) -> bool:
        """A file of the project's (not its virtualenv's, caches', or aqe's own)."""
        known = self._wanted_cache.get(filename)
        if known is None:
            known = (
                self._relative(filename) is not None
                and "site-packages" not in filename
                and not filename.startswith(_HERE)
            )
            self._wanted_cache[filename] = known
        return known

    def take(self) -> dict[str, set[str]]:
        """The functions run since the last call, per project file (relative path)."""
        taken: dict[str, set[str]] = {}
        if self.probes is not None:
            if not self.swept:  # once, before the first test: all that was imported
                self.swept = True  # before recording or by another loader (test modules)
                self.probes.sweep()
            for index in self.probes.take():
                site = self._sites.get(index)
                if site is None:
                    filename, code = self.probes.sites[index]
                    rel = self._relative(filename)
                    names = self._functions(rel, filename, _probes.lines_of(code)) if rel else []
                    site = self._sites[index] = (rel, frozenset(names))
                if site[0] is not None:
                    taken.setdefault(site[0], set()).update(site[1])
            return taken
        for filename, lines in list(self.data.items()):
            if lines:
                rel = self._relative(filename)
                if rel is not None:
                    taken[rel] = set(self._functions(rel, filename, lines))
                lines.clear()
        return taken

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "open" or self.current is None or not args:
            return
        path = args[0]
        if isinstance(path, int):
            return
        try:
            text = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError, OSError):
            return
        self.opened.add(text)

    # -- hooks -----------------------------------------------------------------------

    def pytest_collectstart(self, collector: pytest.Collector) -> None:
        self.start(collector.config)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, Any, None]:
        self.start(item.config)
        if not self.started or self.disabled:
            yield
            return
        self.take()  # between tests: imports, the last test's late teardown
        self.current = item.nodeid
        self.lines = {}
        self.opened = set()
        try:
            yield
        finally:
            _merge(self.lines, self.take())
            for name in getattr(item, "fixturenames", ()):
                _merge(self.lines, self.fixtures.get(name, {}))
            self.current = None
            self._write(item.nodeid)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Generator[None, Any, None]:
        if self.current is None or getattr(fixturedef, "scope", "function") == "function":
            yield
            return
        _merge(self.lines, self.take())
        try:
            yield
        finally:
            ran = self.take()
            _merge(self.fixtures.setdefault(fixturedef.argname, {}), ran)
            _merge(self.lines, ran)

    # -- output ----------------------------------------------------------------------

    def _relative(self, filename: str) -> str | None:
        if not filename.startswith(self.root + os.sep):
            return None
        rel = filename[len(self.root) + 1 :].replace(os.sep, "/")
        if _SKIP_PARTS.intersection(rel.split("/")):
            return None
        return rel

    def _functions(self, rel: str, filename: str, lines: Iterable[int]) -> list[str]:
        index = self.seen.get(rel)
        if index is None:
            try:
                source = Path(filename).read_bytes()
            except OSError:
                source = b""
            found = line_index(source)
            index = found if found is not None else {}
            self.seen[rel] = index
            # Fingerprints are the merge's job, once per file for the whole run.
            record = {"file": rel, "hash": content_hash(source), "shape": None}
            self.out.write(json.dumps(record, separators=(",", ":")) + "\n")
        return sorted({index.get(line, MODULE) for line in lines})

    def _write(self, nodeid: str) -> None:
        python = {rel: sorted(names) for rel, names in self.lines.items()}
        data = set()
        for opened in self.opened:
            rel = self._relative(opened)
            if rel is not None and not rel.endswith(_CODE_SUFFIXES) and os.path.isfile(opened):
                data.add(rel)
        record = {"t": nodeid, "py": python, "data": sorted(data)}
        self.out.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.out.flush()


def _merge(into: dict[str, set[str]], more: dict[str, set[str]]) -> None:
    for name, lines in more.items():
        into.setdefault(name, set()).update(lines)


def pytest_configure(config: pytest.Config) -> None:
    directory = os.environ.get(DIRECTORY_ENV)
    if directory:
        if not _probes.supported():
            import coverage  # noqa: F401  # once, here: forked workers inherit the module

        root = Path(os.environ.get(ROOT_ENV) or str(config.rootpath))
        config.pluginmanager.register(Recorder(root, Path(directory)), "aqe-deps-recorder")
