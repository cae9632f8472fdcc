"""Benchmark ``aqe run`` against serial pytest and pytest-xdist on generated suites.

Why it is built this way:

* Runs are INTERLEAVED (serial, xdist, aqe first-run, aqe re-run, then again, R times)
  so that background noise on a shared 2-core machine hits every tool alike instead of
  penalising whichever tool happened to run during a busy minute.  Medians are reported
  because a single slow outlier should not decide a PASS/FAIL.
* Wall time is measured around the whole subprocess, so interpreter start-up,
  collection, worker spawning and teardown all count: that is what a user waits for.
* The observer must not compete with what it times: on 2 cores, a harness that reads the
  tool's output through a pipe (every progress character wakes it) and samples /proc
  every 20 ms slows a tool that uses both cores measurably (~20%) and serial pytest
  hardly at all.  So a timed run writes its output to a file read after exit, the harness
  blocks in waitpid() (no polling), and memory is NOT sampled in timed runs.
* Peak memory comes from separate, untimed runs (``--mem-reps``, also interleaved): the
  maximum over ~20 ms samples of the summed VmRSS (and PSS) of the command and all its
  descendants, because a parallel runner's cost is its whole process tree.
* Every run's test count is checked against the suite manifest and across tools; a tool
  that runs fewer tests is not faster, it is wrong, so mismatches are flagged loudly.
* A tool that crashes (e.g. the aqe engine is not finished yet) is reported, not fatal.
* ``split`` is a reference, not a rival: W plain pytest processes at once, each on its
  share of the files (dealt by the manifest's cost). Any W-process runner that collects
  with pytest and runs pytest's test protocol, as aqe must, does at least that work, so
  on ``trivial`` it is the floor a bar can be checked against.

Usage::

    python benchmarks/run.py                      # all scenarios, 5 reps
    python benchmarks/run.py --quick              # tiny suites, smoke test
    python benchmarks/run.py --scenario trivial --reps 7 --json-out benchmarks/_results/t.json
    python benchmarks/run.py --quick --tools serial,xdist
    python benchmarks/run.py --quick --mem-reps 0   # timings only, no memory runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gensuite import (  # after the sys.path tweak, so the script runs from any cwd
    DEFAULT_SUITES_DIR,
    SuiteSpec,
    generate_suite,
    ideal_bound,
    load_manifest,
)
from shapes import ShapeSpec  # after the sys.path tweak, as gensuite

SAMPLE_INTERVAL = 0.02
TOOL_ORDER = ("serial", "xdist", "aqe-first", "aqe-rerun", "split")
TOOL_LABELS = {
    "serial": "pytest (serial)",
    "xdist": "pytest -n {w}",
    "aqe-first": "aqe -w {w} first-run",
    "aqe-rerun": "aqe -w {w} re-run",
    "split": "{w} pytest, files split",
}

# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """A named suite shape plus a tiny variant of it for ``--quick`` smoke runs."""

    name: str
    description: str
    full: SuiteSpec | ShapeSpec
    quick: SuiteSpec | ShapeSpec


SCENARIOS: dict[str, Scenario] = {
    "trivial": Scenario(
        name="trivial",
        description="per-test and start-up overhead: tests only assert x + 1 == y",
        full=SuiteSpec("trivial", n_tests=2000, n_files=40, dist="trivial"),
        quick=SuiteSpec("trivial-quick", n_tests=200, n_files=8, dist="trivial"),
    ),
    "heavy": Scenario(
        name="heavy",
        description="scheduling quality: heavy-tailed sleep tests, module fixtures, import cost",
        full=SuiteSpec(
            "heavy",
            n_tests=300,
            n_files=30,
            dist="lognormal",
            total_seconds=60.0,
            sigma=1.5,
            max_test_seconds=8.0,
            fixture_files=4,
            fixture_seconds=(0.2, 0.5),
            import_ms=20.0,
            seed=4,
        ),
        quick=SuiteSpec(
            "heavy-quick",
            n_tests=40,
            n_files=8,
            dist="lognormal",
            total_seconds=4.0,
            sigma=1.5,
            max_test_seconds=1.0,
            fixture_files=2,
            fixture_seconds=(0.1, 0.2),
            import_ms=10.0,
            seed=4,
        ),
    ),
}
#: The shapes of issue 23 (``shapes.py``): aqe at or below xdist on each.
SCENARIOS.update(
    {
        shape: Scenario(
            shape,
            description,
            ShapeSpec(shape, shape),
            ShapeSpec(f"{shape}-quick", shape, scale=0.1),
        )
        for shape, description in (
            ("unittest", "a suite whose time sits in one large unittest file"),
            ("tiny", "tens of thousands of tiny parametrized tests: per-test cost"),
            ("imports", "heavy imports: collection shared out, nothing imported twice"),
            ("longtail", "long-tailed durations: scheduling at the tail"),
            ("subprocess", "tests that spawn subprocesses"),
        )
    }
)


@dataclass(frozen=True)
class Bar:
    """One performance requirement: ``metric <= limit``; ``metric`` names a ratio key."""

    label: str
    metric: str
    limit: float


BARS: dict[str, list[Bar]] = {
    "trivial": [
        Bar("aqe first-run <= 0.4x xdist (wall)", "first/xdist", 0.4),
        Bar("aqe first-run <= 0.8x serial (wall)", "first/serial", 0.8),
        Bar("aqe re-run <= 0.6x serial (wall)", "rerun/serial", 0.6),
        # Issue 23: the developer's loop, against two plain pytest processes.
        Bar("aqe first-run <= 1.0x split (wall)", "first/split", 1.0),
        Bar("aqe re-run <= 0.9x split (wall)", "rerun/split", 0.9),
    ],
    "heavy": [
        Bar("aqe first-run <= 1.10x ideal bound", "first/ideal", 1.10),
        Bar("aqe re-run <= 1.10x ideal bound", "rerun/ideal", 1.10),
        Bar("aqe first-run <= 0.9x xdist (wall)", "first/xdist", 0.9),
        Bar("aqe re-run <= 0.9x xdist (wall)", "rerun/xdist", 0.9),
    ],
    "tiny": [
        Bar("aqe first-run <= 1.0x xdist (wall)", "first/xdist", 1.0),
        Bar("aqe re-run <= 1.0x xdist (wall)", "rerun/xdist", 1.0),
        Bar("aqe re-run <= 0.55x serial (wall)", "rerun/serial", 0.55),
    ],
    **{
        shape: [
            Bar("aqe first-run <= 1.0x xdist (wall)", "first/xdist", 1.0),
            Bar("aqe re-run <= 1.0x xdist (wall)", "rerun/xdist", 1.0),
        ]
        for shape in ("unittest", "imports", "longtail", "subprocess")
    },
}
MEMORY_BARS = [
    Bar("aqe first-run peak RSS <= xdist", "first/xdist mem", 1.0),
    Bar("aqe re-run peak RSS <= xdist", "rerun/xdist mem", 1.0),
]


@dataclass(frozen=True)
class Settings:
    """Knobs shared by every scenario in one benchmark invocation."""

    reps: int
    mem_reps: int
    workers: int
    timeout: float
    suites_dir: Path
    pytest: str
    aqe: str
    aqe_json: bool = False


def describe_spec(spec: SuiteSpec | ShapeSpec) -> str:
    """One-line summary of a suite's shape, so the log says what was actually run."""
    if isinstance(spec, ShapeSpec):
        return spec.describe()
    parts = [f"{spec.n_tests} tests in {spec.n_files} files"]
    if spec.dist == "trivial":
        parts.append("trivial")
    else:
        shape = {
            "lognormal": f"lognormal(sigma={spec.sigma})",
            "pareto": f"pareto(alpha={spec.pareto_alpha})",
        }.get(spec.dist, spec.dist)
        cap = f", longest capped at {spec.max_test_seconds} s" if spec.max_test_seconds else ""
        parts.append(f"{shape} sleeps totalling {spec.total_seconds} s{cap}")
    if spec.fixture_files:
        low, high = spec.fixture_seconds
        parts.append(f"{spec.fixture_files} module fixtures of {low}-{high} s")
    if spec.import_ms:
        parts.append(f"{spec.import_ms} ms {spec.import_kind} import cost per module")
    if spec.fail_fraction:
        parts.append(f"{spec.fail_fraction:.0%} failing")
    return "; ".join(parts)


