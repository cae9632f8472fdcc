"""One run over several suites of a repository: a Python and a JavaScript one, say.

:class:`MixedAdapter` is an adapter made of others, each a :class:`Part` (an adapter
and the directory it runs in), so the runner sees one adapter and makes one history
run, one summary, one set of reports and one exit code. The parts run one after the
other, pytest's first: its engine forks workers, which must happen before another
adapter starts threads. A nested part's ids (and files) carry its directory, so ids
stay distinct and relative to the run's root, as pytest's are; ids already differ
between frameworks (``file::name`` for pytest, ``file > name`` for Vitest and Jest).
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..plugins import (
    FAILING_OUTCOMES,
    Adapter,
    CollectedTest,
    CollectionFailed,
    CollectionFinished,
    DurationEstimate,
    Event,
    FilesCollected,
    RunEvents,
    RunRequest,
    RunSummary,
    Selection,
    ShardInfo,
    TestFinished,
    TestStarted,
)

_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class Part:
    """One suite of a mixed run: its adapter, and the directory it runs in."""

    adapter: Adapter
    root: Path
    #: The part's directory relative to the run's root, ``/``-terminated ("" at the root).
    prefix: str = ""

    @property
    def label(self) -> str:
        return f"{self.adapter.name} suite" + (f" in {self.prefix}" if self.prefix else "")


def prefix_of(root: Path, directory: Path) -> str:
    relative = directory.resolve().relative_to(root.resolve()).as_posix()
    return "" if relative == "." else relative.rstrip("/") + "/"


def part_request(
    part: Part, request: RunRequest, first: bool, nested: Sequence[Path] = ()
) -> RunRequest | None:
    """The part's view of the run, or None when the selection's paths leave it out
    (a path under a ``nested`` part's directory is that part's). Arguments after
    ``--`` are the first part's framework's (pytest's, when the repository has a
    pytest suite): another framework would reject them."""
    selection = request.selection
    paths = tuple(p for p in selection.paths if _inside(part.root, p, nested))
    if selection.paths and not paths:
        return None
    narrowed = Selection(
        paths=paths,
        keyword=selection.keyword,
        marker=selection.marker,
        deselect=tuple(_strip(part.prefix, selection.deselect)),
        last_failed=selection.last_failed,
        failed_first=selection.failed_first,
        exitfirst=selection.exitfirst,
        maxfail=selection.maxfail,
        extra_args=selection.extra_args if first else (),
        shard=selection.shard,
    )
    return dataclasses.replace(
        request,
        root=part.root,
        selection=narrowed,
        quarantined=frozenset(_strip(part.prefix, request.quarantined)),
    )


def _inside(root: Path, path: str, nested: Sequence[Path]) -> bool:
    """Whether a selected path (a file, directory or node id) is at or under ``root``
    and under none of the ``nested`` directories."""
    target = Path(path.split("::", 1)[0]).resolve()

    def under(directory: Path) -> bool:
        directory = directory.resolve()
        return target == directory or directory in target.parents

    return under(root) and not any(under(directory) for directory in nested)


def _strip(prefix: str, ids: Iterable[str]) -> Iterable[str]:
    return (i[len(prefix) :] for i in ids if i.startswith(prefix))


def combined_code(codes: Sequence[int]) -> int:
    """pytest's exit code for the parts' codes: 5 only when no part collected a test;
    then an interrupt, an internal error, a usage error, a failure, in that order."""
    counted = [code for code in codes if code != 5]
    if not counted:
        return 5
    for code in (2, 3, 4, 1):
        if code in counted:
            return code
    return max(counted)


@dataclass
class PartEvents:
    """A part's :class:`RunEvents`: its ids prefixed with its directory on the way
    out, the history's estimates unprefixed on the way in, its summary kept back
    (the mixed run emits one)."""

    events: RunEvents
    prefix: str
    summaries: list[RunSummary] = field(default_factory=list)
    shards: list[ShardInfo] = field(default_factory=list)
    failures: int = 0

    def emit(self, *events: Event) -> None:
        passed_on: list[Event] = []
        for event in events:
            if isinstance(event, RunSummary):
                self.summaries.append(event)
                continue
            if isinstance(event, ShardInfo):  # the run's is every part's, added up
                self.shards.append(event)
                continue
            if isinstance(event, TestFinished) and event.result.outcome in FAILING_OUTCOMES:
                self.failures += 1
            passed_on.append(prefixed(event, self.prefix))
        if passed_on:
            self.events.emit(*passed_on)

    def estimates(self) -> Mapping[str, DurationEstimate]:
        return _unprefixed(self.events.estimates(), self.prefix)

    def file_estimates(self) -> Mapping[str, float]:
        return _unprefixed(self.events.file_estimates(), self.prefix)


def _unprefixed(values: Mapping[str, _V], prefix: str) -> dict[str, _V]:
    if not prefix:
        return dict(values)
    return {key[len(prefix) :]: value for key, value in values.items() if key.startswith(prefix)}


def prefixed(event: Event, prefix: str) -> Event:
    """``event`` with every id and file it names under ``prefix``."""
    if not prefix:
        return event
    if isinstance(event, TestFinished):
        result = event.result
        return TestFinished(
            dataclasses.replace(result, nodeid=prefix + result.nodeid, file=prefix + result.file)
        )
    if isinstance(event, TestStarted):
        return dataclasses.replace(event, nodeid=prefix + event.nodeid)
    if isinstance(event, CollectionFinished):
        return CollectionFinished(tuple(_test(prefix, test) for test in event.tests))
    if isinstance(event, FilesCollected):
        return FilesCollected({prefix + name: s for name, s in event.seconds.items()})
    if isinstance(event, CollectionFailed):
        return CollectionFailed(prefix + event.location, event.text)
    return event


def _test(prefix: str, test: CollectedTest) -> CollectedTest:
    return CollectedTest(prefix + test.nodeid, prefix + test.file, test.line)


def merged(summaries: Sequence[RunSummary]) -> RunSummary:
    """The parts' summaries as one: counts added, the most workers, the first
    part's idle times and JUnit options (pytest's, when there is a pytest part)."""

    def total(values: Iterable[int | None]) -> int | None:
        known = [value for value in values if value is not None]
        return sum(known) if known else None

    workers = [s.workers for s in summaries if s.workers is not None]
    return RunSummary(
        workers=max(workers) if workers else None,
        collected=total(s.collected for s in summaries),
        ran=total(s.ran for s in summaries),
        tail_idle=next((s.tail_idle for s in summaries if s.tail_idle), {}),
        junit=next((s.junit for s in summaries if s.junit is not None), None),
    )


def merged_shard(infos: Sequence[ShardInfo]) -> ShardInfo | None:
    """The parts' shards as the run's: each part splits its own suite into the same
    N shards, so shard I of the run is every part's shard I, their counts and
    predicted seconds added up, its digest the parts' digests hashed together."""
    if not infos:
        return None
    first = infos[0]
    return ShardInfo(
        index=first.index,
        count=first.count,
        tests=sum(info.tests for info in infos),
        predicted=sum(info.predicted for info in infos),
        planned=tuple(map(sum, zip(*(info.planned for info in infos), strict=True))),
        planned_tests=tuple(map(sum, zip(*(info.planned_tests for info in infos), strict=True))),
        total=sum(info.total for info in infos),
        digest=hashlib.sha256(" ".join(i.digest for i in infos).encode()).hexdigest()[:12]
        if len(infos) > 1
        else first.digest,
    )


