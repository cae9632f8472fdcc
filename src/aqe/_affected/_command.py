"""``aqe run --affected/--changed/--explain/--record-deps``: what the command line
asks of this package, before the run (a selection, the plugins that apply it and
record) and after it (the records merged into the history's map)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .._exceptions import UsageError
from . import _changes
from ._select import Choice

#: How many lines ``--explain`` prints per group before it summarises the rest.
EXPLAIN_LIMIT = 2000


@dataclass
class Prepared:
    """What ``aqe run`` adds for selection and recording."""

    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    choice: Choice | None = None
    #: Nothing to run: the exit code to end with at once.
    done: int | None = None
    deps_dir: Path | None = None
    choice_file: Path | None = None


def split_ref(value: str, paths: tuple[str, ...], root: Path) -> tuple[str | None, tuple[str, ...]]:
    """``--affected PATH``: click took a path for the optional REF; give it back."""
    if value and _changes.revision(root, value) is None and Path(value.split("::")[0]).exists():
        return None, (value, *paths)
    return value or None, paths


def default_ref(root: Path, store: object | None) -> str:
    """The last run's commit, else HEAD."""
    recent = getattr(store, "recent_runs", None)
    if recent is not None:
        for row in recent(5):
            if row.git_commit and _changes.revision(root, row.git_commit):
                return str(row.git_commit)
    return "HEAD"


def prepare(
    root: Path,
    run_id: str,
    store: object | None,
    *,
    mode: str | None,
    ref: str | None,
    record: bool,
    explain: bool,
) -> Prepared:
    prepared = Prepared()
    if mode is not None:
        from . import _mapstore, _select

        _changes.toplevel(root)
        chosen_ref = ref or default_ref(root, store)
        if _changes.revision(root, chosen_ref) is None:
            raise UsageError(f"--{mode} {chosen_ref}: not a git revision in {root}")
        known = store.known_nodeids() if hasattr(store, "known_nodeids") else set()
        if mode == "changed":
            choice = _select.changed(root, chosen_ref, known)
        else:
            if store is None:
                raise UsageError("--affected needs the history (it holds the dependency map)")
            deps = _mapstore.load(store)
            choice = _select.affected(
                root,
                chosen_ref,
                deps,
                load_shapes=lambda hashes: _mapstore.shapes(store, set(hashes)),
                known=known,
            )
        prepared.choice = choice
        _tell(choice, explain)
        if choice.nothing_to_run() and (mode == "changed" or set(known) <= choice.mapped):
            left = len(choice.left_out) or len(known)
            print(
                f"aqe: --{mode}: nothing to run; {left} tests deselected (unaffected since "
                f"{chosen_ref[:12]})"
            )
            prepared.done = 0
            return prepared
        directory = root / ".aqe"
        directory.mkdir(exist_ok=True)
        prepared.choice_file = directory / f"selection-{run_id}.json"
        prepared.choice_file.write_text(choice.to_json(), encoding="utf-8")
        prepared.env["_AQE_SELECTION"] = str(prepared.choice_file)
        prepared.env["_AQE_SELECTION_ROOT"] = str(root)
        prepared.args += ["-p", "aqe._affected._filter"]
    if record or mode == "affected":
        prepared.deps_dir = root / ".aqe" / "deps" / run_id
        prepared.env["_AQE_DEPS_DIR"] = str(prepared.deps_dir)
        prepared.env["_AQE_DEPS_ROOT"] = str(root)
        prepared.args += ["-p", "aqe._affected._recorder"]
        from ._probes import supported

        if not supported() and importlib.util.find_spec("coverage") is None:
            raise UsageError(
                "--record-deps and --affected need coverage.py: "
                "pip install 'coverage>=7.6' (or aqe's affected extra)"
            )
    return prepared


def _tell(choice: Choice, explain: bool) -> None:
    """One line on what was selected and why; every test's reason with --explain."""
    if choice.everything is not None:
        print(f"aqe: --{choice.mode}: every test runs: {choice.everything}")
    else:
        print(
            f"aqe: --{choice.mode} since {choice.ref[:12]}: {len(choice.files)} test files and "
            f"{len(choice.tests)} tests selected, {len(choice.left_out)} known tests left out"
            + ("" if choice.mode == "changed" else "; tests with no map run too")
        )
    if not explain:
        return
    for title, rows in (
        ("file", choice.files),
        ("test", choice.tests),
        ("left out", choice.left_out),
    ):
        for shown, (name, why) in enumerate(sorted(rows.items())):
            if shown == EXPLAIN_LIMIT:
                print(f"aqe: ... {len(rows) - shown} more ({title})")
                break
            print(f"aqe: {title}: {name}: {why}")
    sys.stdout.flush()


def finish(root: Path, run_id: str, prepared: Prepared, store: object | None) -> None:
    """After the run: the map recorded (if any) into the history; temporary files gone."""
    if prepared.choice_file is not None:
        with contextlib.suppress(OSError):
            prepared.choice_file.unlink()
    for name in prepared.env:
        os.environ.pop(name, None)
    if prepared.deps_dir is None:
        return
    if store is None or not prepared.deps_dir.exists():
        shutil.rmtree(prepared.deps_dir, ignore_errors=True)
        return
    from ._merge import store_map

    store_map(store, run_id, root, prepared.deps_dir)
