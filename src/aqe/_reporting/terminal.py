"""The terminal: pytest's own reporter, with a live view of the fleet instead of dots.

aqe replaces pytest's registered ``terminalreporter`` with a subclass (the way
pytest-sugar does), so every summary section users know -- failures with
tracebacks, warnings, ``-r`` short summary, ``--durations`` -- stays pytest's own,
and plugins that write through the terminal reporter keep working. Only the
per-test progress changes: on a TTY a live panel (counts, ETA from history, what
each worker runs), elsewhere pytest's lines (``tests/x.py ..F.  [ 12%]``), each
written once all of its file's tests are done: workers finish tests in any order,
so a file's letters are held until then, and a CI log still shows where a failure
was without waiting for the summary.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, Any

import pytest

from .._compat import CollectReport, TerminalReporter, TestReport
from .._model import Progress, TestResult


def _silence(stream: IO[str]) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


class _LetterBuffer:
    """Holds progress letters until the coordinator's loop flushes them.

    With ``PYTHONUNBUFFERED`` (common in CI) each of pytest's one-letter writes is
    a system call that wakes whatever reads the log; thousands of them per second
    cost the run real time. Anything containing a newline goes out at once, with
    what is held before it, so lines never change order.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._held: list[str] = []

    def write(self, text: str) -> int:
        self._held.append(text)
        if "\n" in text:
            self.flush()
        return len(text)

    def flush(self) -> None:
        text = "".join(self._held)
        self._held.clear()
        try:
            if text:
                self._stream.write(text)
            self._stream.flush()
        except BrokenPipeError:
            # The reader went away (``aqe run | head``). The run goes on and still
            # writes its history and reports; later output goes to /dev/null
            # instead of a traceback per write.
            _silence(self._stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


# pytest marks TerminalReporter @final; replacing it by a subclass is still the
# established way (pytest-sugar) to keep every summary section pytest's own.
# Our end-to-end tests pin the behaviour we rely on.
class AqeTerminalReporter(TerminalReporter):  # type: ignore[misc]
    def __init__(self, config: pytest.Config, live: bool, workers: int) -> None:
        super().__init__(config, sys.stdout)
        self._tw._file = _LetterBuffer(sys.stdout)
        self.workers = workers
        self.tail_idle: dict[int, float] = {}
        self._live: Any = None
        self._console: Any = None
        self._letters = 0
        #: Each node's children in pytest's collection order: the coordinator's
        #: collection down to files, then what workers collected in each file.
        self._children: dict[str, dict[str, None]] = {}  # ordered sets
        self._lines = _FileLines()
        #: Tests the coordinator knows of (its last progress snapshot).
        self._known = 0
        if live:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=sys.stdout)
            self._live = Live(
                console=self._console,
                auto_refresh=False,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )

    @classmethod
    def install(cls, config: pytest.Config, live: bool, workers: int) -> AqeTerminalReporter:
        pm = config.pluginmanager
        old = pm.get_plugin("terminalreporter")
        if old is not None:
            pm.unregister(old)
        reporter = cls(config, live, workers)
        pm.register(reporter, "terminalreporter")
        return reporter

    # -- collection --------------------------------------------------------------

    def pytest_collection(self) -> None:
        return None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.config.getoption("collectonly"):
            super().pytest_collection_finish(session)
            return
        lines = self.config.hook.pytest_report_collectionfinish(
            config=self.config, start_path=self.startpath, items=session.items
        )
        self._write_report_lines_from_hooks(lines)

    def pytest_collectreport(self, report: CollectReport) -> None:
        super().pytest_collectreport(report)
        if report.passed:
            self._add_children(report.nodeid, [node.nodeid for node in report.result])

    def collected(self, nodeids: Sequence[str]) -> None:
        """Tests a worker collected, in pytest's order within each of their files."""
        children = self._children
        for nodeid in nodeids:  # a test already known keeps its place
            children.setdefault(nodeid.split("::", 1)[0], {})[nodeid] = None
            self._lines.collected(nodeid)

    def _add_children(self, parent: str, children: list[str]) -> None:
        known = self._children.setdefault(parent, {})
        known.update((child, None) for child in children if child != parent)

    def _collection_order(self) -> dict[str, int]:
        """Every node id's position in pytest's collection order (depth first)."""
        order: dict[str, int] = {}
        stack = list(reversed(self._children.get("", {})))
        while stack:
            nodeid = stack.pop()
            if nodeid not in order:
                order[nodeid] = len(order)
                stack += reversed(self._children.get(nodeid, {}))
        return order

    def _sort_stats(self) -> None:
        """Tests finish in any order across workers; pytest's summary sections list
        them in collection order (a collection error before any test's)."""
        order = self._collection_order()
        last = len(order)
        # Passes are listed only with -rp/-rP/-rA, and setup/teardown passes ("")
        # never: sorting tens of thousands of them was a sixth of the coordinator's time.
        unlisted = {"warnings", ""}
        if not (self.hasopt("p") or self.hasopt("P")):
            unlisted.add("passed")
        for category, reports in self.stats.items():
            if category not in unlisted:
                reports.sort(
                    key=lambda report: (
                        not isinstance(report, CollectReport),
                        order.get(getattr(report, "nodeid", ""), last),
                    )
                )

    def started(self, workers: int, files: int, direct: int) -> None:
        """The pool is decided: say how the work is split, then start the live view."""
        self.workers = workers
        noun = "worker" if workers == 1 else "workers"
        what = [f"{files} file{'s' if files != 1 else ''} to collect"] if files else []
        if direct:
            what.append(f"{direct} test{'s' if direct != 1 else ''} collected up front")
        self.write_line(f"aqe: {workers} {noun}; {', '.join(what)}")
        if self._live is not None:
            self._live.start()

    # -- per test ----------------------------------------------------------------

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        return None

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        return None

    def pytest_runtest_logreport(self, report: TestReport) -> None:
        self._tests_ran = True
        category, letter, word = self.config.hook.pytest_report_teststatus(
            report=report, config=self.config
        )
        self._add_stats(category, [report])
        # A crash or timeout aqe recorded: a failure to pytest, named for what it was.
        special = getattr(report, "aqe_outcome", None)
        if special in _SPECIAL and report.outcome == "failed":
            letter, word = _SPECIAL[special]
        per_file = self._per_file()
        if not letter and not word:
            if per_file:
                self._file_done(report)
            return
        if isinstance(word, tuple):
            word, markup = word
        else:
            markup = _markup(report)
        if per_file:
            self._lines.hold(report.nodeid, letter, markup)
            self._file_done(report)
            return
        worker = getattr(report, "aqe_worker", None)
        if self._live is not None:
            if report.failed:
                where = "" if report.when == "call" else f" at {report.when}"
                self._console.print(f"[red]{word}{where}[/red] {report.nodeid}", highlight=False)
            return
        if self.verbosity > 0:
            suffix = f" [w{worker}]" if worker is not None else ""
            self._tw.write(word, **markup)
            self._tw.line(f" {report.nodeid}{suffix}")
        else:
            self._tw.write(letter, **markup)
            self._letters += 1
            if self._letters % 80 == 0:
                self._tw.line()

    def _per_file(self) -> bool:
        """pytest's per-file lines: plain output, default verbosity, its progress style."""
        return self._live is None and self.verbosity == 0 and self._show_progress_info == "progress"

    def _file_done(self, report: TestReport) -> None:
        """A test whose teardown (or aqe's crash/timeout verdict) came in is done; a
        file whose collected tests are all done gets its line."""
        if report.when == "teardown" or getattr(report, "aqe_outcome", None) in _SPECIAL:
            file = self._lines.done(report.nodeid, self._leaves)
            if file is not None:
                self._write_file_line(file)

    def _leaves(self, file: str) -> set[str]:
        """Every test under ``file`` in the collection tree (the coordinator's own
        collection reports and what workers collected)."""
        found: set[str] = set()
        stack = list(self._children.get(file, {}))
        while stack:
            nodeid = stack.pop()
            children = self._children.get(nodeid)
            if children:
                stack += children
            else:
                found.add(nodeid)
        return found

    def _write_file_line(self, file: str) -> None:
        """``path letters`` and the share of tests done, as pytest writes them,
        wrapped with the share at the edge as pytest wraps a long file."""
        letters = self._lines.take(file)
        if not letters:
            return
        tw = self._tw
        tw.write(os.path.relpath(self.config.rootpath / file, self.startpath) + " ")
        # Of the tests collected so far (workers collect files as they go); the
        # coordinator's count when it collected them all itself (node ids, --lf).
        total = max(self._lines.known or self._known, self._lines.finished, 1)
        message = f" [{min(self._lines.finished * 100 // total, 100):3d}%]"
        color, _ = self._get_main_color()
        for letter, markup in letters:
            tw.write(letter, **markup)
            if tw.width_of_current_line + len(message) + 1 >= self._screen_width:
                tw.write(message + "\n", **{color: True})
        if tw.width_of_current_line:
            tw.write(message.rjust(tw.fullwidth - tw.width_of_current_line - 1), **{color: True})
            tw.line()

    def test_output(self, result: TestResult, text: str) -> None:
        """Print output a test wrote outside capture (``-s``) as one block."""
        header = f" output of {result.nodeid} (worker {result.worker}) "
        if self._live is not None:
            self._console.rule(header, style="dim")
            self._console.out(text.rstrip("\n"), highlight=False)
            return
        if self._letters % 80:
            self._tw.line()
        self._letters = 0
        self._tw.sep("-", header)
        self._tw.line(text.rstrip("\n"))

    def flush(self) -> None:
        self._tw.flush()

    def note(self, text: str) -> None:
        """One line of aqe's own, on a line of its own (not after progress letters)."""
        if self._live is None and self._letters % 80:
            self._tw.line()
            self._letters = 0
        self.write_line(text)

    def progress(self, snapshot: Progress) -> None:
        self._known = snapshot.known
        if self._live is None:
            return
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        counts = ", ".join(f"{n} {k}" for k, n in sorted(snapshot.counts.items()) if n)
        total = f"{snapshot.done}/{snapshot.known}{'+' if snapshot.collecting else ''}"
        eta = "" if snapshot.eta is None else f"  ETA {snapshot.eta:.1f}s"
        table.add_row(Text(f"aqe {total} tests  {counts}{eta}", style="bold"))
        for worker in sorted(snapshot.running):
            table.add_row(Text(f"  w{worker} {snapshot.running[worker]}", style="dim"))
        self._live.update(table, refresh=True)

    def stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            return
        for file in self._lines.waiting():  # tests that never finished, retries
            self._write_file_line(file)
        if self._letters % 80:
            self._tw.line()

    # -- closing line --------------------------------------------------------------

    def summary_errors(self) -> None:
        # The first of pytest's summary sections: from here on they read the stats
        # in pytest's order.
        self._sort_stats()
        super().summary_errors()

    def summary_stats(self) -> None:
        if self.verbosity < -1:
            return
        if self.tail_idle:
            worst = max(self.tail_idle, key=lambda w: self.tail_idle[w])
            self.write_line(
                f"aqe: tail idle (workers out of work while others finished) "
                f"{sum(self.tail_idle.values()):.2f}s in all, "
                f"longest {self.tail_idle[worst]:.2f}s (worker {worst})"
            )
        parts, color = self.build_summary_stats_line()
        parts = _name_specials(parts, "failed", self.stats.get("failed", []))
        parts = _name_specials(parts, "passed", self.stats.get("passed", []))
        text = ", ".join(self._tw.markup(t, **m) for t, m in parts)
        elapsed = self._session_start.elapsed().seconds
        duration = self._tw.markup(f" in {elapsed:.2f}s", **{color: True})
        msg = text + duration
        fullwidth = self._tw.fullwidth + len(msg) - len(_plain(parts, elapsed))
        if self.verbosity >= 0:
            self.write_sep("=", msg, fullwidth=fullwidth, **{color: True})
        else:
            self.write_line(msg)