class MixedAdapter:
    """Several suites as one adapter (see the module's docstring)."""

    name = "mixed"
    #: Each part may print its own account; the run's one summary is aqe's terminal one.
    prints_summary = False

    def __init__(self, parts: Sequence[Part]) -> None:
        self.parts = tuple(parts)
        #: ``--shard I/N``: each part splits its own suite, when every part can.
        self.shards = all(getattr(part.adapter, "shards", False) for part in self.parts)

    def detect(self, root: Path) -> bool:
        return any(part.adapter.detect(part.root) for part in self.parts)

    def nested(self, part: Part) -> list[Path]:
        """The other parts' directories inside ``part``'s: their paths are theirs."""
        root = part.root.resolve()
        return [p.root for p in self.parts if root in p.root.resolve().parents]

    def collect(self, request: RunRequest) -> list[CollectedTest]:
        found: list[CollectedTest] = []
        for position, part in enumerate(self.parts):
            asked = part_request(part, request, position == 0, self.nested(part))
            if asked is not None:
                found += [_test(part.prefix, t) for t in part.adapter.collect(asked)]
        return found

    def run(self, request: RunRequest, events: RunEvents) -> int:
        planned = [
            (part, asked)
            for position, part in enumerate(self.parts)
            if (asked := part_request(part, request, position == 0, self.nested(part))) is not None
        ]
        codes: list[int] = []
        summaries: list[RunSummary] = []
        shards: list[ShardInfo] = []
        failures = 0
        ran: list[Part] = []
        for part, asked in planned:
            if _stopped(request.selection, failures, codes):
                break
            ran.append(part)
            if len(planned) > 1:
                sys.stdout.write(f"aqe: the {part.label}\n")
                sys.stdout.flush()
                asked = without_closing_line(part, asked)
            part_events = PartEvents(events, part.prefix)
            codes.append(_code(part, asked, part_events))
            summaries += part_events.summaries
            shards += part_events.shards
            failures += part_events.failures
        shard = merged_shard(shards)
        if shard is not None:
            events.emit(shard)
        events.emit(merged(summaries))
        if len(ran) > 1:
            # The run's one summary follows (aqe's terminal reporter), over every suite.
            labels = ", ".join(part.label for part in ran)
            sys.stdout.write(f"aqe: all {len(ran)} suites: {labels}\n")
            sys.stdout.flush()
        return combined_code(codes)


