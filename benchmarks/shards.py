"""Shards on a real suite: aqe's partition against pytest-split's and a count split.

For one project (run it once per suite), with the history of one earlier run:

1. ``aqe run -w W`` once, unsharded: the history every shard plans from, and the
   reference the shards are compared with id by id (its JSON and JUnit XML).
2. Three partitions into N shards: ``aqe run --shard I/N`` (each shard with a fresh
   copy of that history, as each CI job imports the same export); pytest-split's
   ``--splits N --group I`` given a durations file written from aqe's history (its
   groups read from pytest's collection); and N equal runs of collected ids in pytest's
   order (a count split, as Playwright and nextest's count mode shard).
3. Every shard run alone, one after another, interleaved (aqe 1, split 1, count 1, aqe
   2, ...), all through ``aqe run -w W`` with the same history, so only the partition
   differs; its wall time is measured around the process.
4. Per partition: the slowest shard over the mean, measured and as predicted from the
   history; for aqe's: the union of its shards' outcomes against the unsharded run, id
   by id, no id twice, and ``aqe merge``'s JSON and JUnit XML against the unsharded ones
   up to times and worker names.

Set-up: a venv where the project's ``python -m pytest`` works, with aqe importable
(``--aqe SRC`` puts a checkout's ``src`` first on ``PYTHONPATH`` instead) and
pytest-split importable (``--pytest-split DIR``: ``pip install --target DIR --no-deps
pytest-split``). The project directory gets aqe's ``.aqe``; keep it a scratch copy.

    python benchmarks/shards.py PROJECT --python VENV/bin/python --work DIR \\
        [--aqe SRC] [--pytest-split DIR] [--shards 4] [--workers 2] [-- PATHS]

Prints one Markdown table row per partition and writes ``DIR/result.json``.

The pytest-split and count groups are run as node ids on the command line, so a suite
whose ids pytest cannot find again by id (SQLAlchemy's test classes generated per
dialect during collection, ``ResultTest_sqlite+pysqlite_3_40_1``) gets a usage error
(exit 4) for those runs: only aqe's shards are measured there, and the other two
partitions are compared by their predicted balance.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

#: Object addresses in failure messages differ from one process to the next.
ADDRESS = re.compile(r"0x[0-9a-f]+")

#: A pytest plugin that writes the ids pytest selected (after -k, --splits ...) to a file.
DUMP_PLUGIN = """
import os

