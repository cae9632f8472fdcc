"""The HTML report: one self-contained file a CI user opens after the run.

Everything is inline (CSS, JavaScript, the data as JSON): a CI artifact must open
from disk with no network. Real suites have tens of thousands of tests, so the
data is columnar (one array per field, test ids split into a file table and the
rest) and the page draws only what is on screen: the summary, the failures and
the charts first, the test table a page at a time, a failure's attempts when it
is opened. Only attempts that did not pass keep their text, capped, so a green
run of 62,000 tests stays a few megabytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from importlib import resources
from pathlib import Path

from aqe._model import FAILING_OUTCOMES, OUTCOMES, RunRecord, TestResult, cap_text
from aqe._reporting.json_report import MergedShard, ShardInfo, atomic_write_bytes

__all__ = ["HtmlReporter", "TrendPoint", "build_data", "render", "trend_point", "write_html"]

TIERS = ("hot", "warm", "cold")
#: Text kept per attempt that did not pass, per stream (head and tail).
TEXT_CAP = 16 * 1024
#: Attempts that keep their text; past this only the message is kept (a run where
#: everything failed must not make a file nobody can open).
DETAILED_ATTEMPTS = 2000


@dataclass(frozen=True)
class TrendPoint:
    """One recent run, for the flaky trend: tests, failing and flaky among them."""

    run_id: str
    start: float
    tests: int
    failed: int
    flaky: int


def trend_point(run_id: str, start: float, finals: Sequence[str]) -> TrendPoint:
    """A run's point from each test's final outcome."""
    return TrendPoint(
        run_id,
        start,
        len(finals),
        sum(outcome in FAILING_OUTCOMES for outcome in finals),
        sum(outcome == "flaky" for outcome in finals),
    )


def _point_of(run: RunRecord) -> TrendPoint:
    return trend_point(run.run_id, run.start, [r.outcome for r in run.final().values()])


def build_data(
    run: RunRecord,
    trend: Sequence[TrendPoint] = (),
    *,
    from_history: bool = False,
    shards: Sequence[MergedShard] = (),
    shard_of: Mapping[str, int] | None = None,
) -> dict[str, object]:
    """The page's data: columnar, with times in milliseconds from the run's start.
    ``shards``: the shards (predicted, actual seconds) a merged run was made of;
    ``shard_of``: each test's shard, for the filter."""
    files: dict[str, int] = {}
    tests: dict[str, int] = {}
    test_rows: list[list[object]] = []
    columns: dict[str, list[int]] = {key: [] for key in ("t", "o", "w", "a", "r", "s", "d", "q")}
    details: dict[str, list[object]] = {}
    markers: dict[str, int] = {}
    #: Each marked test's markers (indexes into ``markers``); most tests have none.
    test_markers: dict[str, list[int]] = {}
    outcome_index = {name: i for i, name in enumerate(OUTCOMES)}
    for index, result in enumerate(run.results):
        test = tests.get(result.nodeid)
        if test is None:
            test = tests[result.nodeid] = len(test_rows)
            file = files.setdefault(result.file, len(files))
            row: list[object] = [file, _name_in_file(result), result.line]
            if shard_of is not None:  # a shard's or a merged run: each test's shard
                row.append(shard_of.get(result.nodeid, 0))
            test_rows.append(row)
        if result.markers and str(test) not in test_markers:
            test_markers[str(test)] = [markers.setdefault(m, len(markers)) for m in result.markers]
        columns["t"].append(test)
        columns["o"].append(outcome_index[result.outcome])
        columns["w"].append(result.worker)
        columns["a"].append(result.attempt)
        columns["r"].append(TIERS.index(result.tier) if result.tier in TIERS else 0)
        columns["s"].append(round((result.start - run.start) * 1000) if result.start > 0 else -1)
        columns["d"].append(round(result.duration * 1000))
        columns["q"].append(int(result.quarantined))
        if result.outcome != "passed" and (result.message or result.traceback):
            details[str(index)] = _detail(result, full=len(details) < DETAILED_ATTEMPTS)
    points = [point for point in trend if point.run_id != run.run_id]
    points.append(_point_of(run))
    return {
        "version": 1,
        "run": {
            "id": run.run_id,
            "start": run.start,
            "end": run.end,
            "workers": run.workers,
            "exit_code": run.exit_code,
            "commit": run.git_commit,
            "dirty": run.git_dirty,
            "command": run.command,
            "root": run.root,
            "collected": run.collected,
            "from_history": from_history,
            "tail_idle": {str(w): round(s, 3) for w, s in sorted(run.tail_idle.items())},
        },
        "outcomes": list(OUTCOMES),
        "tiers": list(TIERS),
        "files": list(files),
        "tests": test_rows,
        "markers": list(markers),
        "test_markers": test_markers,
        "attempts": columns,
        "details": details,
        "collection_errors": [
            [location, cap_text(text, TEXT_CAP)] for location, text in run.collection_errors
        ],
        "trend": [[p.run_id, p.start, p.tests, p.failed, p.flaky] for p in points[-50:]],
        "shards": [
            [info.index, info.count, info.tests, info.predicted, actual, wall]
            for info, actual, wall in shards
        ],
    }


