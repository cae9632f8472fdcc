r"""Interrupt ``aqe run`` at random moments; nothing may be left behind or lost.

Each round starts ``aqe run -w 2`` on a small generated suite (sleeping tests, so the
signal can land in start-up, collection, the middle of the run or its end), sends
SIGINT (and, every third round, a second signal right after it) at a seeded random
moment, and then checks:

* aqe exited (with 2, or with 0/1 if the run had already ended) within a bounded time;
* no process aqe started is alive: every test writes its worker's pid to a file, and
  none of those pids may still exist;
* the history database passes ``PRAGMA integrity_check``;
* the history holds every test result of the run that the JSON report holds, and the
  JSON report was written.

Usage::

    python benchmarks/interrupt.py              # 50 rounds, seed 1
    python benchmarks/interrupt.py --rounds 10 --seed 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

SUITE = Path(__file__).resolve().parent / "_suites" / "interrupt"


def generate(root: Path, files: int = 6, tests: int = 12) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "conftest.py").write_text(
        "import os\nfrom pathlib import Path\n\nimport pytest\n\n\n"
        "@pytest.fixture(autouse=True)\n"
        "def _note_pid():\n"
        "    Path(os.environ['PIDS_DIR'], str(os.getpid())).touch()\n"
        "    yield\n"
    )
    for number in range(files):
        body = "\n".join(
            f"def test_{number}_{i}():\n    time.sleep({0.02 + 0.01 * (i % 5):.2f})\n"
            for i in range(tests)
        )
        (root / f"test_int_{number}.py").write_text("import time\n\n" + body)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def one_round(aqe: str, rng: random.Random, scratch: Path, number: int) -> list[str]:
    pids = scratch / f"pids-{number}"
    pids.mkdir()
    history = scratch / f"history-{number}.db"
    report = scratch / f"report-{number}.json"
    proc = subprocess.Popen(
        [aqe, "run", "-w", "2", "-q", "--history", str(history), "--json", str(report)],
        cwd=SUITE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "CI": "true", "PIDS_DIR": str(pids)},
    )
    delay = rng.uniform(0.05, 2.2)
    twice = number % 3 == 2
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    if twice:
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    problems: list[str] = []
    try:
        output, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        problems.append("aqe did not exit within 30 s of the signal")
    where = f"round {number} (signal at {delay:.2f} s{', twice' if twice else ''})"
    if proc.returncode not in (0, 1, 2):
        problems.append(f"exit code {proc.returncode}: {output.strip().splitlines()[-1:]}")
    if "Traceback" in output:
        problems.append("a traceback was printed")
    time.sleep(0.1)  # let the kernel reap what was killed
    left = [int(p.name) for p in pids.iterdir() if alive(int(p.name))]
    if left:
        problems.append(f"worker processes still alive: {left}")
    if history.exists():
        with sqlite3.connect(history) as db:
            check = db.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            # Interrupted while aqe created the file: no schema yet, nothing stored.
            stored = (
                db.execute("SELECT count(*) FROM results").fetchone()[0]
                if "results" in tables
                else 0
            )
        if check != "ok":
            problems.append(f"history integrity_check: {check}")
    else:
        stored = 0
    if report.exists():
        reported = len(json.loads(report.read_text())["tests"])
        if stored != reported:
            problems.append(f"history holds {stored} results, the JSON report {reported}")
    elif proc.returncode == 2 and "aqe run" in output:
        problems.append("no JSON report written")
    return [f"{where}: {problem}" for problem in problems]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--aqe", default=str(Path(sys.executable).with_name("aqe")))
    args = parser.parse_args()
    generate(SUITE)
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"aqe-interrupt-{os.getpid()}"
    scratch.mkdir(parents=True)
    rng = random.Random(args.seed)
    problems: list[str] = []
    for number in range(args.rounds):
        problems += one_round(args.aqe, rng, scratch, number)
    for problem in problems:
        print(problem)
    print(
        f"interrupt: {args.rounds} rounds, seed {args.seed}: "
        + ("no problem" if not problems else f"{len(problems)} problems")
    )
    if not problems:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
