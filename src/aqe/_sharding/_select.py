"""A shard's file-level plan as its workers apply it (``_hooks``, given with ``-p``).

The coordinator plans (``_pytest.ShardSelector``) and keeps only its shard's file
nodes; the workers collect those files. The plugin, loaded in every process of a
shard run, is told by ``_AQE_SHARD_PLAN`` (a JSON file the coordinator writes after
planning) what the workers need: a spawned worker runs pytest's collection again, so
it ignores the files of the other shards as the coordinator dropped them (the file
lists must match, position for position); and a file the plan cut between shards
keeps only this shard's tests when a worker collects it (the others are deselected,
as ``-k`` deselects), assigned by ``_files.assign`` from the file's tests alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._files import assign

#: The JSON file with this shard's worker plan (set by the coordinator).
PLAN_ENV = "_AQE_SHARD_PLAN"


@dataclass(frozen=True, slots=True)
class WorkerPlan:
    #: The coordinator's pid: it has applied the plan itself.
    pid: int
    index: int
    #: Paths of the file nodes the coordinator dropped (other shards' files), in
    #: pytest's order.
    dropped: tuple[str, ...]
    #: For each file cut between shards that this shard collects: its planned
    #: tests' shards and the file's shards.
    cut: Mapping[str, tuple[Mapping[str, int], tuple[int, ...]]]

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "index": self.index,
                "dropped": list(self.dropped),
                "cut": {
                    path: {"planned": dict(planned), "shards": list(shards)}
                    for path, (planned, shards) in sorted(self.cut.items())
                },
            }
        )

    @classmethod
    def from_json(cls, text: str) -> WorkerPlan:
        data = json.loads(text)
        return cls(
            pid=int(data["pid"]),
            index=int(data["index"]),
            dropped=tuple(str(p) for p in data["dropped"]),
            cut={
                str(path): (
                    {str(k): int(v) for k, v in entry["planned"].items()},
                    tuple(int(s) for s in entry["shards"]),
                )
                for path, entry in data["cut"].items()
            },
        )


def import_what_they_import(
    files: Sequence[Path], dropped: Sequence[str], patterns: Sequence[str]
) -> None:
    """Make the module-level imports of the ``dropped`` test files (of ``files``, the
    whole suite in pytest's order): pytest's process has made them before any test
    runs, and suites lean on it (click's ``test_echo_via_pager`` patches
    ``click._termui_impl``, which another test file imports). The engine does the
    same for the files a worker does not collect (``_engine._preimport``); a shard
    does it for the files no worker of it collects."""
    from .._engine._preimport import imports_by_file, preimport

    wanted = set(dropped)
    found = imports_by_file(list(files), patterns)
    preimport(entry for path, entries in zip(files, found, strict=True)
              if str(path) in wanted for entry in entries)  # fmt: skip


_loaded: dict[str, WorkerPlan | None] = {}


def current() -> WorkerPlan | None:
    """The plan the coordinator wrote for this run's workers, if any."""
    path = os.environ.get(PLAN_ENV)
    if not path:
        return None
    if path not in _loaded:
        try:
            _loaded[path] = WorkerPlan.from_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            _loaded[path] = None
    return _loaded[path]


def keep_mine(plan: WorkerPlan, items: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """``items`` split into this shard's and the other shards' (tests of cut files)."""
    by_file: dict[str, list[str]] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path in plan.cut:
            by_file.setdefault(path, []).append(item.nodeid)
    owner: dict[str, int] = {}
    for path, ids in by_file.items():
        planned, shards = plan.cut[path]
        owner.update(assign(ids, planned, shards))
    keep: list[Any] = []
    drop: list[Any] = []
    for item in items:
        (drop if owner.get(item.nodeid, plan.index) != plan.index else keep).append(item)
    return keep, drop