def pytest_collection_finish(session):
    with open(os.environ["AQE_BENCH_IDS"], "w", encoding="utf-8") as out:
        out.write("\\n".join(item.nodeid for item in session.items))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--python", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--aqe", type=Path, help="aqe's src directory to run")
    parser.add_argument("--pytest-split", type=Path, help="where pytest-split is installed")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--partitions", default="aqe,pytest-split,count", help="which partitions to run"
    )
    parser.add_argument("paths", nargs="*")
    args = parser.parse_intermixed_args()
    bench = Bench(args)
    result = bench.run()
    (args.work / "result.json").write_text(json.dumps(result, indent=2))
    for line in table(result):
        print(line)
    return 0


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.project: Path = args.project.resolve()
        self.python: str = args.python
        self.work: Path = args.work.resolve()
        self.shards: int = args.shards
        self.workers: int = args.workers
        self.timeout: float = args.timeout
        self.paths: list[str] = list(args.paths)
        self.partitions = set(args.partitions.split(","))
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "_aqe_bench_ids.py").write_text(DUMP_PLUGIN)
        path = [str(self.work)]
        if args.aqe:
            path.insert(0, str(args.aqe.resolve()))
        if args.pytest_split:
            path.append(str(args.pytest_split.resolve()))
        self.env = dict(os.environ)
        for name in ("CLAUDECODE", "CODEX_THREAD_ID", "AI_AGENT", "GITHUB_ACTIONS"):
            self.env.pop(name, None)
        self.env["PYTHONPATH"] = os.pathsep.join([*path, self.env.get("PYTHONPATH", "")])
        self.env["CI"] = "true"
        #: Each call's CPU seconds (it and its waited-for descendants) and the
        #: 1-minute load average when it started.
        self.cpu: dict[str, float] = {}
        self.loads: dict[str, float] = {}

    def call(
        self, name: str, argv: list[str], extra: dict[str, str] | None = None
    ) -> tuple[int, float]:
        env = dict(self.env, **(extra or {}))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.loads[name] = os.getloadavg()[0]
        started = time.perf_counter()
        with open(self.work / f"{name}.log", "w") as log:
            done = subprocess.run(
                argv,
                cwd=self.project,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=self.timeout,
                check=False,
            )
        took = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU seconds of the process and every worker it waited for (user + system).
        self.cpu[name] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(f"  {name}: exit {done.returncode} in {took:.1f}s, {self.cpu[name]:.1f}s CPU, "
              f"load {self.loads[name]:.1f}", file=sys.stderr, flush=True)  # fmt: skip
        return done.returncode, took

    def aqe(self, name: str, *argv: str) -> tuple[int, float]:
        return self.call(name, [self.python, "-m", "aqe", *argv])

    def collected(self, name: str, *pytest_args: str) -> list[str]:
        out = self.work / f"{name}.ids"
        code, _ = self.call(
            name,
            [
                self.python,
                "-m",
                "pytest",
                "--collect-only",
                "-p",
                "_aqe_bench_ids",
                *pytest_args,
                *self.paths,
            ],
            {"AQE_BENCH_IDS": str(out)},
        )
        if code not in (0, 5):
            raise SystemExit(f"{name}: pytest --collect-only exited {code}")
        text = out.read_text(encoding="utf-8")
        return text.split("\n") if text else []

    def history_copy(self, name: str) -> str:
        copy = self.work / f"{name}.db"
        shutil.copy(self.work / "history.db", copy)
        return str(copy)

    def run(self) -> dict[str, Any]:
        n, w = self.shards, str(self.workers)
        history = self.work / "history.db"
        for stale in self.work.glob("*.db"):
            stale.unlink()
        print(f"{self.project.name}: the earlier, unsharded run", file=sys.stderr)
        full_code, full_wall = self.aqe(
            "full",
            "run",
            "-w",
            w,
            "--history",
            str(history),
            "--json",
            str(self.work / "full.json"),
            "--junit-xml",
            str(self.work / "full.xml"),
            *self.paths,
        )
        durations = read_durations(history)
        (self.work / "durations.json").write_text(json.dumps(durations))
        plan_file = self.work / "plan.json"
        with open(plan_file, "w") as out:
            subprocess.run(
                [
                    self.python,
                    "-m",
                    "aqe",
                    "shards",
                    str(n),
                    "--json",
                    "--history",
                    str(history),
                    *self.paths,
                ],
                cwd=self.project,
                env=self.env,
                stdout=out,
                check=False,
            )
        plan = json.loads(plan_file.read_text())
        every = self.collected("collect")
        partitions: dict[str, list[list[str]]] = {
            "aqe": [shard["nodeids"] for shard in plan["shards"]],
        }
        if "pytest-split" in self.partitions:
            partitions["pytest-split"] = [
                self.collected(
                    f"split{i}",
                    "--splits",
                    str(n),
                    "--group",
                    str(i),
                    # One word: pytest takes a separate value that names an existing
                    # path for a path argument when it chooses the rootdir.
                    f"--durations-path={self.work / 'durations.json'}",
                )
                for i in range(1, n + 1)
            ]
        partitions["count"] = [
            every[len(every) * k // n : len(every) * (k + 1) // n] for k in range(n)
        ]
        walls: dict[str, list[float]] = {name: [] for name in partitions}
        codes: dict[str, list[int]] = {name: [] for name in partitions}
        for i in range(1, n + 1):
            for name, groups in partitions.items():
                if name not in self.partitions:
                    continue  # its predicted balance only
                report = str(self.work / f"{name}{i}.json")
                if name == "aqe":
                    argv = ["run", "-w", w, "--shard", f"{i}/{n}", *self.paths]
                else:  # the same run, given the group's ids
                    argv = ["run", "-w", w, *groups[i - 1]]
                code, took = self.aqe(
                    f"{name}{i}",
                    *argv,
                    "--history",
                    self.history_copy(f"{name}{i}"),
                    "--json",
                    report,
                )
                walls[name].append(took)
                codes[name].append(code)
        merged_code, _ = self.aqe(
            "merge",
            "merge",
            *(str(self.work / f"aqe{i}.json") for i in range(1, n + 1)),
            "--json",
            str(self.work / "merged.json"),
            "--junit-xml",
            str(self.work / "merged.xml"),
        )
        return {
            "project": self.project.name,
            "paths": self.paths,
            "tests": len(every),
            "shards": n,
            "workers": self.workers,
            "load": os.getloadavg(),
            "unsharded": {"exit": full_code, "wall": full_wall},
            "plan": {k: plan[k] for k in ("digest", "from_history", "balance")},
            "partitions": {
                name: {
                    "tests": [len(g) for g in groups],
                    "walls": walls[name],
                    "cpu": [self.cpu.get(f"{name}{i}") for i in range(1, n + 1)],
                    "loads": [self.loads.get(f"{name}{i}") for i in range(1, n + 1)],
                    "exit": codes[name],
                    "measured": ratio(walls[name]) if walls[name] else None,
                    "predicted": ratio([sum(durations.get(t, 0.0) for t in g) for g in groups]),
                }
                for name, groups in partitions.items()
            },
            "parity": self.parity(merged_code),
        }

    def parity(self, merged_code: int) -> dict[str, Any]:
        full = json.loads((self.work / "full.json").read_text())
        union: dict[str, tuple[str, int]] = {}
        twice: list[str] = []
        for i in range(1, self.shards + 1):
            shard = json.loads((self.work / f"aqe{i}.json").read_text())
            mine = finals(shard)
            # A module skipped at collection is collected (and skipped) by every shard.
            skipped = {t["nodeid"] for t in shard["tests"] if t["when"] == "collect"}
            twice += [n for n in mine if n in union and n not in skipped]
            union.update(mine)
        reference = finals(full)
        differ = sorted(n for n in set(union) | set(reference) if union.get(n) != reference.get(n))
        result: dict[str, Any] = {
            "ids": len(reference),
            "twice": twice,
            "differ": [(n, union.get(n), reference.get(n)) for n in differ[:20]],
            "differ_count": len(differ),
            "merge_exit": merged_code,
        }
        if (self.work / "merged.json").exists():
            merged = json.loads((self.work / "merged.json").read_text())
            result["json_equal"] = finals(merged) == reference and (
                merged["outcomes"] == full["outcomes"]
            )
            result["junit_equal"] = cases(self.work / "merged.xml") == cases(self.work / "full.xml")
        return result


def read_durations(history: Path) -> dict[str, float]:
    """Each test's duration in the history's run (one run: its last attempt's)."""
    with sqlite3.connect(history) as conn:
        rows = conn.execute("SELECT nodeid, duration FROM results ORDER BY rowid").fetchall()
    return {nodeid: float(duration) for nodeid, duration in rows}


def finals(report: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Each test id's final outcome and attempt (collection skips included)."""
    found: dict[str, tuple[str, int]] = {}
    for test in report["tests"]:
        found[test["nodeid"]] = (test["outcome"], test["attempt"])
    return found


def cases(path: Path) -> list[tuple[Any, ...]]:
    """JUnit testcases up to times and worker names, sorted."""
    out = []
    for case in ET.parse(path).getroot().iter("testcase"):
        attrs = sorted((k, v) for k, v in case.attrib.items() if k != "time")
        props = sorted(
            (p.get("name"), p.get("value"))
            for p in case.iter("property")
            if p.get("name") != "worker"
        )
        kids = [
            (c.tag, ADDRESS.sub("0x?", c.get("message") or ""), c.get("type"))
            for c in case
            if c.tag != "properties"
        ]
        out.append((attrs, props, kids))
    return sorted(out, key=repr)


def ratio(values: list[float]) -> float:
    mean = statistics.mean(values) if values else 0.0
    return max(values) / mean if mean > 0 else 1.0


def table(result: dict[str, Any]) -> list[str]:
    rows = []
    parity = result["parity"]
    for name, part in result["partitions"].items():
        walls = " / ".join(f"{w:.1f}" for w in part["walls"]) or "not run"
        measured = f"{part['measured']:.2f}x" if part["measured"] else "-"
        rows.append(
            f"| {result['project']} | {result['tests']:,} | {name} | {part['predicted']:.2f}x | "
            f"{measured} | {walls} | {' / '.join(map(str, part['tests']))} |"
        )
    rows.append(
        f"parity: {parity['ids']} ids, {parity['differ_count']} differ, "
        f"{len(parity['twice'])} twice, merged JSON equal {parity.get('json_equal')}, "
        f"JUnit equal {parity.get('junit_equal')}; load {result['load']}"
    )
    return rows


if __name__ == "__main__":
    sys.exit(main())
