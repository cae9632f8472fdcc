"""After a recording run: the workers' records merged into the history's map.

Every attempt of a test (retries, the warm and cold tiers, other workers) adds to
its dependencies: a test depends on whatever any of its attempts ran or opened.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path

from .._exceptions import AqeError
from . import _changes, _mapstore
from ._mapstore import TestDeps
from ._source import content_hash, shape_of


def read_records(
    directory: Path,
) -> tuple[dict[str, dict[str, set[str]]], dict[str, set[str]], dict[str, str], dict[str, str]]:
    """(tests' Python deps, tests' data files, file hashes, shapes by hash) of a run."""
    python: dict[str, dict[str, set[str]]] = {}
    data: dict[str, set[str]] = {}
    hashes: dict[str, str] = {}
    shapes: dict[str, str] = {}
    for path in sorted(directory.glob("*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:  # a worker killed mid-line
                    continue
                if "file" in record:
                    hashes.setdefault(record["file"], record["hash"])
                    if record["shape"] is not None:
                        shapes[record["hash"]] = json.dumps(record["shape"], sort_keys=True)
                    continue
                test = python.setdefault(record["t"], {})
                for file, functions in record["py"].items():
                    test.setdefault(file, set()).update(functions)
                data.setdefault(record["t"], set()).update(record["data"])
    return python, data, hashes, shapes


def watched_hashes(root: Path) -> dict[str, str]:
    """Hashes of the files whose change widens a selection (configuration, lock
    files, conftests), as they are now."""
    try:
        files = _changes.project_files(root)
    except AqeError:
        return {}
    found = {}
    for relpath in files:
        if _changes.widening(relpath) is not None:
            with contextlib.suppress(OSError):
                found[relpath] = content_hash((root / relpath).read_bytes())
    return found


def store_map(store: object, run_id: str, root: Path, directory: Path) -> int:
    """Merge a run's records into the history; returns how many tests got a map."""
    try:
        python, data, hashes, shapes = read_records(directory)
        if python:  # file versions the history has fingerprinted already: not again
            shapes.update((digest, "") for digest in _mapstore.shapes(store, set(hashes.values())))
        for relpath, digest in hashes.items():  # fingerprints, once per file version
            if digest in shapes:
                continue
            with contextlib.suppress(OSError):
                source = (root / relpath).read_bytes()
                shape = shape_of(source) if content_hash(source) == digest else None
                if shape is not None:  # else edited since: no shape, any change counts
                    shapes[digest] = json.dumps(shape.fingerprints, sort_keys=True)
        shapes = {digest: text for digest, text in shapes.items() if text}
        tests = {}
        data_hashes: dict[str, str] = {}
        for nodeid, files in python.items():
            opened = {}
            for relpath in data.get(nodeid, ()):
                if relpath not in data_hashes:
                    try:
                        data_hashes[relpath] = content_hash((root / relpath).read_bytes())
                    except OSError:
                        data_hashes[relpath] = ""
                opened[relpath] = data_hashes[relpath]
            tests[nodeid] = TestDeps(
                {f: (hashes.get(f, ""), tuple(sorted(fs))) for f, fs in files.items()}, opened
            )
        if tests:
            _mapstore.save(store, run_id, time.time(), tests, shapes, watched_hashes(root))
        return len(tests)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
