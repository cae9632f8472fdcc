r"""Chaos benchmark: a suite where tests crash, hang and flake, run by ``aqe run -w 2``.

The suite (generated under ``benchmarks/_suites/chaos``): ``--tests`` tests (default
1,000) in ``--files`` files, each sleeping for a lognormal duration; of them 2% call
``os._exit`` (crash), 1% sleep forever (hang) and 2% fail with probability 0.3 (flaky).
Which test is which comes from a seeded random draw and is written to ``manifest.json``.

aqe runs it with ``--timeout`` (default 2 s), ``--retries 2`` and ``--retry-except
'^(Timeout|WorkerCrashed):'`` (flaky assertion failures are retried; crashes and hangs
are not, a retry would only crash or hang again), then the script checks from aqe's
JSON report that every test is accounted for with the right outcome:

* crash tests: ``crashed`` and hang tests ``timeout``, each on all three tiers (shared
  worker, then alone in a fresh fork, then alone in a fresh interpreter: the default
  ``--isolate-on crash,timeout``; a hang's two alone attempts run at the same time);
* flaky tests: ``passed`` or ``flaky``, or ``failed`` only when every attempt failed;
* every other test: ``passed``, exactly once.

It compares the median wall time with the ideal bound of the same suite without faults
plus the time the timeouts themselves take on the shared workers: ``max(longest, (total
sleep + hangs x timeout) / workers)`` (the isolated re-runs run beside the two
workers). The bar is 1.3x. Exit status: 0 when every rep accounted for every
test correctly and the median is within the bar, 1 otherwise.

Usage::

    python benchmarks/chaos.py                 # 1,000 tests, 3 reps
    python benchmarks/chaos.py --tests 200 --reps 1 --total 10   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUITES = Path(__file__).resolve().parent / "_suites"
RETRY_EXCEPT = "^(Timeout|WorkerCrashed):"


@dataclass(frozen=True)
class Spec:
    tests: int
    files: int
    total: float
    crash: float
    hang: float
    flaky: float
    seed: int


def generate(spec: Spec, root: Path) -> dict[str, str]:
    """Write the suite; return node id -> kind (ok, crash, hang, flaky)."""
    rng = random.Random(spec.seed)
    raw = [rng.lognormvariate(0.0, 1.0) for _ in range(spec.tests)]
    scale = spec.total / sum(raw)
    durations = [d * scale for d in raw]
    kinds = ["ok"] * spec.tests
    picks = rng.sample(range(spec.tests), spec.tests)
    counts = {
        "crash": round(spec.tests * spec.crash),
        "hang": round(spec.tests * spec.hang),
        "flaky": round(spec.tests * spec.flaky),
    }
    position = 0
    for kind, count in counts.items():
        for index in picks[position : position + count]:
            kinds[index] = kind
        position += count
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    manifest: dict[str, str] = {}
    per_file = -(-spec.tests // spec.files)
    for number in range(spec.files):
        lines = ["import os", "import random", "import time", ""]
        for index in range(number * per_file, min(spec.tests, (number + 1) * per_file)):
            name = f"test_{index:04d}"
            body = {
                "ok": f"time.sleep({durations[index]:.4f})",
                "crash": "os._exit(3)",
                "hang": "time.sleep(3600)",
                "flaky": f"time.sleep({durations[index]:.4f})\n"
                "    assert random.random() >= 0.3, 'flaky'",
            }[kinds[index]]
            lines += [f"def {name}():", f"    {body}", ""]
            manifest[f"test_chaos_{number:02d}.py::{name}"] = kinds[index]
        (root / f"test_chaos_{number:02d}.py").write_text("\n".join(lines))
    ok_sleep = sum(d for d, k in zip(durations, kinds, strict=True) if k in ("ok", "flaky"))
    (root / "manifest.json").write_text(
        json.dumps({"kinds": manifest, "sleep": ok_sleep, "longest": max(durations)})
    )
    return manifest


def check(report: dict[str, Any], kinds: dict[str, str], tiers: int = 3) -> list[str]:
    """Problems with the run's accounting; empty when every test is right."""
    attempts: dict[str, list[dict[str, Any]]] = {}
    for test in report["tests"]:
        attempts.setdefault(str(test["nodeid"]), []).append(test)
    problems = []
    missing = set(kinds) - set(attempts)
    extra = set(attempts) - set(kinds)
    if missing:
        problems.append(f"{len(missing)} tests never reported, e.g. {sorted(missing)[:3]}")
    if extra:
        problems.append(f"{len(extra)} unknown ids reported, e.g. {sorted(extra)[:3]}")
    for nodeid, runs in attempts.items():
        kind = kinds.get(nodeid)
        runs.sort(key=lambda r: int(r["attempt"]))
        outcomes = [str(r["outcome"]) for r in runs]
        final = outcomes[-1]
        if [int(r["attempt"]) for r in runs] != list(range(1, len(runs) + 1)):
            problems.append(f"{nodeid}: attempts {[r['attempt'] for r in runs]}")
        expected_ok = {
            "ok": outcomes == ["passed"],
            # Tiers: alone on a fresh fork, then in a fresh interpreter; same verdict.
            "crash": outcomes == ["crashed"] * tiers,
            "hang": outcomes == ["timeout"] * tiers,
            "flaky": final in ("passed", "flaky")
            or (set(outcomes) == {"failed"} and len(outcomes) == 3),
        }.get(kind or "", False)
        if not expected_ok:
            problems.append(f"{nodeid} ({kind}): {outcomes}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=1000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--total", type=float, default=40.0, help="seconds of sleep in all")
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--isolate-on", default="crash,timeout", help="aqe's --isolate-on (off: no tiers)"
    )
    parser.add_argument("--aqe", default=str(Path(sys.executable).with_name("aqe")))
    args = parser.parse_args()
    spec = Spec(args.tests, args.files, args.total, 0.02, 0.01, 0.02, args.seed)
    root = SUITES / "chaos"
    kinds = generate(spec, root)
    manifest = json.loads((root / "manifest.json").read_text())
    hangs = sum(kind == "hang" for kind in kinds.values())
    ideal = max(manifest["longest"], (manifest["sleep"] + hangs * args.timeout) / args.workers)
    print(
        f"chaos: {args.tests} tests in {args.files} files, {manifest['sleep']:.1f} s of sleep; "
        + ", ".join(f"{sum(k == kind for k in kinds.values())} {kind}" for kind in
                    ("crash", "hang", "flaky"))
        + f"; timeout {args.timeout:g} s; ideal bound {ideal:.2f} s"
    )  # fmt: skip
    walls: list[float] = []
    failures = 0
    scratch = Path(tempfile.mkdtemp(prefix="aqe-chaos-"))
    for rep in range(1, args.reps + 1):
        shutil.rmtree(root / ".aqe", ignore_errors=True)
        report = scratch / f"report-{rep}.json"
        command = [
            args.aqe, "run", "-w", str(args.workers), "-q", "--no-history",
            "--timeout", str(args.timeout), "--retries", "2",
            "--retry-except", RETRY_EXCEPT, "--json", str(report),
            "--isolate-on", args.isolate_on,
        ]  # fmt: skip
        tiers = 1 if args.isolate_on == "off" else 3
        started = time.perf_counter()
        with open(scratch / f"output-{rep}.txt", "w") as output:
            code = subprocess.run(
                command, cwd=root, stdout=output, stderr=subprocess.STDOUT,
                env={**os.environ, "CI": "true", "AQE_RETRY_BUDGET": "0.1"},
                timeout=max(600.0, ideal * 10),
            ).returncode  # fmt: skip
        wall = time.perf_counter() - started
        data = json.loads(report.read_text()) if report.exists() else {"tests": []}
        problems = check(data, kinds, tiers)
        if code != 1:
            problems.insert(0, f"exit code {code}, expected 1 (crashes and hangs fail the run)")
        walls.append(wall)
        status = "all accounted for" if not problems else f"{len(problems)} PROBLEMS"
        outcomes = data.get("outcomes", {})
        summary = ", ".join(f"{n} {k}" for k, n in outcomes.items() if n and k != "total")
        print(f"  rep {rep}/{args.reps}: {wall:.2f} s ({wall / ideal:.3f}x ideal); {summary}; "
              f"{status}")  # fmt: skip
        for problem in problems[:10]:
            print(f"    {problem}")
        failures += bool(problems)
    median = statistics.median(walls)
    verdict = "PASS" if median <= 1.3 * ideal else "FAIL"
    print(f"  median {median:.2f} s = {median / ideal:.3f}x ideal bound; bar 1.3x: {verdict}")
    print(f"  accounting: {args.reps - failures}/{args.reps} reps exact; outputs in {scratch}")
    return 0 if verdict == "PASS" and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
