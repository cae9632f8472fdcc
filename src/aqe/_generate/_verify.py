"""Run a candidate test file in fresh processes and say which tests failed.

Two runs side by side, with different ``PYTHONHASHSEED`` values, under the project's own
pytest configuration: a test that fails either run depends on set order, hashes, ids, the
clock or state, and is dropped. JUnit XML says which tests failed, so a crash or a
collection error is told apart from a failing case.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ._process import child_env, start

#: Hash seeds of the verification runs, two per round: a case must pass under at least four
#: (a two-item set of strings keeps its order under a random seed only half the time).
SEEDS_PER_ROUND = 2
MIN_SEEDS = 4


@dataclass
class Verdict:
    failed: set[str] = field(default_factory=set)  # test names with their [id]
    passed: set[str] = field(default_factory=set)
    broken: str | None = None  # the file itself failed (collection, import): pytest's tail


def run_twice(
    path: Path,
    root: Path,
    seeds: tuple[str, ...] = ("1", "2"),
    timeout: float = 120.0,
    coverage_of: str | None = None,
) -> list[Verdict]:
    """Run ``path`` once per hash seed, concurrently; one verdict per run."""
    procs = []
    for index, seed in enumerate(seeds):
        xml = path.with_name(f"{path.stem}.{seed}.xml")
        xml.unlink(missing_ok=True)
        command = [sys.executable]
        if coverage_of is not None and index == 0:
            data = path.with_name(f"{path.stem}.coverage")
            command += [
                "-m",
                "coverage",
                "run",
                "--branch",
                f"--data-file={data}",
                f"--include={coverage_of}",
            ]
        command += [
            "-m",
            "pytest",
            str(path),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            f"--junitxml={xml}",
            "-o",
            "junit_family=xunit2",
            f"--rootdir={root}",
        ]
        proc = start(
            command, root, child_env(seed), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        procs.append((proc, xml))
    verdicts = []
    for proc, xml in procs:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.communicate()
            verdicts.append(Verdict(broken=f"the generated tests ran past {timeout:.0f} s"))
            continue
        verdicts.append(_read(xml, output, proc.returncode))
    return verdicts


def _read(xml: Path, output: str, code: int) -> Verdict:
    verdict = Verdict()
    tail = "\n".join(output.strip().splitlines()[-15:])
    if code == 5:  # every case was dropped: nothing left to collect
        return verdict
    if not xml.exists():
        verdict.broken = tail or f"pytest exited {code} without a report"
        return verdict
    try:
        tree = ET.parse(xml)
    except ET.ParseError as exc:
        verdict.broken = f"unreadable JUnit XML: {exc}"
        return verdict
    for case in tree.iter("testcase"):
        name = case.get("name", "")
        bad = case.find("failure") is not None or case.find("error") is not None
        if bad and not name.startswith("test"):
            verdict.broken = tail  # a collection error names the file, not a test
        elif bad:
            verdict.failed.add(name)
        elif case.find("skipped") is None:
            verdict.passed.add(name)
    if code not in (0, 1) and not verdict.failed and verdict.broken is None:
        verdict.broken = tail
    return verdict


def function_figures(
    path: Path, module_file: str, spans: dict[str, list[int]]
) -> dict[str, dict[str, int]]:
    """Per target: statements and branches in its body, and how many the tests ran."""
    data_file = path.with_name(f"{path.stem}.coverage")
    try:
        import coverage

        cov = coverage.Coverage(data_file=str(data_file), branch=True)
        cov.load()
        analysis = cov._analyze(module_file)
    except Exception:
        return {}
    missing_lines = set(analysis.missing)
    possible = set(analysis.arc_possibilities)
    missing_arcs = set(analysis.arcs_missing())
    branch_lines = {line for line, n in analysis.exit_counts.items() if n > 1}
    out = {}
    for target, (first, last) in spans.items():
        inside = range(first, last + 1)
        statements = [s for s in analysis.statements if s in inside]
        branches = [a for a in possible if a[0] in inside and a[0] in branch_lines]
        out[target] = {
            "lines": len(statements),
            "lines_hit": len([s for s in statements if s not in missing_lines]),
            "branches": len(branches),
            "branches_hit": len([a for a in branches if a not in missing_arcs]),
        }
    return out


def coverage_figures(path: Path, module_file: str) -> dict[str, float] | None:
    """Line and branch coverage of the module by the first run, from coverage.py's data."""
    data_file = path.with_name(f"{path.stem}.coverage")
    if not data_file.exists():
        return None
    try:
        import coverage
    except ImportError:
        return None
    cov = coverage.Coverage(data_file=str(data_file), branch=True)
    cov.load()
    try:
        analysis = cov._analyze(module_file)
    except Exception:
        return None
    numbers = analysis.numbers
    return {
        "statements": numbers.n_statements,
        "missing": numbers.n_missing,
        "branches": numbers.n_branches,
        "partial": numbers.n_missing_branches,
        "line_percent": 100.0
        * (numbers.n_statements - numbers.n_missing)
        / max(1, numbers.n_statements),
        "branch_percent": 100.0
        * (numbers.n_branches - numbers.n_missing_branches)
        / max(1, numbers.n_branches),
    }
