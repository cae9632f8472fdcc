"""The JSON run report: aqe's versioned, machine-readable contract for one run.

JUnit XML cannot carry worker placement, retries, phase timings or idle time, yet
agents and dashboards need them. This module writes everything a
:class:`~aqe._model.RunRecord` holds in a stable shape documented in
``docs/json-report.md``. Fields are only ever added within a ``version``; removing a
field or changing its meaning bumps :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aqe._exceptions import UsageError
from aqe._model import OUTCOMES, RunRecord, TestResult, tier_figures

__all__ = [
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "MergedShard",
    "ShardInfo",
    "atomic_write_bytes",
    "build_json_report",
    "write_json_report",
]

SCHEMA_NAME = "aqe-run-report"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """Which shard of ``aqe run --shard I/N`` a run was, and what its plan predicted;
    the JSON report carries it so ``aqe merge`` can join the shards' reports."""

    index: int
    count: int
    #: Tests in this shard, and its predicted seconds.
    tests: int
    predicted: float
    #: Every shard's predicted seconds and tests, in shard order.
    planned: tuple[float, ...]
    planned_tests: tuple[int, ...]
    #: Tests selected before the split (every shard together).
    total: int
    #: Hash of the whole assignment: every shard of one plan has the same.
    digest: str


#: A shard of a merged run (``aqe merge``): its plan, the seconds its tests took
#: (every attempt) and its run's wall-clock seconds.
MergedShard = tuple[ShardInfo, float | None, float | None]

#: Canonical phase order; phases pytest never ran are absent.
_PHASE_ORDER = ("setup", "call", "teardown")


def atomic_write_bytes(path: Path, data: bytes, what: str = "report") -> None:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half.

    The temporary file lives in the destination directory so ``os.replace`` is a
    rename on the same filesystem. Parent directories are created. The file gets the
    mode ``open()`` would give it (0666 less the umask), as pytest's reports do, not
    ``mkstemp``'s private 0600: CI often reads reports as another user.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot write {what} to {path}: {reason}") from exc


def _umask() -> int:
    """The process's umask; reading it means setting it, so it is put back at once."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="microseconds")


def _epoch_or_none(epoch: float) -> float | None:
    # TestResult uses 0.0 for "not recorded"; the report says so explicitly.
    return epoch if epoch > 0 else None


def _phases(phases: dict[str, float]) -> dict[str, float]:
    known = [name for name in _PHASE_ORDER if name in phases]
    extra = sorted(name for name in phases if name not in _PHASE_ORDER)
    return {name: phases[name] for name in (*known, *extra)}


def _test_entry(result: TestResult) -> dict[str, Any]:
    return {
        "nodeid": result.nodeid,
        "file": result.file,
        "line": result.line,
        "outcome": result.outcome,
        "duration": result.duration,
        "phases": _phases(result.phases),
        "worker": result.worker,
        "attempt": result.attempt,
        "tier": result.tier,
        "when": result.when,
        "error_type": result.error_type,
        "message": result.message,
        "traceback": result.traceback,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "log": result.log,
        "start": _epoch_or_none(result.start),
        "stop": _epoch_or_none(result.stop),
        "quarantined": result.quarantined,
        "properties": [[name, value] for name, value in result.properties],
        **({"markers": list(result.markers)} if result.markers else {}),
    }


def _run_entry(run: RunRecord) -> dict[str, Any]:
    duration = run.end - run.start if run.end is not None else None
    return {
        "run_id": run.run_id,
        "start": _iso(run.start),
        "start_epoch": run.start,
        "end": _iso(run.end),
        "end_epoch": run.end,
        "duration": duration,
        "root": run.root,
        "command": list(run.command),
        "workers": run.workers,
        "git_commit": run.git_commit,
        "git_dirty": run.git_dirty,
        "code_id": run.code_id,
        "exit_code": run.exit_code,
        "tail_idle": {str(worker): run.tail_idle[worker] for worker in sorted(run.tail_idle)},
    }


def _shard_entry(shard: ShardInfo, run: RunRecord) -> dict[str, Any]:
    entry: dict[str, Any] = asdict(shard)
    entry["planned"] = list(shard.planned)
    entry["planned_tests"] = list(shard.planned_tests)
    # Comparable with ``predicted``: the seconds its tests took, every attempt.
    entry["actual"] = round(sum(result.duration for result in run.results), 6)
    entry["wall"] = run.end - run.start if run.end is not None else None
    # What only the JUnit XML shows, so ``aqe merge`` writes the XML the run would have:
    # the run's junit_* options, and each attempt's record_xml_attribute and
    # record_testsuite_property pairs (by its position in ``tests``).
    entry["junit"] = asdict(run.junit)
    entry["junit_pairs"] = [
        [position, [list(p) for p in result.xml_attributes],
         [list(p) for p in result.suite_properties]]
        for position, result in enumerate(run.results)
        if result.xml_attributes or result.suite_properties
    ]  # fmt: skip
    return entry


def _merged_entry(shard: ShardInfo, actual: float | None, wall: float | None) -> dict[str, Any]:
    return {
        "index": shard.index,
        "count": shard.count,
        "tests": shard.tests,
        "predicted": shard.predicted,
        "actual": actual,
        "wall": wall,
        "digest": shard.digest,
    }


def build_json_report(
    run: RunRecord,
    shard: ShardInfo | None = None,
    shards: Sequence[MergedShard] = (),
) -> dict[str, Any]:
    """Return the report as plain JSON-able data, keys in documented order. ``shard``:
    the shard this run was; ``shards``: the shards (with their actual seconds) a
    merged run (``aqe merge``) was made of."""
    counts = run.counts()
    summary: dict[str, int] = {outcome: counts[outcome] for outcome in OUTCOMES}
    summary["total"] = len(run.results)
    final = run.final_counts()
    outcomes: dict[str, int] = {outcome: final[outcome] for outcome in OUTCOMES}
    outcomes["total"] = sum(final.values())
    return {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "run": _run_entry(run),
        "summary": summary,
        "outcomes": outcomes,
        "collected": {"tests": run.collected, "ran": run.ran},
        "tiers": tier_figures(run.results),
        "collection_errors": [
            {"location": location, "traceback": traceback}
            for location, traceback in run.collection_errors
        ],
        "tests": [_test_entry(result) for result in run.results],
        "shard": None if shard is None else _shard_entry(shard, run),
        "shards": [_merged_entry(*shard) for shard in shards],
        "deselected": [
            {"nodeid": nodeid, "reason": reason}
            for nodeid, reason in sorted(run.deselected.items())
        ],
    }


def write_json_report(
    run: RunRecord,
    path: Path,
    shard: ShardInfo | None = None,
    shards: Sequence[MergedShard] = (),
) -> None:
    """Write the JSON report for ``run`` to ``path`` atomically (UTF-8, indent 2)."""
    data = build_json_report(run, shard, shards)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    # Captured output may hold lone surrogates (undecodable bytes); never fail on them.
    atomic_write_bytes(path, text.encode("utf-8", errors="replace"), what="JSON report")


class JsonReporter:
    """``--json PATH``, as the ``json`` reporter (``aqe.reporters``)."""

    name = "json"

    def __init__(self) -> None:
        #: Set by the run control for ``aqe run --shard I/N``.
        self.shard: ShardInfo | None = None

    def write(self, run: RunRecord, destination: Path | None) -> None:
        if destination is None:
            raise ValueError("the json reporter needs a file to write")
        write_json_report(run, destination, self.shard)