class _FileLines:
    """Progress letters held per file, and which files have all their tests done."""

    def __init__(self) -> None:
        self._held: dict[str, list[tuple[str, dict[str, bool]]]] = {}
        self._collected: set[str] = set()
        self._done: set[str] = set()
        self._done_in: dict[str, int] = {}
        #: Tests a file was last seen to have (recounted when its done tests reach it).
        self._size: dict[str, int] = {}
        self._complete: set[str] = set()

    @property
    def known(self) -> int:
        return len(self._collected)

    @property
    def finished(self) -> int:
        return len(self._done)

    def collected(self, nodeid: str) -> None:
        self._collected.add(nodeid)

    def hold(self, nodeid: str, letter: str, markup: dict[str, bool]) -> None:
        self._held.setdefault(nodeid.split("::", 1)[0], []).append((letter, markup))

    def done(self, nodeid: str, tests_of: Callable[[str], set[str]]) -> str | None:
        """Count ``nodeid`` done; its file if that completes the file's tests."""
        file = nodeid.split("::", 1)[0]
        if nodeid in self._done:  # a retry: a line of its own once its file had one
            return file if file in self._complete else None
        self._done.add(nodeid)
        self._collected.add(nodeid)
        count = self._done_in[file] = self._done_in.get(file, 0) + 1
        if count < self._size.get(file, 0):
            return None
        size = self._size[file] = len(tests_of(file))
        if 0 < size <= count:
            self._complete.add(file)
            return file
        return None

    def take(self, file: str) -> list[tuple[str, dict[str, bool]]]:
        return self._held.pop(file, [])

    def waiting(self) -> list[str]:
        return list(self._held)


