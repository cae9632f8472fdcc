"""``aqe merge``: N shards' JSON reports joined into one run.

A shard's output is its JSON report (``aqe run --shard I/N --json PATH``): it holds
every attempt with what the JUnit XML, HTML report and history need, the commit, and
the shard with its predicted and actual seconds. Every input is read and checked
before anything is written: one commit, one N, each shard once and all of them, no
test in two shards. A shard's workers are numbered after the previous shard's, so
the merged run has one lane per worker of every job.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .._exceptions import UsageError
from .._model import OUTCOMES, JunitOptions, RunRecord, TestResult
from .._reporting.json_report import SCHEMA_NAME, SCHEMA_VERSION, ShardInfo


@dataclass(frozen=True, slots=True)
class ShardOutput:
    """One shard's JSON report, read back."""

    path: Path
    run: RunRecord
    shard: ShardInfo
    #: Seconds its tests took (every attempt), and its run's wall-clock seconds.
    actual: float | None
    wall: float | None


@dataclass(frozen=True, slots=True)
class Merged:
    run: RunRecord
    shards: tuple[ShardOutput, ...]
    #: Each test's shard (1-based), for the HTML report's filter.
    shard_of: dict[str, int]


def read_output(path: Path) -> ShardOutput:
    """A shard's JSON report; anything else is one usage error naming the file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read shard output {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"shard output {path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_NAME:
        raise UsageError(f"{path} is not an aqe JSON report (aqe run --json)")
    if data.get("version") != SCHEMA_VERSION:
        raise UsageError(f"{path} is an aqe JSON report of version {data.get('version')!r}, "
                         f"not {SCHEMA_VERSION}")  # fmt: skip
    shard = data.get("shard")
    if not isinstance(shard, dict):
        raise UsageError(f"{path} is no shard's report: run aqe run --shard I/N --json PATH")
    try:
        info = ShardInfo(
            index=int(shard["index"]),
            count=int(shard["count"]),
            tests=int(shard["tests"]),
            predicted=float(shard["predicted"]),
            planned=tuple(float(x) for x in shard["planned"]),
            planned_tests=tuple(int(x) for x in shard["planned_tests"]),
            total=int(shard["total"]),
            digest=str(shard["digest"]),
        )
        actual, wall = shard.get("actual"), shard.get("wall")
        run = _run(data, shard)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"shard output {path} is damaged: {type(exc).__name__}: {exc}") from None
    return ShardOutput(
        Path(path), run, info,
        None if actual is None else float(actual), None if wall is None else float(wall),
    )  # fmt: skip


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(text)) for name, text in value or ())


def _result(entry: dict[str, Any]) -> TestResult:
    outcome = entry["outcome"]
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    return TestResult(
        nodeid=str(entry["nodeid"]),
        file=str(entry["file"]),
        line=entry.get("line"),
        outcome=outcome,
        phases={str(k): float(v) for k, v in entry.get("phases", {}).items()},
        worker=int(entry["worker"]),
        attempt=int(entry.get("attempt", 1)),
        when=entry.get("when"),
        error_type=entry.get("error_type"),
        message=entry.get("message"),
        traceback=entry.get("traceback"),
        stdout=entry.get("stdout") or "",
        stderr=entry.get("stderr") or "",
        log=entry.get("log") or "",
        start=float(entry.get("start") or 0.0),
        stop=float(entry.get("stop") or 0.0),
        tier=str(entry.get("tier") or "hot"),
        quarantined=bool(entry.get("quarantined")),
        properties=_pairs(entry.get("properties")),
        markers=tuple(str(name) for name in entry.get("markers") or ()),
    )


def _run(data: dict[str, Any], shard: dict[str, Any]) -> RunRecord:
    meta = data["run"]
    junit = shard.get("junit") or {}
    results = [_result(entry) for entry in data.get("tests", [])]
    for position, attributes, properties in shard.get("junit_pairs") or ():
        results[position] = replace(
            results[position],
            xml_attributes=_pairs(attributes),
            suite_properties=_pairs(properties),
        )
    known = {f.name for f in fields(JunitOptions)}
    collected = data.get("collected") or {}
    return RunRecord(
        run_id=str(meta["run_id"]),
        start=float(meta["start_epoch"]),
        command=[str(word) for word in meta.get("command", [])],
        root=str(meta.get("root", "")),
        workers=int(meta.get("workers", 1)),
        end=None if meta.get("end_epoch") is None else float(meta["end_epoch"]),
        git_commit=meta.get("git_commit"),
        git_dirty=meta.get("git_dirty"),
        code_id=meta.get("code_id"),
        exit_code=meta.get("exit_code"),
        results=results,
        tail_idle={int(w): float(s) for w, s in (meta.get("tail_idle") or {}).items()},
        collection_errors=[
            (str(e["location"]), str(e["traceback"])) for e in data.get("collection_errors", [])
        ],
        collected=collected.get("tests"),
        ran=collected.get("ran"),
        junit=JunitOptions(**{k: v for k, v in junit.items() if k in known}),
    )


def check(outputs: Sequence[ShardOutput]) -> None:
    """Refuse outputs that are not one plan's shards, each once, all of them. Their
    commits must be the same; not their trees (``code_id``): a job's own reports and
    caches change its tree, and outside git that is all there is to compare."""
    if not outputs:
        raise UsageError("aqe merge needs the shards' JSON reports")
    first = outputs[0]
    for other in outputs[1:]:
        if other.run.git_commit != first.run.git_commit:
            raise UsageError(
                f"{first.path} ran {_code(first.run)} but {other.path} ran {_code(other.run)}: "
                "shard outputs of different commits"
            )
        if other.shard.count != first.shard.count:
            raise UsageError(
                f"{first.path} is shard {first.shard.index}/{first.shard.count} but "
                f"{other.path} is shard {other.shard.index}/{other.shard.count}"
            )
        if other.shard.digest != first.shard.digest:
            # Different plans can leave a test in no shard, which no overlap check sees.
            raise UsageError(
                f"{first.path} ran plan {first.shard.digest} but {other.path} ran plan "
                f"{other.shard.digest}: the shards planned differently (give every shard "
                "job the same history: one 'aqe history export', imported by each)"
            )
    seen: dict[int, Path] = {}
    for output in outputs:
        if output.shard.index in seen:
            raise UsageError(
                f"{seen[output.shard.index]} and {output.path} are both shard "
                f"{output.shard.index}/{output.shard.count}"
            )
        seen[output.shard.index] = output.path
    missing = [i for i in range(1, first.shard.count + 1) if i not in seen]
    if missing:
        names = ", ".join(f"{i}/{first.shard.count}" for i in missing)
        raise UsageError(f"shard {names} missing: give every shard's JSON report")
    owner: dict[str, ShardOutput] = {}
    for output in outputs:
        for result in output.run.results:
            if result.when == "collect":
                continue  # a module skipped at collection: every shard collects it
            before = owner.setdefault(result.nodeid, output)
            if before is not output:
                raise UsageError(
                    f"{result.nodeid} ran in {before.path} (shard {before.shard.index}) and in "
                    f"{output.path} (shard {output.shard.index}): overlapping shards (their "
                    "plans differ: were their histories the same?)"
                )


def _code(run: RunRecord) -> str:
    return f"commit {run.git_commit[:12]}" if run.git_commit else "outside git"


def merge(outputs: Sequence[ShardOutput], command: Sequence[str] = ()) -> Merged:
    """One run of all the shards (checked first: see :func:`check`)."""
    check(outputs)
    ordered = sorted(outputs, key=lambda output: output.shard.index)
    first = ordered[0].run
    results: list[TestResult] = []
    shard_of: dict[str, int] = {}
    tail_idle: dict[int, float] = {}
    errors: dict[str, str] = {}
    skipped_at_collection: set[str] = set()
    offset = 0
    for output in ordered:
        run = output.run
        for result in run.results:
            if result.when == "collect":
                if result.nodeid in skipped_at_collection:
                    continue
                skipped_at_collection.add(result.nodeid)
            worker = result.worker + offset if result.worker >= 0 else result.worker
            results.append(_renumbered(result, worker))
            shard_of.setdefault(result.nodeid, output.shard.index)
        for worker, seconds in run.tail_idle.items():
            tail_idle[worker + offset] = seconds
        for location, text in run.collection_errors:
            errors.setdefault(location, text)
        offset += max(run.workers, 1)
    ends = [output.run.end for output in ordered if output.run.end is not None]
    merged = RunRecord(
        run_id=uuid.uuid4().hex[:12],
        start=min(output.run.start for output in ordered),
        command=["aqe", "merge", *command],
        root=first.root,
        workers=offset,
        end=max(ends) if ends else None,
        git_commit=first.git_commit,
        git_dirty=any(bool(output.run.git_dirty) for output in ordered),
        code_id=first.code_id,
        exit_code=merged_exit([output.run.exit_code for output in ordered]),
        results=results,
        tail_idle=tail_idle,
        collection_errors=list(errors.items()),
        collected=_sum([output.run.collected for output in ordered]),
        ran=_sum([output.run.ran for output in ordered]),
        junit=first.junit,
    )
    return Merged(merged, tuple(ordered), shard_of)


def _renumbered(result: TestResult, worker: int) -> TestResult:
    return result if worker == result.worker else replace(result, worker=worker)


def _sum(values: Sequence[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(v for v in values if v is not None)


def merged_exit(codes: Sequence[int | None]) -> int:
    """The suite's exit code from its shards': an error (2, 3, 4) wins, then failures
    (1); an empty shard (0) is no failure."""
    known = [code for code in codes if code is not None]
    if len(known) < len(codes):
        return 3
    for worst in (3, 2, 4, 1):
        if worst in known:
            return worst
    return 5 if known and all(code == 5 for code in known) else 0
