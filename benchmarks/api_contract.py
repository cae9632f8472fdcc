r"""``aqe generate api`` against Schemathesis on an API with seeded bugs, side by side.

The API is ``benchmarks/api_contract_data/buggy_app.py``: ``examples/api-demo/app.py``
with 14 bugs that ``SEEDED_BUGS`` turns on (none by default: then it answers as the demo
does). Both tools read only ``examples/api-demo/openapi.yaml``, the correct app's
description, and talk HTTP to a uvicorn server of the app (a fresh server per tool run).

For the correct app and then each bug alone (the tools' order alternating run by run):

* aqe: ``aqe generate api SPEC --base-url URL --out TMP [--explore --budget B]``, then
  ``aqe run -w 2 -q`` on the written suite (``API_BASE_URL``, ``API_KEY`` set); a bug is
  found when that run fails (exit 1). On the correct app, the suite is run twice: any
  failure is a false alarm.
* Schemathesis: ``st run SPEC --url URL -H 'X-API-Key: KEY' --max-time B`` with its
  default checks and phases (examples, coverage, fuzzing, stateful); found when it exits
  non-zero. On the correct app, a non-zero exit is a false alarm.

Each bug is alone on its server, so a failure names it: no attribution by message. Wall
time is each tool's whole work (aqe: generate + run; Schemathesis: ``st run``).

"The same time budget": ``--st-budget`` (default ``--budget``) is Schemathesis'
``--max-time``. At 15 s on a loaded machine its examples and coverage phases use all of
it and fuzzing and stateful testing never start, so give it aqe's wall time per run
(about 60 s under load) to compare like for like; ``--tools st`` runs Schemathesis alone.
Bar (issue 21): aqe finds every bug Schemathesis finds and at least 10 of the 12+, with 0
false alarms and its suite green twice on the correct app. Exit status 1 when it fails.

    python benchmarks/api_contract.py --st /path/to/venv/bin/st [--budget 20] [--bugs a,b]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "api_contract_data"
SPEC = HERE.parent / "examples" / "api-demo" / "openapi.yaml"
KEY = "bench-key"

#: Seeded bug -> its kind (what the issue lists), for the table.
BUGS = {
    "edge500": "500 on an edge value (quote quantity=100)",
    "enum500": "500 on an unknown enum value (category)",
    "optional500": "500 when an optional field is left out (tags)",
    "malformed500": "500 on a malformed JSON body (orders)",
    "schema": "response violates its schema (stats.total_value a string)",
    "content_type": "wrong content type (health as text/plain)",
    "validation": "missing validation accepts a bad body (price <= 0)",
    "max_length": "valid body rejected (name at maxLength 50: 422)",
    "wrong_status": "wrong status code (order created: 200, not 201)",
    "undocumented": "undocumented status (update of a missing item: 400)",
    "delete": "broken delete leaves the resource",
    "auth": "auth check missing on one operation (delete)",
    "update_lost": "update answered but not stored",
    "readback": "created item read back changed (name upper-cased)",
}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(bugs: str) -> Iterator[str]:
    """A uvicorn server of the app with ``bugs`` on; stopped (its group) however we leave."""
    port = _port()
    env = {**os.environ, "SEEDED_BUGS": bugs, "DEMO_API_KEY": KEY}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "buggy_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=DATA,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start (bugs {bugs!r})")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str]:
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        return -1, "timed out"
    return done.returncode, done.stdout + done.stderr


def run_aqe(url: str, budget: float, explore: bool, runs: int) -> tuple[list[int], float, str]:
    """(exit codes of the runs of the written suite, wall seconds, output)."""
    aqe = shutil.which("aqe", path=str(Path(sys.executable).parent)) or "aqe"
    env = {**os.environ, "API_KEY": KEY, "API_BASE_URL": url}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aqe-api-bench-") as tmp:
        out = Path(tmp) / "tests"
        command = [
            aqe,
            "generate",
            "api",
            str(SPEC),
            "--base-url",
            url,
            "--out",
            str(out),
            "--report",
        ]
        if explore:
            command += ["--explore", "--budget", str(budget)]
        code, text = _run(command, Path(tmp), env, budget * 4 + 120)
        if code != 0:  # the generator failed: an error of the benchmark, not a finding
            raise RuntimeError(f"aqe generate api exited {code}:\n{text[-2000:]}")
        codes = []
        for _ in range(runs):
            code, output = _run(
                [aqe, "run", "-w", "2", "-q", "--no-history", str(out)], Path(tmp), env, 600
            )
            codes.append(code)
            text += output
    return codes, time.monotonic() - started, text


def run_st(st: str, url: str, budget: float) -> tuple[int, float, str]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="st-api-bench-") as tmp:
        code, text = _run(
            [
                st,
                "run",
                str(SPEC),
                "--url",
                url,
                "-H",
                f"X-API-Key: {KEY}",
                "--max-time",
                str(int(budget)),
                "--no-color",
            ],
            Path(tmp),
            {**os.environ, "SCHEMATHESIS_TELEMETRY": "false"},
            budget * 4 + 120,
        )
    return code, time.monotonic() - started, text


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so every server and tool run is stopped on the way out


_ST_OPERATION = re.compile(r"^_{3,} (.+?) _{3,}$")
_ST_CHECK = re.compile(r"^- (ST\d+ .+)$")


def st_failures(text: str) -> set[tuple[str, str]]:
    """(operation, check) of each failure in ``st run``'s report."""
    found, operation = set(), ""
    for line in text.splitlines():
        header = _ST_OPERATION.match(line.strip())
        if header:
            operation = header.group(1)
            continue
        check = _ST_CHECK.match(line.strip())
        if check and operation:
            found.add((operation, check.group(1)))
    return found


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--st", default=shutil.which("st") or "st", help="Schemathesis' st")
    parser.add_argument("--budget", type=float, default=20.0, help="aqe's --explore budget")
    parser.add_argument("--st-budget", type=float, help="st run --max-time (default: --budget)")
    parser.add_argument("--tools", default="aqe,st", help="which to run: aqe,st")
    parser.add_argument("--no-explore", action="store_true", help="aqe without --explore")
    parser.add_argument("--bugs", default=",".join(BUGS), help="comma-separated names")
    parser.add_argument("--log", type=Path, help="write every tool's output here")
    args = parser.parse_args()
    bugs = [b for b in args.bugs.split(",") if b]
    tools = [t for t in ("aqe", "st") if t in args.tools.split(",")]
    st_budget = args.st_budget or args.budget
    if "/" in args.st:
        args.st = str(Path(args.st).resolve())
    log = []
    walls: dict[str, list[float]] = {"aqe": [], "st": []}
    found: dict[str, dict[str, bool]] = {}
    false_alarms = {"aqe": 0, "st": 0}
    baseline: set[tuple[str, str]] = set()
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    for index, bug in enumerate(["", *bugs]):
        order = [t for t in (["aqe", "st"] if index % 2 == 0 else ["st", "aqe"]) if t in tools]
        found[bug] = {}
        for tool in order:
            with server(bug) as url:
                if tool == "aqe":
                    codes, wall, text = run_aqe(
                        url, args.budget, not args.no_explore, 2 if not bug else 1
                    )
                    failed = any(code != 0 for code in codes)
                    detail = f"exit {codes}"
                else:
                    code, wall, text = run_st(args.st, url, st_budget)
                    failures = st_failures(text)
                    if not bug:
                        baseline = failures
                    # Found: a failure the correct app does not give (Schemathesis can
                    # report real quirks of the correct app too; those name no bug).
                    failed = bool(failures - baseline) if bug else code != 0
                    detail = f"exit {code}, {len(failures - baseline if bug else failures)} new"
            walls[tool].append(wall)
            found[bug][tool] = failed
            if not bug and failed:
                false_alarms[tool] += 1
            log.append(f"===== {bug or 'correct'} / {tool}: {detail}, {wall:.1f} s\n{text}")
            print(
                f"{bug or 'correct':14} {tool:4} {'FAIL' if failed else 'pass'} "
                f"({detail}, {wall:.1f} s)",
                flush=True,
            )
    if args.log:
        args.log.write_text("\n".join(log), encoding="utf-8")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    print("\n| seeded bug | kind | aqe | Schemathesis |\n|---|---|---|---|")
    for bug in bugs:
        marks = [
            "n/a" if t not in tools else "found" if found[bug][t] else "-" for t in ("aqe", "st")
        ]
        print(f"| {bug} | {BUGS[bug]} | {marks[0]} | {marks[1]} |")
    totals = {t: sum(found[b].get(t, False) for b in bugs) for t in ("aqe", "st")}
    print(f"| **found** | of {len(bugs)} | **{totals['aqe']}** | **{totals['st']}** |")
    print(
        f"| false alarms on the correct app | | {false_alarms['aqe']} "
        f"(suite run twice) | {false_alarms['st']} |"
    )
    medians = [f"{statistics.median(walls[t]):.1f}" if walls[t] else "n/a" for t in ("aqe", "st")]
    print(f"| wall time per run, median (s) | | {medians[0]} | {medians[1]} |")
    if tools != ["aqe", "st"]:
        return 0
    missed = [b for b in bugs if found[b]["st"] and not found[b]["aqe"]]
    ok = not missed and totals["aqe"] >= min(10, len(bugs)) and false_alarms["aqe"] == 0
    print(
        f"\nbar: {'met' if ok else 'NOT met'}"
        + (f" (Schemathesis found, aqe missed: {', '.join(missed)})" if missed else "")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