#: pytest's ``-p`` for this module: it is also a pytest plugin (the hook below).
_QUIET = ("-p", __name__)


def without_closing_line(part: Part, request: RunRequest) -> RunRequest:
    """A pytest part of a run with others prints its failures and sections but not
    its own count line: the run's one closing line, over every suite, follows."""
    if part.adapter.name != "pytest":
        return request
    selection = dataclasses.replace(
        request.selection, extra_args=(*_QUIET, *request.selection.extra_args)
    )
    return dataclasses.replace(request, selection=selection)


def pytest_sessionstart(session: object) -> None:
    """pytest's hook, when pytest loads this module (``_QUIET``): its terminal
    reporter (aqe's, inside pytest) skips the count line."""
    config = getattr(session, "config", None)
    manager = getattr(config, "pluginmanager", None)
    reporter = manager.get_plugin("terminalreporter") if manager is not None else None
    if reporter is not None:
        reporter.summary_stats = lambda: None


def _code(part: Part, request: RunRequest, events: PartEvents) -> int:
    from .._exceptions import AqeError, PluginError

    if part.adapter.name == "pytest":
        return int(part.adapter.run(request, events))
    try:
        return int(part.adapter.run(request, events))
    except (AqeError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise PluginError(
            f"adapter {part.adapter.name!r} failed during the run: {type(exc).__name__}: {exc}"
        ) from None


def _stopped(selection: Selection, failures: int, codes: Sequence[int]) -> bool:
    """An interrupt, or ``-x``/``--maxfail`` reached, ends the run before the next part."""
    if 2 in codes:
        return True
    limit = 1 if selection.exitfirst else selection.maxfail
    return limit is not None and failures >= limit
