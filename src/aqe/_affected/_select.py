"""Which tests a change affects, and why: ``--changed`` (the import graph) and
``--affected`` (the recorded dependency map, widened where the map cannot see).

Conservative by design: when in doubt a test runs. What widens: a changed conftest
(the tests under it), a changed configuration or lock file (every test), module-level
code (it runs at import, before any test: every test whose module imports the file,
directly or not, plus every test that ran code in it), a changed function no test
ran or that module-level code names (it may run at import), a changed data file no
test was seen opening in a directory holding tests (collection may read it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import _changes
from ._graph import ImportGraph, python_sources
from ._mapstore import DepMap
from ._source import MODULE, changed_functions, content_hash, shape_of

_TEST_NAMES = ("test_*.py", "*_test.py")


@dataclass
class Choice:
    """A selection with its reasons: what the filter plugin applies and ``--explain`` prints."""

    mode: str
    ref: str
    #: Every test runs, for this reason.
    everything: str | None = None
    #: Test files whose every test runs, with the reason.
    files: dict[str, str] = field(default_factory=dict)
    #: Single tests that run, with the reason.
    tests: dict[str, str] = field(default_factory=dict)
    #: Known tests left out, with the reason.
    left_out: dict[str, str] = field(default_factory=dict)
    #: Test files not collected at all (every known test in them is left out).
    pruned: set[str] = field(default_factory=set)
    #: --affected: tests with a map (the others run: "no dependency map yet").
    mapped: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def reason(self, nodeid: str) -> str | None:
        """Why a test runs, or None when it is left out."""
        if self.everything is not None:
            return self.everything
        if nodeid in self.tests:
            return self.tests[nodeid]
        file = nodeid.split("::", 1)[0]
        if file in self.files:
            return self.files[file]
        if self.mode == "affected" and nodeid not in self.mapped:
            return "no dependency map yet"
        return None

    def to_json(self) -> str:
        return json.dumps(
            {
                "mode": self.mode,
                "ref": self.ref,
                "everything": self.everything,
                "files": self.files,
                "tests": self.tests,
                "left_out": self.left_out,
                "pruned": sorted(self.pruned),
                "mapped": sorted(self.mapped),
                "notes": self.notes,
            }
        )

    @staticmethod
    def from_json(text: str) -> Choice:
        raw = json.loads(text)
        return Choice(
            raw["mode"],
            raw["ref"],
            raw["everything"],
            raw["files"],
            raw["tests"],
            raw["left_out"],
            set(raw["pruned"]),
            set(raw["mapped"]),
            raw["notes"],
        )

    def nothing_to_run(self) -> bool:
        return self.everything is None and not self.files and not self.tests


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _looks_like_test(relpath: str) -> bool:
    name = PurePosixPath(relpath).name
    return any(PurePosixPath(name).match(pattern) for pattern in _TEST_NAMES)


def _widen(choice: Choice, changed: Iterable[str], test_files: set[str]) -> None:
    for path in changed:
        found = _changes.widening(path)
        if found is None:
            continue
        if not found.scope:
            choice.everything = choice.everything or f"{found.reason}: {path}"
            continue
        for test_file in test_files:
            if _changes.in_scope(test_file, found.scope):
                choice.files.setdefault(test_file, f"{found.reason}: {path}")


def _data_dirs(choice: Choice, changed: Iterable[str], test_files: set[str], why: str) -> None:
    """A changed non-Python file in a directory that holds tests may be read while
    collecting (parameters from a file): those directories' tests run."""
    for path in changed:
        if path.endswith(".py") or _changes.widening(path) is not None:
            continue
        directory = str(PurePosixPath(path).parent)
        if directory == ".":
            continue
        for test_file in test_files:
            if _changes.in_scope(test_file, directory):
                choice.files.setdefault(test_file, f"{why}: {path}")


def changed(root: Path, ref: str, known: Iterable[str] = ()) -> Choice:
    """``--changed``: tests in changed test files and in test modules that import a
    changed module, directly or not. ``known``: the tests the history knows, reported
    as left out when their file is not collected."""
    choice = Choice("changed", ref)
    files = _changes.project_files(root)
    diff = _changes.changed_files(root, ref)
    known = list(known)
    test_files = {f for f in files if _looks_like_test(f)} | {_file_of(n) for n in known}
    _widen(choice, diff, test_files)
    _data_dirs(choice, diff, test_files, "data file changed")
    python = [path for path in diff if path.endswith(".py")]
    if python:
        graph = ImportGraph(python_sources(root, [f for f in files if f.endswith(".py")]))
        for path, cause in graph.dependents(python).items():
            if path in test_files:
                why = "test file changed" if path == cause else f"imports {cause} (changed)"
                choice.files.setdefault(path, why)
    if choice.everything is None:
        choice.pruned = {f for f in test_files if f not in choice.files}
        for nodeid in known:
            if _file_of(nodeid) in choice.pruned:
                choice.left_out[nodeid] = "not in or importing a changed file"
    return choice


def _read(root: Path, relpath: str) -> bytes | None:
    try:
        return (root / relpath).read_bytes()
    except OSError:
        return None


