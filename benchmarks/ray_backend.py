r"""The Ray backend against local workers: the same real suite, interleaved.

Starts a private two-node Ray cluster on this machine (``tests/ray_cluster.py``: a head
and a second node, one CPU each), then runs the project's suite ``--reps`` times with
each of

* ``aqe run -w 2 --no-history`` (local forked workers), and
* ``aqe run -w 2 --no-history --backend ray --ray-address ...`` (one worker per node),

alternating which goes first, and prints each wall time, the medians and their ratio
(the goal: within 1.3x), with the load average. Where the difference goes, from aqe's
JSON report: *start-up* is the time from the command's start to the first test's start
(collection, and for Ray the connection, the agents and each node's collection);
*loop* is the rest, whose difference is per-test messaging over TCP and the remote
plumbing. It checks that both tools gave every test the same outcome. ``--chaos``
then runs ``benchmarks/chaos.py`` on the same cluster (``AQE_BACKEND=ray``): crashes,
hangs and flaky tests, each accounted for.

Usage (the project needs its test dependencies in the same venv as aqe and Ray)::

    cp -r /work/realworld/click/click-8.5.1 ../scratch/click   # click's 2,459 tests
    python benchmarks/ray_backend.py ../scratch/click --reps 3 --chaos
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from ray_cluster import Cluster, cluster  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


class ClusterCpu:
    """CPU seconds the cluster's processes (Ray's daemons, the agents, the node hosts
    and their workers) use during a run: /proc sampled every 0.1 s, each process's
    last reading kept (one that ends between samples loses at most 0.1 s)."""

    def __init__(self, made: Cluster) -> None:
        self.made = made
        self.before = self._read()
        self.last: dict[int, float] = dict(self.before)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _read(self) -> dict[int, float]:
        found = {}
        for pid in self.made.processes():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            found[pid] = (int(stat[11]) + int(stat[12])) / _TICK
        return found

    def _poll(self) -> None:
        while not self.done.wait(0.1):
            self.last.update(self._read())

    def stop(self) -> float:
        self.done.set()
        self.thread.join()
        self.last.update(self._read())
        return sum(cpu - self.before.get(pid, 0.0) for pid, cpu in self.last.items())


def run(
    project: Path, aqe: str, workers: int, extra: list[str], report: Path, env: dict[str, str]
) -> tuple[float, float, float, dict[str, Any]]:
    """(wall seconds, seconds to the first test's start, CPU seconds of aqe and the
    workers it reaped, the JSON report)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [aqe, "run", "-w", str(workers), "-q", "--no-history", "--json", str(report)]
    started_at = time.time()
    started = time.perf_counter()
    subprocess.run(
        [*command, *extra], cwd=project, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, timeout=3600, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    data = json.loads(report.read_text()) if report.exists() else {"tests": []}
    starts = [float(t["start"]) for t in data["tests"] if t.get("start")]
    first = min(starts) - started_at if starts else wall
    return wall, first, cpu, data


@contextlib.contextmanager
def _removed(folder: Path) -> Iterator[None]:
    """The reports' folder, removed at the end."""
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def finals(report: dict[str, Any]) -> dict[str, str]:
    last: dict[str, tuple[int, str]] = {}
    for test in report["tests"]:
        attempt = int(test.get("attempt", 1))
        if attempt >= last.get(test["nodeid"], (0, ""))[0]:
            last[test["nodeid"]] = (attempt, test["outcome"])
    return {nodeid: outcome for nodeid, (_, outcome) in last.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chaos", action="store_true", help="then chaos.py on the cluster")
    parser.add_argument("--aqe", default=str(Path(sys.executable).with_name("aqe")))
    parser.add_argument("pytest_args", nargs="*", help="after --: for both runs")
    args = parser.parse_args()
    extra = ["--", *args.pytest_args] if args.pytest_args else []
    scratch = Path(tempfile.mkdtemp(prefix="aqe-raybench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "RAY_"))}
    env["CI"] = "true"
    failures = 0
    with cluster(nodes=2) as made, _removed(scratch):
        ray_env = {**env, "AQE_BACKEND": "ray", "AQE_RAY_ADDRESS": made.address}
        results: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
        cpus: dict[str, list[float]] = {"local": [], "ray": []}
        outcomes: dict[str, dict[str, str]] = {}
        print(f"cluster: 2 nodes of 1 CPU at {made.address}; {args.reps} reps, interleaved")
        for rep in range(args.reps):
            order = ["local", "ray"] if rep % 2 == 0 else ["ray", "local"]
            for tool in order:
                report = scratch / f"{tool}-{rep}.json"
                sampler = ClusterCpu(made)
                wall, first, cpu, data = run(
                    args.project, args.aqe, args.workers, extra, report,
                    ray_env if tool == "ray" else env,
                )  # fmt: skip
                in_cluster = sampler.stop()
                if tool == "ray":  # a local run does not use the cluster (idle: ~2% of a CPU)
                    cpu += in_cluster
                results[tool].append((wall, first))
                cpus[tool].append(cpu)
                got = finals(data)
                if tool in outcomes and outcomes[tool] != got:
                    print(f"  note: {tool}'s outcomes changed between reps")
                outcomes[tool] = got
                load = os.getloadavg()[0]
                print(
                    f"  rep {rep + 1} {tool:5}: {wall:7.2f} s wall, {first:6.2f} s to the first "
                    f"test, {cpu:6.2f} s CPU (the cluster's processes: {in_cluster:.2f} s), "
                    f"{len(got)} tests; load {load:.2f}"
                )
        same = outcomes.get("local") == outcomes.get("ray") and bool(outcomes.get("local"))
        if not same:
            failures += 1
            local, remote = outcomes.get("local", {}), outcomes.get("ray", {})
            ids = local.keys() | remote.keys()
            differ = sorted(k for k in ids if local.get(k) != remote.get(k))
            print(f"  OUTCOMES DIFFER on {len(differ)} ids, e.g. {differ[:5]}")
        median = {tool: statistics.median(w for w, _ in runs) for tool, runs in results.items()}
        first = {tool: statistics.median(f for _, f in runs) for tool, runs in results.items()}
        ratio = median["ray"] / median["local"]
        print(
            f"median wall: local {median['local']:.2f} s, ray {median['ray']:.2f} s: "
            f"{ratio:.3f}x ({'within' if ratio <= 1.3 else 'OVER'} 1.3x); outcomes "
            f"{'identical id by id' if same else 'DIFFER'}"
        )
        print(
            f"  start-up (to the first test): local {first['local']:.2f} s, ray "
            f"{first['ray']:.2f} s; the loop after it: local "
            f"{median['local'] - first['local']:.2f} s, ray {median['ray'] - first['ray']:.2f} s"
        )
        cpu_median = {tool: statistics.median(c) for tool, c in cpus.items()}
        print(
            f"  CPU (aqe and its workers; for ray also the cluster's processes): local "
            f"{cpu_median['local']:.2f} s, ray {cpu_median['ray']:.2f} s: "
            f"{cpu_median['ray'] / cpu_median['local']:.3f}x"
        )
        if args.chaos:
            print("chaos on ray (benchmarks/chaos.py --tests 300 --total 12 --reps 1):")
            done = subprocess.run(
                [sys.executable, str(HERE / "chaos.py"), "--tests", "300", "--total", "12",
                 "--reps", "1", "--aqe", args.aqe],
                env=ray_env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            print("  " + done.stdout.strip().replace("\n", "\n  "))
            failures += "PROBLEMS" in done.stdout or "all accounted for" not in done.stdout
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