#: Outcomes aqe records for tests without reports of their own: (letter, word).
_SPECIAL = {"crashed": ("C", "CRASHED"), "timeout": ("T", "TIMEOUT")}


def _name_specials(
    parts: list[tuple[str, dict[str, bool]]], category: str, reports: list[Any]
) -> list[tuple[str, dict[str, bool]]]:
    """``3 failed`` becomes ``1 failed, 1 crashed, 1 timeout`` in the closing line,
    and ``3 passed`` becomes ``2 passed, 1 flaky``."""
    names = ("flaky",) if category == "passed" else tuple(_SPECIAL)
    counts = dict.fromkeys(names, 0)
    for report in reports:
        if getattr(report, "when", "call") != "call":
            continue
        name = getattr(report, "aqe_outcome", None)
        if name in counts:
            counts[name] += 1
    if not any(counts.values()):
        return parts
    result: list[tuple[str, dict[str, bool]]] = []
    for text, markup in parts:
        number, _, label = text.partition(" ")
        if label == category:
            rest = int(number) - sum(counts.values())
            if rest:
                result.append((f"{rest} {category}", markup))
            result += [(f"{n} {name}", markup) for name, n in counts.items() if n]
        else:
            result.append((text, markup))
    return result


def _plain(parts: list[tuple[str, dict[str, bool]]], elapsed: float) -> str:
    return ", ".join(t for t, _ in parts) + f" in {elapsed:.2f}s"


def _markup(report: TestReport) -> dict[str, bool]:
    if report.passed:
        return {"yellow": True} if hasattr(report, "wasxfail") else {"green": True}
    if report.failed:
        return {"red": True}
    return {"yellow": True}