def affected(
    root: Path,
    ref: str,
    deps: DepMap,
    shapes_of: Mapping[str, dict[str, str]] | None = None,
    load_shapes: object = None,
    known: Iterable[str] = (),
) -> Choice:
    """``--affected``: tests whose recorded dependencies changed since they were
    recorded or since ``ref``, new and changed test files, tests with no map."""
    choice = Choice("affected", ref, mapped=set(deps.tests))
    if not deps.tests:
        choice.everything = "no dependency map yet (aqe run --record-deps records one)"
        return choice
    diff = set(_changes.changed_files(root, ref))
    known_files = {_file_of(n) for n in known} | {_file_of(n) for n in deps.tests}
    test_files = known_files | {f for f in diff if _looks_like_test(f)}
    # Widening files: git's changes since ref, and any change since the map was recorded.
    moved = {p for p, h in deps.watched.items() if content_hash(_read(root, p) or b"") != h}
    _widen(choice, sorted(diff | moved), test_files)
    if choice.everything is not None:
        return choice
    # Current content of every file the map names.
    current: dict[str, str] = {}
    sources: dict[str, bytes | None] = {}
    for test in deps.tests.values():
        for path in (*test.python, *test.data):
            if path not in current:
                data = _read(root, path)
                sources[path] = data
                current[path] = "" if data is None else content_hash(data)
    # Python files changed: against each recorded version and against ref.
    wanted: dict[str, set[str]] = {}
    for test in deps.tests.values():
        for path, (digest, _) in test.python.items():
            if digest != current[path] or path in diff:
                wanted.setdefault(path, set()).add(digest)
    recorded_shapes = dict(shapes_of or {})
    if callable(load_shapes):
        missing = {d for ds in wanted.values() for d in ds} - recorded_shapes.keys()
        if missing:
            recorded_shapes.update(load_shapes(missing))
    edits: dict[tuple[str, str], frozenset[str]] = {}
    run_anywhere: dict[str, set[str]] = {}
    for test in deps.tests.values():
        for path, (_, functions) in test.python.items():
            if path in wanted:
                run_anywhere.setdefault(path, set()).update(functions)
    for path, digests in wanted.items():
        data = sources.get(path)
        now = shape_of(data) if data is not None else None
        at_ref: frozenset[str] = frozenset()
        if path in diff:
            old = _changes.file_at(root, ref, path)
            before = shape_of(old) if old is not None else None
            at_ref = _diff(before, now)
        for digest in digests:
            if digest == current[path]:
                edits[(path, digest)] = at_ref
                continue
            fingerprints = recorded_shapes.get(digest)
            before_shape = None if fingerprints is None else fingerprints
            edit = (
                frozenset({MODULE})
                if before_shape is None or now is None
                else changed_functions(before_shape, now.fingerprints)
            )
            edits[(path, digest)] = edit | at_ref
    # Functions that may run at import: no test ran them, or module-level code names them.
    changed_any = {f for (path, _), fs in edits.items() for f in fs if f != MODULE}
    import_names: set[str] = set()
    if changed_any:
        for data in python_sources(root, _changes.project_files(root)).values():
            found = shape_of(data)
            if found is not None:
                import_names |= found.module_names
    module_level: dict[str, str] = {}
    for (path, _), edited in edits.items():
        for function in sorted(edited):
            if function == MODULE:
                module_level.setdefault(path, f"module-level code of {path} changed")
            elif function not in run_anywhere.get(path, set()):
                module_level.setdefault(path, f"{path}::{function} changed (run by no test)")
            elif function.rsplit(".", 1)[-1].split("@")[0] in import_names:
                module_level.setdefault(
                    path, f"{path}::{function} changed (named in import-time code)"
                )
    # New and changed test files run whole.
    for path in sorted(diff & test_files):
        choice.files[path] = "new test file" if path not in known_files else "test file changed"
    for nodeid, test in deps.tests.items():
        file = _file_of(nodeid)
        digest = test.python.get(file, ("", ()))[0]
        if file in test.python and digest != current.get(file):
            choice.files.setdefault(file, "test file changed")
            continue
        reason = _test_reason(test.python, test.data, edits, module_level, current)
        if reason is not None:
            choice.tests[nodeid] = reason
    # Module-level changes reach every test module that imports the file.
    if module_level:
        files = _changes.project_files(root)
        graph = ImportGraph(python_sources(root, [f for f in files if f.endswith(".py")]))
        for path, cause in graph.dependents(module_level).items():
            if path in test_files:
                choice.files.setdefault(path, f"imports {cause}: {module_level[cause]}")
    opened = {p for test in deps.tests.values() for p in test.data}
    _data_dirs(choice, sorted(p for p in diff if p not in opened), test_files, "data file changed")
    for nodeid in deps.tests:
        if choice.reason(nodeid) is None:
            choice.left_out[nodeid] = "no recorded dependency changed"
    unmapped_files = {_file_of(n) for n in known if n not in deps.tests}
    choice.pruned = (
        {_file_of(n) for n in choice.left_out}
        - {_file_of(n) for n in choice.tests}
        - set(choice.files)
        - unmapped_files
    )
    return choice


def _diff(before: object, now: object) -> frozenset[str]:
    from ._source import Shape

    if not isinstance(before, Shape) or not isinstance(now, Shape):
        return frozenset({MODULE})
    return changed_functions(before.fingerprints, now.fingerprints)


def _test_reason(
    python: Mapping[str, tuple[str, tuple[str, ...]]],
    data: Mapping[str, str],
    edits: Mapping[tuple[str, str], frozenset[str]],
    module_level: Mapping[str, str],
    current: Mapping[str, str],
) -> str | None:
    for path, (digest, functions) in sorted(python.items()):
        if path in module_level:
            return module_level[path]
        edit = edits.get((path, digest))
        if edit:
            hit = sorted(edit.intersection(functions))
            if hit:
                return f"{path}::{hit[0]} changed"
    for path, digest in sorted(data.items()):
        if current.get(path) != digest:
            return f"data file {path} changed"
    return None
