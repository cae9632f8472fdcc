r"""Flakiness benchmark: does ``aqe flaky`` find the flaky tests, and only those?

A synthetic project with known ground truth, in a git repository, is run by
``aqe run`` over simulated commits; then ``aqe flaky --json`` labels every test and
this script scores the labels. The suite (seeded, generated under a temporary
directory):

* stable passing tests and stable failing tests (controls);
* flaky tests that fail with a known probability p, for p from 0.01 to 0.5 (each test
  draws from a generator seeded by the run number and its name, so a run is
  reproducible);
* timing races: a worker thread and the test race for a shared value with a random
  sleep; they fail when the thread loses (about p = 0.2);
* a leak: a test that grows a module-level list with probability 0.3 per run, and a
  later test in the same file that fails when the list is not empty (a victim of a
  random polluter: flaky in effect);
* a real regression introduced at a known commit (fails on every run after it), a
  flaky test fixed at a known commit, and an outage run (every test fails at once,
  as when a database is down).

The commits change every ``--runs-per-commit`` runs (the code a flaky test is judged
on); the outage is run number 12. Ground truth: flaky tests, races, the leak victim
and the fixed test (before its fix) are flaky; controls, the regression and the
outage are not.

It prints precision and recall of the "flaky" label, recall per p next to the oracle
bound (the probability that a test of failure probability p shows both outcomes on
the same code at all: 1 - prod over commits of ((1-p)^k + p^k), k runs per commit),
false quarantines of ``--auto-quarantine`` and the retries spent with ``--retries``.
Bars: precision >= 0.95; recall >= 0.90 of the oracle bound for p >= 0.05; no
regression, stable failing test or outage ever labelled flaky or quarantined.

Usage::

    python benchmarks/flaky.py                  # 20 runs, 4 per commit
    python benchmarks/flaky.py --runs 30 --runs-per-commit 5 --retries 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PROBABILITIES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
PER_P = 20
STABLE = 60
FAILING = 5
RACES = 4
REGRESSION_AT = 3  # commit number
FIX_AT = 3
OUTAGE_RUN = 12

CONFTEST = '''\
import os
import random

import pytest


@pytest.fixture
def rng(request):
    """A generator seeded by the run, the test and its attempt: runs are reproducible,
    and a retry draws again."""
    key = f"{os.environ['FLAKYSIM_RUN']}:{request.node.nodeid}"
    marks = os.path.join(os.environ["FLAKYSIM_STATE"], key.replace("/", "_").replace(":", "_"))
    with open(marks, "a+") as stream:
        stream.write(".")
        stream.seek(0)
        attempt = len(stream.read())
    return random.Random(f"{key}:{attempt}")


@pytest.fixture(autouse=True)
def outage():
    if os.environ.get("FLAKYSIM_OUTAGE") == "1":
        raise ConnectionError("database unreachable (simulated outage)")
'''

APP = """\
def price(amount):
    return round(amount * 1.2, 2)
"""

APP_BROKEN = """\
def price(amount):
    return round(amount * 1.25, 2)
