r"""aqe on real JavaScript suites against the framework's own run: outcomes, then time.

Two open-source projects whose repositories ship their suites, at fixed commits:

* **date-fns** (Vitest): ``src/**/test.ts``, 250 files, 3,160 tests;
* **dayjs** (Jest): ``test/**/*.test.js``, 93 files, 775 tests.

``prepare`` builds each in ``DIR/NAME`` from a git checkout (``--from NAME=PATH``; else
GitHub's tarball of the commit): the suite's files, a ``package.json`` with only what
the tests import (Vitest 4 and Jest 30, the versions the adapters support, instead of
the projects' Vitest 3 and Jest 22), and ``npm install``. What changes besides:
date-fns's config loses its ``browser`` block (off unless ``--browser``) and its
``tsconfig`` its references to git submodules; dayjs's Jest config is its own but for
``testEnvironment: node`` and no coverage. ``parity`` runs the framework once with its
JSON reporter and ``aqe run --json`` once, and compares the outcome of every id (the
file and the name path, as the adapters build it; the n-th copy of a name used twice
in one file is ``name [n]``, in the order the framework reports them).
``time`` runs, interleaved, per round: the framework alone (``vitest run``,
``jest --ci``: each at its own default parallelism), aqe on a fresh history (its first
run), and aqe again with that history (the re-run); it prints medians, the ratios to
the framework and the load average before and after::

    python benchmarks/js.py prepare ../scratch --from date-fns=CHECKOUT --from dayjs=CHECKOUT
    python benchmarks/js.py parity ../scratch/date-fns ../scratch/dayjs
    python benchmarks/js.py time ../scratch/date-fns ../scratch/dayjs --rounds 3 -w 2

aqe runs from this interpreter (``python -m aqe``): install aqe and ``adapters/aqe-vitest``
in it. Exit code of ``parity``: 0 when every id agrees, 1 otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Project:
    name: str
    repository: str
    commit: str
    paths: tuple[str, ...]
    framework: str
    package: dict[str, object]
    #: Files written over the checkout's: relative path -> text.
    files: dict[str, str]
    #: tsconfig-like JSON files whose "references" go (git submodules not checked out).
    unreferenced: tuple[str, ...] = ()


PROJECTS = {
    "date-fns": Project(
        name="date-fns",
        repository="date-fns/date-fns",
        commit="dd66398305c2b015fba3c1b3d31ccff42ee8d4cf",
        paths=("src", "babel.config.json"),
        framework="vitest",
        package={
            "name": "date-fns-suite",
            "private": True,
            "type": "module",
            "devDependencies": {
                "@date-fns/tz": "^1.4.1",
                "@date-fns/utc": "^2.1.1",
                "fp-ts": "^2.16.10",
                "js-fns": "^2.5.2",
                "lodash": "^4.17.21",
                "sinon": "^7.5.0",
                "vitest": "4.1.12",
            },
        },
        files={
            "vitest.config.ts": (
                'import { defineConfig } from "vitest/config";\n\n'
                "// date-fns's own config, without its browser block (off by default there).\n"
                'export default defineConfig({\n  test: {\n    include: ["src/**/test.ts"],\n'
                "    isolate: false,\n  },\n});\n"
            ),
            "tsconfig.json": '{ "files": [], "references": [{ "path": "./src" }] }\n',
        },
        unreferenced=("src/tsconfig.json",),
    ),
    "dayjs": Project(
        name="dayjs",
        repository="iamkun/dayjs",
        commit="0f6c19e3b63bcc3ff74917cb3a60125020c75648",
        paths=("src", "test", "babel.config.js"),
        framework="jest",
        package={
            "name": "dayjs-suite",
            "private": True,
            "devDependencies": {
                "@babel/core": "^7.26.0",
                "@babel/preset-env": "^7.26.0",
                "babel-jest": "30.2.0",
                "jest": "30.2.0",
                "mockdate": "^2.0.2",
                "moment": "2.29.2",
                "moment-timezone": "0.5.31",
            },
            "jest": {
                "roots": ["test"],
                "testRegex": "test/(.*?/)?.*test.js$",
                "testEnvironment": "node",
            },
        },
        files={},
    ),
}


def framework_of(root: Path) -> str:
    package = json.loads((root / "package.json").read_text(encoding="utf-8"))
    return "vitest" if "vitest" in package.get("devDependencies", {}) else "jest"


# -- prepare ----------------------------------------------------------------------------


def prepare(target: Path, sources: dict[str, Path]) -> None:
    for project in PROJECTS.values():
        root = target / project.name
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        _extract(project, root, sources.get(project.name))
        (root / "package.json").write_text(json.dumps(project.package, indent=2) + "\n")
        for relative, text in project.files.items():
            (root / relative).write_text(text, encoding="utf-8")
        for relative in project.unreferenced:
            path = root / relative
            lines = path.read_text(encoding="utf-8").splitlines()
            path.write_text("\n".join(_without_references(lines)) + "\n", encoding="utf-8")
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=root, check=True)
        print(f"{project.name}: ready in {root}")


def _extract(project: Project, root: Path, checkout: Path | None) -> None:
    if checkout is not None:
        archive = subprocess.run(
            ["git", "-C", str(checkout), "archive", project.commit, *project.paths],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(root, filter="data")
        return
    url = f"https://codeload.github.com/{project.repository}/tar.gz/{project.commit}"
    with urllib.request.urlopen(url) as response, tempfile.TemporaryDirectory() as scratch:
        with tarfile.open(fileobj=io.BytesIO(response.read()), mode="r:gz") as tar:
            tar.extractall(scratch, filter="data")
        (top,) = Path(scratch).iterdir()
        for relative in project.paths:
            source = top / relative
            if source.is_dir():
                shutil.copytree(source, root / relative)
            else:
                shutil.copy2(source, root / relative)


def _without_references(lines: list[str]) -> list[str]:
    """A tsconfig's lines without its ``"references": [...]`` block."""
    out: list[str] = []
    skipping = False
    for line in lines:
        if line.strip().startswith('"references"'):
            skipping = not line.rstrip().endswith("],")
            continue
        if skipping:
            skipping = not line.strip().startswith("]")
            continue
        out.append(line)
    return out


