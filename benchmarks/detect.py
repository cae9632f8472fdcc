r"""Active detection benchmark: does ``aqe detect-flaky`` find victims and their polluters?

A synthetic project with known ground truth: ``--pairs`` order-dependent victims,
each with one polluter (a test that leaves a key behind in a shared module that its
victim asserts is absent), spread over files at random; ``--stable`` stable tests;
flaky tests (fail with probability 0.3, whatever the order); brittle tests (pass
only after a setter test ran in the same process). ``aqe detect-flaky --runs N``
judges them; the script scores the verdicts.

Bars: at least 90% of the single-polluter victims found with their polluter
within 10 orders; no stable test called anything else. It also prints the
verdicts of the flaky and brittle tests and the reruns spent.

Usage::

    python benchmarks/detect.py              # 20 pairs, 10 rounds, seed 1
    python benchmarks/detect.py --seed 2 --runs 10
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


def generate(root: Path, args: argparse.Namespace) -> dict[str, dict[str, str]]:
    rng = random.Random(args.seed)
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (root / "state.py").write_text("LEFT = set()\nREADY = set()\n")
    tests: list[tuple[str, str, dict[str, str]]] = []  # (name, body, truth)
    for i in range(args.pairs):
        tests.append((f"test_polluter_{i}", f"    state.LEFT.add({i})", {"kind": "stable"}))
        victim = {"kind": "victim", "polluter": f"test_polluter_{i}"}
        tests.append((f"test_victim_{i}", f"    assert {i} not in state.LEFT", victim))
    for i in range(args.stable):
        tests.append((f"test_stable_{i}", f"    assert {i} + 1 == {i + 1}", {"kind": "stable"}))
    for i in range(args.flaky):
        tests.append((f"test_flaky_{i}", "    assert random.random() >= 0.3", {"kind": "flaky"}))
    for i in range(args.brittle):
        tests.append((f"test_setter_{i}", f"    state.READY.add({i})", {"kind": "stable"}))
        tests.append((f"test_brittle_{i}", f"    assert {i} in state.READY", {"kind": "brittle"}))
    rng.shuffle(tests)
    files = [tests[i :: args.files] for i in range(args.files)]
    truth: dict[str, dict[str, str]] = {}
    names: dict[str, str] = {}
    for number, members in enumerate(files):
        path = f"tests/test_mod{number:02d}.py"
        lines = ["import random", "", "import state", ""]
        for name, body, _ in members:
            lines += [f"def {name}():", body, ""]
            names[name] = f"{path}::{name}"
        (root / path).write_text("\n".join(lines))
        for name, _, fact in members:
            truth[f"{path}::{name}"] = fact
    for fact in truth.values():
        if "polluter" in fact:
            fact["polluter"] = names[fact["polluter"]]
    return truth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--stable", type=int, default=100)
    parser.add_argument("--flaky", type=int, default=5)
    parser.add_argument("--brittle", type=int, default=3)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aqe-detect-") as tmp:
        root = Path(tmp) / "project"
        truth = generate(root, args)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_"))}
        result = subprocess.run(
            [sys.executable, "-m", "aqe", "detect-flaky", "--runs", str(args.runs),
             "--seed", str(args.seed), "-w", str(args.workers), "--json"],
            cwd=root, env={**env, "CI": "true"}, capture_output=True, text=True, timeout=1800,
            check=False,
        )  # fmt: skip
        if result.returncode not in (0, 1):
            print(result.stderr)
            return 1
        report = json.loads(result.stdout)
    verdicts = {t["nodeid"]: t for t in report["tests"]}
    victims = [n for n, f in truth.items() if f["kind"] == "victim"]
    found = [
        n
        for n in victims
        if verdicts[n]["verdict"] == "order-dependent"
        and verdicts[n]["polluter"] == truth[n]["polluter"]
    ]
    share = len(found) / len(victims) if victims else 1.0
    stable = [n for n, f in truth.items() if f["kind"] == "stable"]
    wrong = [n for n in stable if verdicts[n]["verdict"] != "stable"]
    where = f"{report['runs']} rounds, {report['workers']} workers, seed {args.seed}"
    print(f"{len(truth)} tests, {where}")
    print(
        f"victims found with their polluter: {len(found)}/{len(victims)} = {share:.2f} (bar 0.90)"
    )
    for n in victims:
        if n not in found:
            v = verdicts[n]
            print(
                f"  missed {n}: {v['verdict']} {v['rounds']} polluter {v['polluter']} {v['note']}"
            )
    print(f"stable tests judged otherwise: {len(wrong)} {wrong[:5]}")
    for kind in ("flaky", "brittle"):
        names = [n for n, f in truth.items() if f["kind"] == kind]
        got: dict[str, int] = {}
        for n in names:
            got[verdicts[n]["verdict"]] = got.get(verdicts[n]["verdict"], 0) + 1
        print(f"{kind} tests ({len(names)}): {got}")
    print(f"executions {report['executions']}, reruns spent to judge {report['reruns']}")
    ok = share >= 0.90 and not wrong
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