"""


def generate(root: Path) -> dict[str, dict[str, Any]]:
    """Write the suite; return node id -> {"kind", "p"} (the ground truth)."""
    truth: dict[str, dict[str, Any]] = {}
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    # The quarantine the runs write is kept out of the commits: the code a run ran
    # changes only with the simulated commits.
    (root / ".gitignore").write_text("/.aqe/\n__pycache__/\n")
    (root / "conftest.py").write_text(CONFTEST)
    (root / "app.py").write_text(APP)
    lines = []
    for i in range(STABLE):
        lines += [f"def test_stable_{i:02d}():", f"    assert {i} + 1 == {i + 1}", ""]
        truth[f"test_stable.py::test_stable_{i:02d}"] = {"kind": "stable", "p": 0.0}
    (root / "test_stable.py").write_text("\n".join(lines))
    lines = []
    for i in range(FAILING):
        lines += [f"def test_failing_{i}():", "    assert 1 + 1 == 3", ""]
        truth[f"test_failing.py::test_failing_{i}"] = {"kind": "failing", "p": 1.0}
    (root / "test_failing.py").write_text("\n".join(lines))
    lines = []
    for p in PROBABILITIES:
        for j in range(PER_P):
            name = f"test_p{int(p * 100):02d}_{j}"
            lines += [f"def {name}(rng):", f"    assert rng.random() >= {p}", ""]
            truth[f"test_flaky.py::{name}"] = {"kind": "flaky", "p": p}
    (root / "test_flaky.py").write_text("\n".join(lines))
    lines = ["import threading", "import time", ""]
    for i in range(RACES):
        lines += [
            f"def test_race_{i}(rng):",
            "    box = []",
            "    delay = rng.random() * 0.01",
            "    worker = threading.Thread(target=lambda: (time.sleep(delay), box.append(1)))",
            "    worker.start()",
            "    time.sleep(0.008)",
            "    assert box, 'the worker thread lost the race'",
            "    worker.join()",
            "",
        ]
        truth[f"test_races.py::test_race_{i}"] = {"kind": "race", "p": 0.2}
    (root / "test_races.py").write_text("\n".join(lines))
    (root / "test_leak.py").write_text(
        "CACHE = []\n\n"
        "def test_polluter(rng):\n"
        "    if rng.random() < 0.3:\n"
        "        CACHE.append('left behind')\n\n"
        "def test_victim():\n"
        "    assert not CACHE, 'state left by test_polluter'\n"
    )
    truth["test_leak.py::test_polluter"] = {"kind": "stable", "p": 0.0}
    truth["test_leak.py::test_victim"] = {"kind": "leak-victim", "p": 0.3}
    lines = ["from app import price", ""]
    for amount in (10, 20, 50):
        lines += [
            f"def test_price_{amount}():",
            f"    assert price({amount}) == {amount * 1.2}",
            "",
        ]
        truth[f"test_regression.py::test_price_{amount}"] = {"kind": "regression", "p": 0.0}
    (root / "test_regression.py").write_text("\n".join(lines))
    (root / "test_fixed.py").write_text("def test_fixed(rng):\n    assert rng.random() >= 0.3\n")
    truth["test_fixed.py::test_fixed"] = {"kind": "fixed-flaky", "p": 0.3}
    return truth


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def commit(root: Path, number: int) -> None:
    if number == REGRESSION_AT:
        (root / "app.py").write_text(APP_BROKEN)
    if number == FIX_AT:
        (root / "test_fixed.py").write_text("def test_fixed(rng):\n    assert True\n")
    (root / "CHANGELOG").write_text(f"commit {number}\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", f"commit {number}")


def aqe(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "aqe", *args],
        cwd=root,
        env={**clean, "CI": "true", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def oracle(p: float, groups: list[int]) -> float:
    """Chance that a test failing with probability p passes and fails on one code version."""
    none = 1.0
    for k in groups:
        if k:  # a commit whose only run was the outage shows nothing
            none *= (1 - p) ** k + p**k
    return 1 - none


def simulate(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aqe-flaky-") as scratch:
        tmp = args.keep or scratch
        root = Path(tmp) / "project"
        root.mkdir()
        truth = generate(root)
        with (root / "pyproject.toml").open("a") as stream:
            stream.write(
                "\n[tool.aqe]\nauto_quarantine = true\nquarantine_threshold = 0.05\n"
                "quarantine_min_runs = 5\n"
            )
        _git(root, "init", "-q")
        commit(root, 0)
        groups: list[int] = []
        spent = 0
        quarantined_after: set[str] = set()
        for run in range(args.runs):
            if run and run % args.runs_per_commit == 0:
                commit(root, run // args.runs_per_commit)
            if not groups or run % args.runs_per_commit == 0:
                groups.append(0)
            state = Path(tmp) / "state"
            state.mkdir(exist_ok=True)
            env = {"FLAKYSIM_RUN": f"{args.seed}:{run}", "FLAKYSIM_STATE": str(state)}
            if run == OUTAGE_RUN:
                env["FLAKYSIM_OUTAGE"] = "1"
            else:
                groups[-1] += 1
            report = Path(tmp) / f"run{run}.json"
            extra = ["--retries", str(args.retries)] if args.retries else []
            result = aqe(root, "run", "-w", "2", "--json", str(report), *extra, env=env)
            if result.returncode not in (0, 1):
                raise SystemExit(f"run {run}: aqe exited {result.returncode}\n{result.stderr}")
            tests = json.loads(report.read_text())["tests"]
            spent += sum(1 for t in tests if t["attempt"] > 1)
        verdicts = json.loads(aqe(root, "flaky", "--json", "--all").stdout)["tests"]
        listing = json.loads(aqe(root, "quarantine", "list", "--json").stdout)["tests"]
        quarantined_after = {t["nodeid"] for t in listing}
    labels = {v["nodeid"]: v["label"] for v in verdicts}
    return {"truth": truth, "labels": labels, "groups": groups, "spent": spent,
            "quarantined": sorted(quarantined_after)}  # fmt: skip


def score(data: dict[str, Any]) -> tuple[list[str], bool]:
    truth, labels, groups = data["truth"], data["labels"], data["groups"]
    flaky_kinds = {"flaky", "race", "leak-victim", "fixed-flaky"}
    actual = {n for n, t in truth.items() if t["kind"] in flaky_kinds and t["p"] > 0}
    said = {n for n, label in labels.items() if label == "flaky"}
    tp, fp = len(actual & said), sorted(said - actual)
    precision = tp / len(said) if said else 1.0
    lines = [
        f"runs {sum(groups) + 1} ({len(groups)} commits, runs per commit {groups}, 1 outage)",
        f"labelled flaky: {len(said)}, truly flaky among them: {tp}, "
        f"precision {precision:.3f} (bar 0.95)",
    ]
    if fp:
        lines.append(f"  false flaky: {fp}")
    ok = precision >= 0.95
    lines.append(f"{'p':>5} {'tests':>5} {'found':>5} {'recall':>6} {'oracle':>6} {'ratio':>6}")
    found_sum = oracle_sum = 0.0
    for p in PROBABILITIES:
        names = [n for n, t in truth.items() if t["kind"] == "flaky" and t["p"] == p]
        found = sum(n in said for n in names)
        bound = oracle(p, groups)
        ratio = (found / len(names)) / bound if bound else float("nan")
        if p >= 0.05:
            found_sum += found
            oracle_sum += bound * len(names)
        lines.append(
            f"{p:5.2f} {len(names):5d} {found:5d} {found / len(names):6.2f} "
            f"{bound:6.2f} {ratio:6.2f}"
        )
    if oracle_sum:
        overall = found_sum / oracle_sum
        lines.append(
            f"recall for p >= 0.05 as a share of the oracle bound: {overall:.3f} (bar 0.90)"
        )
        ok &= overall >= 0.90
    else:
        lines.append(
            "oracle bound 0: no two runs on the same code; only retries can find flakiness"
        )
    other = {k: [n for n, t in truth.items() if t["kind"] == k] for k in ("race", "leak-victim")}
    for kind, names in other.items():
        lines.append(f"{kind}: {sum(n in said for n in names)}/{len(names)} labelled flaky")
    never = [n for n, t in truth.items() if t["kind"] in ("regression", "failing", "stable")]
    wrong = [n for n in never if labels.get(n) == "flaky" or n in data["quarantined"]]
    regressions = [n for n, t in truth.items() if t["kind"] == "regression"]
    lines.append(
        "regression tests labelled "
        + ", ".join(sorted({str(labels.get(n)) for n in regressions}))
        + f"; quarantined: {sum(n in data['quarantined'] for n in regressions)}"
    )
    false_q = [n for n in data["quarantined"] if n not in actual]
    lines.append(
        f"auto-quarantined {len(data['quarantined'])}, of which not truly flaky: {len(false_q)}"
        + (f" {false_q}" if false_q else "")
    )
    lines.append(f"retries spent: {data['spent']}")
    ok &= not wrong and all(labels.get(n) == "broken" for n in regressions)
    if wrong:
        lines.append(f"WRONG: labelled flaky or quarantined: {wrong}")
    return lines, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--runs-per-commit", type=int, default=4)
    parser.add_argument("--retries", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", metavar="DIR", help="Build the project in DIR (kept).")
    args = parser.parse_args()
    random.seed(args.seed)
    data = simulate(args)
    lines, ok = score(data)
    print("\n".join(lines))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