def _name_in_file(result: TestResult) -> str:
    prefix = result.file + "::"
    return result.nodeid[len(prefix) :] if result.nodeid.startswith(prefix) else result.nodeid


def _detail(result: TestResult, *, full: bool) -> list[object]:
    texts = (result.traceback, result.stdout, result.stderr, result.log) if full else ()
    return [
        result.when,
        result.error_type,
        cap_text(result.message or "", TEXT_CAP),
        *(cap_text(text or "", TEXT_CAP) for text in texts),
    ]


def _asset(name: str) -> str:
    return (
        resources.files("aqe._reporting").joinpath("html_assets").joinpath(name).read_text("utf-8")
    )


def render(data: dict[str, object]) -> str:
    """The whole page. The JSON is inert text to the HTML parser: every ``<`` is
    escaped, so no test id or output can close the script element."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    payload = payload.replace("<", "\\u003c")
    run = data["run"]
    assert isinstance(run, dict)
    return (
        _asset("report.html")
        .replace("/*AQE_CSS*/", _asset("report.css"))
        .replace("/*AQE_JS*/", _asset("report.js"))
        .replace("AQE_TITLE", escape(f"aqe run {run['id']}"))
        .replace("AQE_DATA", payload)
    )


def write_html(
    run: RunRecord,
    path: Path,
    trend: Sequence[TrendPoint] = (),
    *,
    from_history: bool = False,
    shards: Sequence[MergedShard] = (),
    shard_of: Mapping[str, int] | None = None,
) -> None:
    data = build_data(run, trend, from_history=from_history, shards=shards, shard_of=shard_of)
    page = render(data)
    # Captured output may hold lone surrogates (undecodable bytes); never fail on them.
    atomic_write_bytes(path, page.encode("utf-8", errors="replace"), what="HTML report")


class HtmlReporter:
    """``--html PATH``, as the ``html`` reporter (``aqe.reporters``). The run
    control hands it the recent runs (:attr:`trend`) when there is a history."""

    name = "html"

    def __init__(self) -> None:
        self.trend: tuple[TrendPoint, ...] = ()
        #: Set by the run control for ``aqe run --shard I/N``.
        self.shard: ShardInfo | None = None

    def write(self, run: RunRecord, destination: Path | None) -> None:
        if destination is None:
            raise ValueError("the html reporter needs a file to write")
        if self.shard is None:
            write_html(run, destination, self.trend)
            return
        wall = run.end - run.start if run.end is not None else None
        actual = sum(result.duration for result in run.results)
        index = self.shard.index
        write_html(run, destination, self.trend, shards=[(self.shard, actual, wall)],
                   shard_of={result.nodeid: index for result in run.results})  # fmt: skip