# -- parity -----------------------------------------------------------------------------


def framework_command(root: Path, report: Path | None = None) -> list[str]:
    if framework_of(root) == "vitest":
        command = ["node", "node_modules/vitest/vitest.mjs", "run"]
        return command + ([] if report is None else ["--reporter=json", f"--outputFile={report}"])
    command = ["node", "node_modules/jest/bin/jest.js", "--ci"]
    return command + ([] if report is None else ["--json", f"--outputFile={report}"])


def framework_outcomes(root: Path, report: Path) -> dict[str, Counter[str]]:
    """Each id's outcomes in the framework's JSON report (Vitest's copies Jest's)."""
    data = json.loads(report.read_text(encoding="utf-8"))
    found: dict[str, Counter[str]] = {}
    for module in data["testResults"]:
        file = Path(module["name"]).relative_to(root).as_posix()
        copies: Counter[str] = Counter()
        for case in module["assertionResults"]:
            nodeid = " > ".join([file, *case["ancestorTitles"], case["title"]])
            copies[nodeid] += 1  # a name used twice in a file: its n-th copy is "name [n]"
            if copies[nodeid] > 1:
                nodeid = f"{nodeid} [{copies[nodeid]}]"
            status = case["status"]
            outcome = status if status in ("passed", "failed") else "skipped"
            found.setdefault(nodeid, Counter())[outcome] += 1
        if module.get("message") and not module["assertionResults"]:
            found.setdefault(file, Counter())["error"] += 1
    return found


def aqe_outcomes(report: Path) -> dict[str, str]:
    """Each id's last attempt; a file that failed to load is ``error`` under its path,
    as the framework's report has it (a suite that failed to run)."""
    data = json.loads(report.read_text(encoding="utf-8"))
    final: dict[str, tuple[int, str]] = {}
    for test in data["tests"]:
        seen = final.get(test["nodeid"])
        if seen is None or test["attempt"] > seen[0]:
            final[test["nodeid"]] = (test["attempt"], test["outcome"])
    outcomes = {nodeid: outcome for nodeid, (_, outcome) in final.items()}
    for error in data.get("collection_errors", []):
        outcomes[error["location"]] = "error"
    return outcomes