# --------------------------------------------------------------------------- process tree memory


def _children_via_task(pid: int) -> list[int]:
    """Direct children of ``pid`` from /proc/<pid>/task/*/children (cheap, needs
    CONFIG_PROC_CHILDREN); every thread has its own list, so all are read."""
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids.extend(int(k) for k in fh.read().split())
        except OSError:
            continue
    return kids


def _ppid_map() -> dict[int, list[int]]:
    """Parent -> children for every process, by scanning /proc/*/stat (the fallback)."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # comm (field 2) may contain spaces and parentheses: split after the last ')'.
        ppid = int(stat.rpartition(")")[2].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _has_children_files() -> bool:
    pid = os.getpid()
    return os.path.exists(f"/proc/{pid}/task/{pid}/children")


def process_tree(root: int, use_task_children: bool) -> list[int]:
    """``root`` and all its live descendants."""
    if use_task_children:
        children_of: Callable[[int], list[int]] = _children_via_task
    else:
        table = _ppid_map()

        def children_of(pid: int) -> list[int]:
            return table.get(pid, [])

    seen, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(children_of(pid))
    return seen


def rss_kib(pid: int) -> int:
    """Resident set size of one process in KiB (0 if gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size in KiB: shared pages split between their sharers.  Reported
    next to RSS because summed RSS counts copy-on-write pages of forked workers once per
    worker, which penalises fork-based runners for memory they do not actually use."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeMemorySampler(threading.Thread):
    """Samples the summed RSS (and PSS) of a process tree every ``interval`` s, keeping
    the peaks.

    Summed RSS counts pages shared between forked processes once per process, so it
    overstates fork-based runners; it is still the figure ``ps``/``top`` users see, it is
    applied identically to every tool, and it is what the memory bar is judged on.  The
    summed PSS is the fairer "real" footprint and is reported for information.
    """

    def __init__(self, root: int, interval: float = SAMPLE_INTERVAL) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_kib = 0
        self.peak_pss_kib = 0
        self.samples = 0
        self._stop_event = threading.Event()
        self._use_task_children = _has_children_files()

    def sample(self) -> None:
        pids = process_tree(self.root, self._use_task_children)
        self.peak_kib = max(self.peak_kib, sum(rss_kib(p) for p in pids))
        self.peak_pss_kib = max(self.peak_pss_kib, sum(pss_kib(p) for p in pids))
        self.samples += 1

    def run(self) -> None:
        self.sample()
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        """Stop sampling; the peaks are final afterwards."""
        self._stop_event.set()
        self.join()


# --------------------------------------------------------------------------- running commands


@dataclass
class RunResult:
    """One execution of one tool on one suite.

    ``kind`` says what the run was for: "timed" runs give the wall times (no memory
    sampling, so the peaks are None), "memory" runs give the peaks (their wall time is
    recorded but inflated by the sampler and never used), "warmup" runs give neither.
    """

    tool: str
    rep: int
    wall: float
    peak_rss_kib: int | None
    peak_pss_kib: int | None
    returncode: int | None
    tests: int | None
    ok: bool
    error: str = ""
    samples: int = 0
    kind: str = "timed"
    leftover: int = 0
    #: CPU seconds (user + system) of the command and every process it waited for.
    cpu: float | None = None


@dataclass
class Measurement:
    """Raw outcome of one subprocess: timings, memory peaks, exit code and output."""

    wall: float
    peak_rss_kib: int | None
    peak_pss_kib: int | None
    samples: int
    returncode: int | None
    output: str
    leftover: int = 0
    cpu: float | None = None


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes in session ``sid``, by scanning /proc/*/stat."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rpartition(")")[2].split()
        except OSError:
            continue
        # after comm: state, ppid, pgrp, session, ...
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry))
    return members


def kill_leftovers(sid: int, grace: float = 0.2) -> int:
    """SIGKILL whatever the command left running in its session; returns how many.

    The harness only waits for the command itself (as a shell would), so a tool that
    exits while its workers linger would otherwise steal CPU from the next run.  Processes
    that are just exiting (or were just killed) get ``grace`` seconds before they count."""
    deadline = time.monotonic() + grace
    leftover = session_members(sid)
    while leftover and time.monotonic() < deadline:
        time.sleep(0.02)
        leftover = session_members(sid)
    for pid in leftover:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(leftover)


def run_command(
    cmd: list[str], cwd: Path, timeout: float, sample_memory: bool = False
) -> Measurement:
    """Run ``cmd`` once, timing it, and sampling its process tree's memory only if asked.

    While the command runs, the harness takes no CPU: output goes to an unlinked temporary
    file (read after exit, not through a pipe the harness would have to drain), the main
    thread blocks in waitpid(), and the timeout is a sleeping timer thread
    (``Popen.wait(timeout)`` would poll with sleeps of up to 50 ms, which costs wake-ups
    and adds up to 50 ms to the measured wall time).  The command gets its own session so
    that on timeout the whole group it created (including workers) can be killed without
    touching anything else.
    """
    timed_out = threading.Event()
    with tempfile.TemporaryFile() as out_file:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=out_file, stderr=subprocess.STDOUT, start_new_session=True
        )

        def on_timeout() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        sampler = TreeMemorySampler(proc.pid) if sample_memory else None
        if sampler is not None:
            sampler.start()
        timer = threading.Timer(timeout, on_timeout)
        timer.daemon = True
        timer.start()
        try:
            returncode: int | None = proc.wait()
        finally:
            timer.cancel()
            if proc.returncode is None:  # interrupted (e.g. Ctrl-C): do not leave it running
                on_timeout()
                proc.wait()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if sampler is not None:
            sampler.stop()
        leftover = kill_leftovers(proc.pid)
        out_file.seek(0)
        out = out_file.read().decode("utf-8", errors="replace")
    if timed_out.is_set():
        returncode = None
        out += f"\n[benchmark] killed after {timeout:g} s timeout"
    return Measurement(
        wall,
        sampler.peak_kib if sampler else None,
        sampler.peak_pss_kib if sampler else None,
        sampler.samples if sampler else 0,
        returncode,
        out,
        leftover,
        cpu,
    )


_SUMMARY_RE = re.compile(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)\b")
_COUNTED = ("passed", "failed", "skipped", "xfailed", "xpassed")


def count_from_summary(output: str) -> int | None:
    """Tests run, from the last pytest-style summary line ('3 failed, 297 passed in 1.2s')."""
    for line in reversed(output.strip().splitlines()):
        if not re.search(r"\bin [\d.]+s\b", line):
            continue
        counts = {kind: int(n) for n, kind in _SUMMARY_RE.findall(line)}
        if counts:
            return sum(counts.get(k, 0) for k in _COUNTED)
    return None


def count_from_all_summaries(output: str) -> int | None:
    """Tests run by several pytest processes whose outputs were concatenated."""
    counts = [count_from_summary(line) for line in output.splitlines()]
    found = [c for c in counts if c is not None]
    return sum(found) if found else None


def count_from_aqe_json(data: object) -> int | None:
    """Tests run, from an ``aqe-run-report`` (docs/json-report.md), counted the way
    pytest's summary line counts them so the numbers are comparable across tools.

    ``tests[]`` holds one entry per attempt, so only each node id's last attempt is
    used; a setup error is not a test run (pytest reports it only as an error), while a
    teardown error follows a test that did run.  Returns None for anything else.
    """
    if not isinstance(data, dict) or data.get("schema") != "aqe-run-report":
        return None
    attempts = data.get("tests")
    if not isinstance(attempts, list):
        return None
    final: dict[str, dict[str, object]] = {}
    for entry in attempts:
        if isinstance(entry, dict) and isinstance(entry.get("nodeid"), str):
            previous = final.get(entry["nodeid"])
            if previous is None or _attempt(entry) >= _attempt(previous):
                final[entry["nodeid"]] = entry
    return sum(
        1
        for e in final.values()
        if e.get("outcome") in _COUNTED
        or (e.get("outcome") == "error" and e.get("when") == "teardown")
    )


def _attempt(entry: dict[str, object]) -> int:
    value = entry.get("attempt")
    return value if isinstance(value, int) else 1


def read_aqe_json(path: Path) -> int | None:
    """Count from an aqe JSON report, tolerating a missing or malformed file."""
    try:
        return count_from_aqe_json(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def tail(text: str, lines: int = 3) -> str:
    """Last few non-empty lines of output, for error reports."""
    kept = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(kept[-lines:])


# --------------------------------------------------------------------------- tools


@dataclass
class Tool:
    """How to invoke one contender, and what to do right before each timed run."""

    key: str
    label: str
    argv: Callable[[Path], list[str]]
    prepare: Callable[[Path], None] = lambda _suite: None
    json_report: bool = False
    count: Callable[[str], int | None] = count_from_summary


def find_script(name: str) -> str:
    """A console script from the same environment as this interpreter, else from PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name) or name


def report_path(report_dir: Path, key: str) -> Path:
    """Where a tool's machine-readable report goes (only aqe writes one)."""
    return report_dir / f"{key}.json"


def clear_aqe_state(suite: Path) -> None:
    """Delete aqe's history and caches so the next aqe run is a genuine first run."""
    shutil.rmtree(suite / ".aqe", ignore_errors=True)


def deal_files(manifest: dict[str, object], workers: int) -> list[list[str]]:
    """The suite's files in ``workers`` shares of near-equal cost (longest first, each to
    the cheapest share), cost being test time plus module fixture plus import time."""
    files = manifest["files"]
    tests = manifest["tests"]
    assert isinstance(files, list) and isinstance(tests, list)
    cost = {f["path"]: f["fixture_seconds"] + f["import_ms"] / 1000 for f in files}
    for test in tests:
        path = test["nodeid"].split("::")[0]
        cost[path] = cost.get(path, 0.0) + test["duration"]
    shares: list[list[str]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for path in sorted(cost, key=lambda p: (-cost[p], p)):
        i = min(range(workers), key=lambda k: (loads[k], len(shares[k])))
        shares[i].append(path)
        loads[i] += cost[path]
    return [sorted(share) for share in shares if share]


def split_argv(pytest_cmd: list[str], shares: list[list[str]]) -> list[str]:
    """One ``sh`` command that starts a pytest per share at once and waits for all.

    Each pytest writes to its own file, printed after all have exited, so their progress
    lines never interleave; the exit code is the highest of theirs."""
    script = ["out=$(mktemp -d)", "rc=0", "pids="]
    for i, share in enumerate(shares):
        cmd = " ".join(shlex.quote(a) for a in [*pytest_cmd, *share])
        script.append(f'{cmd} > "$out/{i}" 2>&1 & pids="$pids $!"')
    script += [
        'for p in $pids; do wait "$p"; r=$?; [ "$r" -gt "$rc" ] && rc=$r; done',
        'cat "$out"/*; rm -rf "$out"; exit "$rc"',
    ]
    return ["sh", "-c", "\n".join(script)]


def build_tools(settings: Settings, report_dir: Path) -> dict[str, Tool]:
    """The contenders, and the ``split`` reference.

    By default every tool's test count comes from its final summary line, so aqe does no
    extra work that pytest is spared.  With ``settings.aqe_json`` aqe also writes its JSON
    report and the count comes from there (a stricter check that costs aqe a little).
    """
    pytest_cmd = [settings.pytest, "-q", "-p", "no:cacheprovider"]
    aqe, workers = settings.aqe, settings.workers

    def aqe_argv(key: str) -> Callable[[Path], list[str]]:
        argv = [aqe, "run", ".", "-w", str(workers), "-q"]
        if settings.aqe_json:
            argv += ["--json", str(report_path(report_dir, key))]
        return lambda _suite: argv

    return {
        "serial": Tool("serial", TOOL_LABELS["serial"], lambda _s: [*pytest_cmd, "."]),
        "xdist": Tool(
            "xdist",
            TOOL_LABELS["xdist"].format(w=workers),
            lambda _s: [*pytest_cmd, "-n", str(workers), "."],
        ),
        "aqe-first": Tool(
            "aqe-first",
            TOOL_LABELS["aqe-first"].format(w=workers),
            aqe_argv("aqe-first"),
            prepare=clear_aqe_state,
            json_report=settings.aqe_json,
        ),
        "aqe-rerun": Tool(
            "aqe-rerun",
            TOOL_LABELS["aqe-rerun"].format(w=workers),
            aqe_argv("aqe-rerun"),
            json_report=settings.aqe_json,
        ),
        "split": Tool(
            "split",
            TOOL_LABELS["split"].format(w=workers),
            lambda suite: split_argv(pytest_cmd, deal_files(load_manifest(suite), workers)),
            count=count_from_all_summaries,
        ),
    }


def run_tool(
    tool: Tool,
    suite: Path,
    rep: int,
    expected_rc: int,
    timeout: float,
    report_dir: Path,
    kind: str = "timed",
) -> RunResult:
    """Prepare, run and validate one run of one tool; memory is sampled only when
    ``kind`` is "memory"."""
    tool.prepare(suite)
    report = report_path(report_dir, tool.key)
    report.unlink(missing_ok=True)
    m = run_command(tool.argv(suite), suite, timeout, sample_memory=kind == "memory")
    tests = read_aqe_json(report) if tool.json_report else None
    if tests is None:
        tests = tool.count(m.output)
    ok = m.returncode == expected_rc
    error = "" if ok else f"exit {m.returncode} (expected {expected_rc}): {tail(m.output, 1)}"
    return RunResult(
        tool.key,
        rep,
        m.wall,
        m.peak_rss_kib,
        m.peak_pss_kib,
        m.returncode,
        tests,
        ok,
        error,
        m.samples,
        kind,
        m.leftover,
        m.cpu,
    )


# --------------------------------------------------------------------------- a scenario


@dataclass
class ScenarioResult:
    """Everything measured for one scenario, plus what it was measured against."""

    name: str
    spec: dict[str, object]
    totals: dict[str, object]
    ideal: float
    workers: int
    runs: list[RunResult] = field(default_factory=list)  # timed: wall times only
    mem_runs: list[RunResult] = field(default_factory=list)  # untimed: memory peaks
    warmup: list[RunResult] = field(default_factory=list)
    mem_reps: int = 0

    def all_runs(self) -> list[RunResult]:
        return self.warmup + self.runs + self.mem_runs


def byte_compile_aqe(aqe_script: str) -> None:
    """Byte-compile aqe's own package, as pip does when it installs a wheel.

    The dev venv installs aqe editable, and with ``PYTHONDONTWRITEBYTECODE=1`` its
    modules would be compiled from source on every run (~0.1 s), a cost that pytest
    and xdist, installed normally, never pay. ``compileall`` writes the bytecode
    next to the sources (git-ignored ``__pycache__``), exactly what an install does.
    """
    python = Path(aqe_script).with_name("python")
    if not python.exists():
        return
    where = subprocess.run(
        [str(python), "-c", "import aqe, os; print(os.path.dirname(aqe.__file__))"],
        capture_output=True,
        text=True,
        check=False,
    )
    package = where.stdout.strip()
    if where.returncode == 0 and package:
        subprocess.run([str(python), "-m", "compileall", "-q", package], check=False)


def warm_up(
    tools: dict[str, Tool], suite: Path, expected_rc: int, settings: Settings, report_dir: Path
) -> list[RunResult]:
    """Untimed preparation shared by all tools.

    A collect-only pytest pass lets pytest write its assertion-rewrite cache when
    bytecode writing is enabled, so the first timed serial run is not the only one
    paying for it.  aqe gets one full run so the timed "re-run" has history.
    """
    pytest_collect = [settings.pytest, "-q", "-p", "no:cacheprovider", "--collect-only", "."]
    run_command(pytest_collect, suite, settings.timeout)
    if any(key.startswith("aqe") for key in tools):
        byte_compile_aqe(settings.aqe)
    results = []
    if "aqe-rerun" in tools:
        clear_aqe_state(suite)
        tool = tools["aqe-rerun"]
        results.append(
            run_tool(tool, suite, -1, expected_rc, settings.timeout, report_dir, "warmup")
        )
    return results


def describe_run(run: RunResult, label: str, reps: int, expected_tests: int) -> str:
    """Progress line for one run, flagging failures and wrong test counts immediately."""
    if run.kind == "memory":
        line = (
            f"  mem {run.rep + 1}/{reps} {label:<22} "
            f"{(run.peak_rss_kib or 0) / 1024:7.1f} MiB RSS "
            f"{(run.peak_pss_kib or 0) / 1024:7.1f} MiB PSS "
            f"({run.samples} samples, untimed)  tests={run.tests}"
        )
    else:
        cpu = "" if run.cpu is None else f" (cpu {run.cpu:6.2f} s)"
        line = f"  rep {run.rep + 1}/{reps} {label:<22} {run.wall:7.2f} s{cpu}  tests={run.tests}"
    if run.leftover:
        line += f"  (left {run.leftover} process(es) running after exit: killed)"
    if not run.ok:
        return f"{line}  FAILED {run.error}"
    if run.tests != expected_tests:
        return f"{line}  !!! TEST COUNT MISMATCH (manifest: {expected_tests})"
    return line


def should_skip(tool: str, runs: list[RunResult]) -> bool:
    """Stop retrying a tool that has failed and never succeeded (e.g. aqe not built yet):
    it would only burn time on a loaded machine and cannot produce a median anyway."""
    mine = [r for r in runs if r.tool == tool]
    return bool(mine) and not any(r.ok for r in mine)


def run_scenario(
    spec: SuiteSpec | ShapeSpec,
    tool_keys: list[str],
    settings: Settings,
    log: Callable[[str], None],
) -> ScenarioResult:
    """Generate the suite, warm up, time all tools round-robin for ``reps`` rounds, then
    measure their memory round-robin for ``mem_reps`` separate, untimed rounds."""
    if isinstance(spec, ShapeSpec):
        suite = spec.generate((settings.suites_dir / spec.name).resolve())
    else:
        suite = generate_suite(spec, settings.suites_dir / spec.name)
    manifest = load_manifest(suite)
    totals = manifest["totals"]
    assert isinstance(totals, dict)
    expected_rc = 1 if totals["n_expected_failures"] else 0
    expected_tests = int(totals["n_tests"])
    result = ScenarioResult(
        spec.name,
        asdict(spec),
        totals,
        ideal_bound(manifest, settings.workers),
        settings.workers,
        mem_reps=settings.mem_reps,
    )
    with tempfile.TemporaryDirectory(prefix="aqe-bench-") as tmp:
        report_dir = Path(tmp)
        tools = {k: v for k, v in build_tools(settings, report_dir).items() if k in tool_keys}
        result.warmup = warm_up(tools, suite, expected_rc, settings, report_dir)
        for kind, reps, runs in (
            ("timed", settings.reps, result.runs),
            ("memory", settings.mem_reps, result.mem_runs),
        ):
            for rep in range(reps):
                for key in tool_keys:
                    if should_skip(key, result.all_runs()):
                        continue
                    run = run_tool(
                        tools[key], suite, rep, expected_rc, settings.timeout, report_dir, kind
                    )
                    runs.append(run)
                    log(describe_run(run, tools[key].label, reps, expected_tests))
    return result


# --------------------------------------------------------------------------- analysis


def medians(result: ScenarioResult, tool: str) -> tuple[float | None, float | None, float | None]:
    """(median wall s over successful timed runs, median peak RSS KiB and median peak PSS
    KiB over successful memory runs); each None if there is no such run."""
    timed = [r.wall for r in result.runs if r.tool == tool and r.ok]
    mem = [r for r in result.mem_runs if r.tool == tool and r.ok]
    rss = [r.peak_rss_kib for r in mem if r.peak_rss_kib is not None]
    pss = [r.peak_pss_kib for r in mem if r.peak_pss_kib is not None]
    return (
        statistics.median(timed) if timed else None,
        statistics.median(rss) if rss else None,
        statistics.median(pss) if pss else None,
    )


def ratios(result: ScenarioResult) -> dict[str, float | None]:
    """aqe relative to xdist, serial and the ideal bound, for wall time and memory."""
    med = {t: medians(result, t) for t in TOOL_ORDER}

    def ratio(a: str, b: str, index: int) -> float | None:
        ma, mb = med.get(a), med.get(b)
        va = ma[index] if ma else None
        vb = mb[index] if mb else None
        if va is None or vb is None or vb <= 0:
            return None
        return va / vb

    out: dict[str, float | None] = {}
    for mode, tool in (("first", "aqe-first"), ("rerun", "aqe-rerun")):
        out[f"{mode}/xdist"] = ratio(tool, "xdist", 0)
        out[f"{mode}/serial"] = ratio(tool, "serial", 0)
        out[f"{mode}/split"] = ratio(tool, "split", 0)
        wall = med[tool][0] if tool in med else None
        out[f"{mode}/ideal"] = wall / result.ideal if wall and result.ideal > 0 else None
        out[f"{mode}/xdist mem"] = ratio(tool, "xdist", 1)
        out[f"{mode}/xdist pss"] = ratio(tool, "xdist", 2)
    return out


def total(result: ScenarioResult, key: str) -> float:
    """A numeric field of the manifest's totals."""
    value = result.totals[key]
    assert isinstance(value, (int, float))
    return float(value)


def count_problems(result: ScenarioResult) -> list[str]:
    """Every way the tools disagree on how many tests they ran.

    Only runs that exited as expected are checked (timed and memory runs alike): a
    crashed tool is reported as a failure, not as a count mismatch."""
    expected = int(total(result, "n_tests"))
    good = [r for r in result.runs + result.mem_runs if r.ok]
    problems = []
    for run in good:
        where = f"{run.tool} {'rep' if run.kind == 'timed' else 'mem rep'} {run.rep + 1}"
        if run.tests is None:
            problems.append(f"{where}: could not determine test count")
        elif run.tests != expected:
            problems.append(f"{where}: ran {run.tests} tests, manifest has {expected}")
    seen = {r.tests for r in good if r.tests is not None}
    if len(seen) > 1:
        problems.append(f"tools disagree on the number of tests: {sorted(seen)}")
    return problems


def evaluate_bars(result: ScenarioResult) -> list[tuple[Bar, float | None, str]]:
    """(bar, measured ratio, PASS/FAIL/N/A) for this scenario's bars and the memory bars;
    the memory bars' verdict is "not measured" when memory runs were switched off."""
    measured = ratios(result)
    verdicts = []
    for bar in BARS.get(result.name.removesuffix("-quick"), []) + MEMORY_BARS:
        value = measured.get(bar.metric)
        verdict = "N/A" if value is None else ("PASS" if value <= bar.limit else "FAIL")
        if bar in MEMORY_BARS and result.mem_reps == 0:
            verdict = "not measured"
        verdicts.append((bar, value, verdict))
    return verdicts


# --------------------------------------------------------------------------- reporting


def fmt_ratio(value: float | None) -> str:
    return "    n/a" if value is None else f"{value:6.3f}x"


def fmt_mib(kib: float | None, missing: str) -> str:
    return missing if kib is None else f"{kib / 1024:9.1f} MiB"


def fmt_cpu(runs: list[RunResult]) -> str:
    """Median CPU seconds of the runs (user + system, the whole process tree)."""
    cpu = [r.cpu for r in runs if r.cpu is not None]
    return f"{statistics.median(cpu):7.2f} s" if cpu else "-"


def tool_rows(result: ScenarioResult, labels: dict[str, str]) -> list[str]:
    """One table row per tool: timed runs ok, median/min/max wall (timed runs), median
    peak memory and memory runs ok (memory runs), test counts (both)."""
    rows = [
        f"  {'tool':<22} {'ok/runs':>7} {'wall median':>11} {'[min - max]':>17} "
        f"{'peak RSS med':>13} {'peak PSS med':>13} {'mem ok':>6} {'tests':>6} {'cpu med':>9}"
    ]
    for tool in TOOL_ORDER:
        if tool not in labels:
            continue
        mine = [r for r in result.runs if r.tool == tool]
        good = [r for r in mine if r.ok]
        wall, rss, pss = medians(result, tool)
        if wall is None:
            warm = [r for r in result.warmup if r.tool == tool]
            failed = next((r for r in warm + mine if not r.ok), None)
            why = "not run" if failed is None else failed.error[:110]
            if failed is not None and failed.rep < 0:
                why = f"(warm-up) {why}"
            rows.append(f"  {labels[tool]:<22} {len(good)}/{len(mine):<5} FAILED: {why}")
            continue
        mem_mine = [r for r in result.mem_runs if r.tool == tool]
        mem_good = [r for r in mem_mine if r.ok]
        no_mem = "failed" if mem_mine else "-"
        walls = [r.wall for r in good]
        tests = sorted({r.tests for r in good + mem_good}, key=lambda t: -1 if t is None else t)
        mem_ok = f"{len(mem_good)}/{len(mem_mine)}" if mem_mine else "-"
        rows.append(
            f"  {labels[tool]:<22} {len(good)}/{len(mine):<5} {wall:9.2f} s "
            f"[{min(walls):6.2f} - {max(walls):6.2f}] {fmt_mib(rss, no_mem):>13} "
            f"{fmt_mib(pss, no_mem):>13} "
            f"{mem_ok:>6} {','.join(str(t) for t in tests):>6} {fmt_cpu(good):>9}"
        )
    return rows


def ratio_rows(result: ScenarioResult) -> list[str]:
    """aqe ratios side by side for first-run and re-run."""
    r = ratios(result)
    rows = [f"  {'ratio':<28} {'first-run':>9} {'re-run':>9}"]
    for label, key in (
        ("aqe / xdist (wall)", "xdist"),
        ("aqe / serial (wall)", "serial"),
        ("aqe / split (wall, info)", "split"),
        ("aqe / ideal (wall)", "ideal"),
        ("aqe / xdist (peak RSS)", "xdist mem"),
        ("aqe / xdist (peak PSS, info)", "xdist pss"),
    ):
        rows.append(
            f"  {label:<28} {fmt_ratio(r[f'first/{key}']):>9} {fmt_ratio(r[f'rerun/{key}']):>9}"
        )
    return rows


def split_rows(result: ScenarioResult) -> list[str]:
    """The ``split`` reference against xdist and serial, when it was measured."""
    split = medians(result, "split")[0]
    if split is None:
        return []
    line = "  reference:"
    for other in ("xdist", "serial"):
        base = medians(result, other)[0]
        line += f" split / {other} {fmt_ratio(split / base if base else None).strip()}"
    return ["", line]


def render_scenario(result: ScenarioResult, labels: dict[str, str]) -> str:
    """The human-readable block for one scenario."""

    def t(key: str) -> float:
        return total(result, key)

    lines = [
        f"== {result.name}: {t('n_tests'):.0f} tests in {t('n_files'):.0f} files; "
        f"total test time {t('test_seconds'):.2f} s, longest {t('longest_test_seconds'):.2f} s, "
        f"fixtures {t('fixture_seconds'):.2f} s, imports {t('import_seconds'):.2f} s",
        f"   ideal bound max(longest, total/{result.workers}) = {result.ideal:.2f} s",
        *tool_rows(result, labels),
        "",
        *ratio_rows(result),
        *split_rows(result),
        "",
        "  bars:",
    ]
    for bar, value, verdict in evaluate_bars(result):
        if verdict == "not measured":
            lines.append(f"    {'-':<4}  {bar.label:<40} not measured (--mem-reps 0)")
        else:
            lines.append(f"    {verdict:<4}  {bar.label:<40} measured {fmt_ratio(value)}")
    lingering = [r for r in result.all_runs() if r.leftover]
    if lingering:
        lines += [
            "",
            f"  note: {len(lingering)} run(s) left processes running after the command exited "
            f"(killed; not timed): {', '.join(sorted({r.tool for r in lingering}))}",
        ]
    problems = count_problems(result)
    if problems:
        lines += ["", "  !!!!!!!! TEST COUNT MISMATCH !!!!!!!!"]
        lines += [f"  !!! {p}" for p in problems]
    return "\n".join(lines)


def environment() -> dict[str, object]:
    """Facts that change the numbers and must travel with them."""
    return {
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", "<unset>"),
        "PYTEST_ADDOPTS": os.environ.get("PYTEST_ADDOPTS", "<unset>"),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "versions": tool_versions(),
    }


def tool_versions() -> dict[str, str]:
    """Installed versions of the contenders, or 'missing'."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in ("pytest", "pytest-xdist", "aqe"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "missing"
    return found


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="scenario to run (repeatable; default: all)",
    )
    p.add_argument(
        "--reps",
        type=int,
        default=None,
        help="interleaved repetitions (default 5, or 2 with --quick)",
    )
    p.add_argument(
        "--mem-reps",
        type=int,
        default=2,
        help="separate, untimed interleaved rounds that sample peak memory (default 2; "
        "0 = no memory measurement)",
    )
    p.add_argument("--quick", action="store_true", help="tiny suites for a smoke run")
    p.add_argument(
        "--tools",
        default=",".join(TOOL_ORDER),
        help=f"comma-separated subset of {','.join(TOOL_ORDER)}",
    )
    p.add_argument("--workers", type=int, default=2, help="workers for xdist and aqe")
    p.add_argument("--timeout", type=float, default=600.0, help="per-run timeout, seconds")
    p.add_argument("--suites-dir", type=Path, default=DEFAULT_SUITES_DIR)
    p.add_argument("--aqe", default=None, help="aqe executable (default: next to this python)")
    p.add_argument("--pytest", default=None, help="pytest executable (default: next to python)")
    p.add_argument(
        "--aqe-json",
        action="store_true",
        help="count aqe's tests from its --json report instead of its summary line",
    )
    p.add_argument("--json-out", type=Path, default=None, help="save raw measurements here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios; exit 1 only if tools disagree on the test count."""
    args = parse_args(argv)
    tool_keys = [t for t in TOOL_ORDER if t in args.tools.split(",")]
    if not tool_keys:
        print(f"no known tools in --tools {args.tools!r}", file=sys.stderr)
        return 2
    settings = Settings(
        reps=args.reps if args.reps is not None else (2 if args.quick else 5),
        mem_reps=max(args.mem_reps, 0),
        workers=args.workers,
        timeout=args.timeout,
        suites_dir=args.suites_dir,
        pytest=args.pytest or find_script("pytest"),
        aqe=args.aqe or find_script("aqe"),
        aqe_json=args.aqe_json,
    )
    env = environment()
    print(
        f"PYTHONDONTWRITEBYTECODE={env['PYTHONDONTWRITEBYTECODE']}  "
        f"PYTEST_ADDOPTS={env['PYTEST_ADDOPTS']}  python {env['python']}  cpus {env['cpus']}  "
        f"loadavg {env['loadavg_at_start']}  versions {env['versions']}"
    )
    print(
        f"reps={settings.reps} (interleaved: {', '.join(tool_keys)})  "
        f"mem-reps={settings.mem_reps} (separate, untimed)  workers={args.workers}  "
        f"quick={args.quick}"
    )

    labels = {k: TOOL_LABELS[k].format(w=args.workers) for k in tool_keys}
    results = []
    for name in args.scenario or list(SCENARIOS):
        scenario = SCENARIOS[name]
        spec = scenario.quick if args.quick else scenario.full
        print(f"\n-- running {spec.name} ({scenario.description})", flush=True)
        print(f"   {describe_spec(spec)}", flush=True)
        results.append(run_scenario(spec, tool_keys, settings, lambda s: print(s, flush=True)))

    print()
    for result in results:
        print(render_scenario(result, labels))
        print()
    print(
        f"PYTHONDONTWRITEBYTECODE={env['PYTHONDONTWRITEBYTECODE']} "
        "(affects pytest's collection cost; reported, not changed)"
    )

    if args.json_out:
        save_json(args.json_out, env, settings, results)
        print(f"raw measurements written to {args.json_out}")
    mismatched = [r.name for r in results if count_problems(r)]
    if mismatched:
        print(
            f"!!! TEST COUNT MISMATCH in {', '.join(mismatched)}: timings are not comparable "
            "(details above)",
            file=sys.stderr,
        )
    return 1 if mismatched else 0


def save_json(
    path: Path, env: dict[str, object], settings: Settings, results: list[ScenarioResult]
) -> None:
    """Raw per-run measurements plus derived ratios and verdicts, for later analysis."""
    payload = {
        "environment": env,
        "settings": asdict(settings),
        "scenarios": [
            {
                **asdict(r),
                "ratios": ratios(r),
                "bars": [
                    {
                        "label": b.label,
                        "metric": b.metric,
                        "limit": b.limit,
                        "value": v,
                        "verdict": verdict,
                    }
                    for b, v, verdict in evaluate_bars(r)
                ],
                "count_problems": count_problems(r),
            }
            for r in results
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