def aqe_command(workers: int, report: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "aqe", "run", "-w", str(workers), "-q"]
    return command + ([] if report is None else ["--json", str(report)])


def parity(root: Path, workers: int) -> bool:
    with tempfile.TemporaryDirectory(prefix="aqe-js-") as scratch:
        own, ours = Path(scratch) / "own.json", Path(scratch) / "aqe.json"
        subprocess.run(framework_command(root, own), cwd=root, capture_output=True, env=_env())
        shutil.rmtree(root / ".aqe", ignore_errors=True)
        subprocess.run(aqe_command(workers, ours), cwd=root, capture_output=True, env=_env())
        theirs, mine = framework_outcomes(root, own), aqe_outcomes(ours)
    single = {k: next(iter(v)) for k, v in theirs.items() if len(v) == 1}
    ambiguous = sorted(k for k, v in theirs.items() if len(v) > 1)
    differ = sorted(k for k in single.keys() & mine.keys() if single[k] != mine[k])
    only_theirs = sorted(theirs.keys() - mine.keys())
    only_mine = sorted(mine.keys() - theirs.keys())
    runs = sum(sum(v.values()) for v in theirs.values())
    print(f"{root.name} ({framework_of(root)}): {runs} results, {len(theirs)} ids;")
    print(f"  framework: {dict(Counter(o for v in theirs.values() for o in v.elements()))}")
    print(f"  aqe:       {dict(Counter(mine.values()))}")
    print(f"  same outcome: {len(single.keys() & mine.keys()) - len(differ)} ids")
    for label, ids in (
        ("outcome differs", differ),
        ("only the framework ran", only_theirs),
        ("only aqe ran", only_mine),
        ("copies of one name with different outcomes (not compared)", ambiguous),
    ):
        if ids:
            print(f"  {label}: {len(ids)}")
            for nodeid in ids[:20]:
                print(f"    {nodeid}: {dict(theirs.get(nodeid, {}))} / {mine.get(nodeid)}")
    return not (differ or only_theirs or only_mine)


# -- time -------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_"))}
    env["CI"] = "true"
    return env


def timed(command: list[str], root: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=_env())  # fmt: skip
    return time.perf_counter() - start


def timing(roots: list[Path], rounds: int, workers: int) -> None:
    for root in roots:
        times: dict[str, list[float]] = {"framework": [], "aqe first run": [], "aqe re-run": []}
        before = os.getloadavg()
        for round_ in range(rounds):
            order = ["framework", "aqe"] if round_ % 2 == 0 else ["aqe", "framework"]
            for tool in order:  # interleaved: who goes first alternates
                if tool == "framework":
                    times["framework"].append(timed(framework_command(root), root))
                    continue
                shutil.rmtree(root / ".aqe", ignore_errors=True)
                times["aqe first run"].append(timed(aqe_command(workers), root))
                times["aqe re-run"].append(timed(aqe_command(workers), root))
        after = os.getloadavg()
        base = statistics.median(times["framework"])
        print(f"{root.name} ({framework_of(root)}, -w {workers}, {rounds} rounds, "
              f"load {before[0]:.1f} -> {after[0]:.1f}):")  # fmt: skip
        for label, values in times.items():
            median = statistics.median(values)
            runs = ", ".join(f"{v:.1f}" for v in values)
            print(f"  {label:14} median {median:6.1f} s  x{median / base:4.2f}  ({runs})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    made = sub.add_parser("prepare")
    made.add_argument("target", type=Path)
    made.add_argument("--from", dest="sources", action="append", default=[], metavar="NAME=PATH")
    for name in ("parity", "time"):
        command = sub.add_parser(name)
        command.add_argument("roots", type=Path, nargs="+")
        command.add_argument("-w", "--workers", type=int, default=2)
        command.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.command == "prepare":
        sources = dict(item.split("=", 1) for item in args.sources)
        prepare(args.target, {name: Path(path) for name, path in sources.items()})
        return 0
    roots = [root.resolve() for root in args.roots]
    if args.command == "parity":
        return 0 if all([parity(root, args.workers) for root in roots]) else 1
    timing(roots, args.rounds, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
