r"""Does ``aqe run --affected`` miss what a full run catches? Single-point mutations
of a real library's source, each committed and run both ways.

For a project directory (an unpacked sdist), this copies it into a fresh git
repository (one first commit), records the dependency map with a full
``aqe run --record-deps`` (the baseline), then for each sampled mutation (an
operator, a comparison, a boolean operator or a constant, changed at one token of a
non-test module; seeded) commits it and runs

* a full ``aqe run`` (no history): the mutation is *caught* when a test that passed
  in the baseline fails; uncaught mutations are dropped and not counted, and
* ``aqe run --affected BASE`` on a copy of the baseline history (each mutation is
  judged against the same map): *missed* when it catches nothing the full run caught,

and with ``--testmon``, ``pytest --testmon`` against a copy of the baseline
``.testmondata``. It prints, per mutation, the selected fraction and wall times, then
the totals: caught, missed (each described), mean fraction selected, median wall times.

Usage::

    PY=/work/wt-s20/.venv/bin/python
    $PY benchmarks/affected.py /path/to/toolz-1.2.0 --work /tmp/bench --mutations 50
    $PY benchmarks/affected.py DIR --work W --mutations 200 --seed 1 --testmon --json-out F

The project's imports must work from its directory (``PYTHONPATH`` is set to it) and
its test dependencies must be installed in the interpreter running this script.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import tokenize
from dataclasses import asdict, dataclass
from pathlib import Path

_SWAPS = {
    "<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==",
    "+": "-", "-": "+", "*": "//", "and": "or", "or": "and", "True": "False",
    "False": "True", "is": "is not", "in": "not in",
}  # fmt: skip


@dataclass(frozen=True)
class Mutation:
    path: str
    line: int
    col: int
    before: str
    after: str

    def describe(self) -> str:
        return f"{self.path}:{self.line}:{self.col} {self.before!r} -> {self.after!r}"


def mutations(root: Path, files: list[str]) -> list[Mutation]:
    """Every single-token mutation that still parses."""
    found = []
    for relpath in files:
        source = (root / relpath).read_text(encoding="utf-8")
        lines = source.splitlines(keepends=True)
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        except (tokenize.TokenError, SyntaxError):
            continue
        for token in tokens:
            after = None
            if token.type in (tokenize.OP, tokenize.NAME) and token.string in _SWAPS:
                after = _SWAPS[token.string]
            elif token.type == tokenize.NUMBER and token.string.isdigit():
                after = str(int(token.string) + 1)
            if after is None:
                continue
            (row, col) = token.start
            line = lines[row - 1]
            mutated = line[:col] + after + line[col + len(token.string) :]
            text = "".join([*lines[: row - 1], mutated, *lines[row:]])
            try:
                ast.parse(text)
            except SyntaxError:
                continue
            found.append(Mutation(relpath, row, col, token.string, after))
    return found


def apply(root: Path, mutation: Mutation) -> None:
    path = root / mutation.path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    line = lines[mutation.line - 1]
    col = mutation.col
    assert line[col : col + len(mutation.before)] == mutation.before, mutation
    lines[mutation.line - 1] = line[:col] + mutation.after + line[col + len(mutation.before) :]
    path.write_text("".join(lines), encoding="utf-8")


_REACHED: dict[str, set[str]] = {}
_SHAPES: dict[str, dict[int, str]] = {}


def reached(root: Path, history: Path, mutation: Mutation) -> bool:
    """Whether the baseline map has a test running the mutated line's function (or the
    module-level code it is in, which runs at import): only those can be caught."""
    import sqlite3

    if not _REACHED:
        with sqlite3.connect(history) as conn:
            for (deps,) in conn.execute("SELECT deps FROM dep_tests"):
                for path, (_, functions) in json.loads(deps)["py"].items():
                    _REACHED.setdefault(path, set()).update(functions)
        _REACHED.setdefault("", set())
    from aqe._affected._source import MODULE, shape_of

    if mutation.path not in _SHAPES:
        shape = shape_of((root / mutation.path).read_bytes())
        _SHAPES[mutation.path] = {} if shape is None else shape.lines
    function = _SHAPES[mutation.path].get(mutation.line, MODULE)
    return function == MODULE or function in _REACHED.get(mutation.path, set())


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=b@b", "-c", "user.name=bench", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


#: CPU seconds (user + system) of every child run so far: the last run's is the difference.
CPU: list[float] = [0.0]


def run(
    cmd: list[str], root: Path, env: dict[str, str], timeout: float = 1800
) -> tuple[float, str]:
    """(wall seconds, output) of one run; its CPU seconds go to ``CPU`` (a shared
    machine's load stretches wall times, CPU times much less). A run past ``timeout``
    is killed: its output says "HUNG"."""
    before = os.times()
    start = time.perf_counter()
    try:
        done = subprocess.run(
            cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout
        )
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired:
        output = "HUNG"
    after = os.times()
    CPU.append(
        after.children_user - before.children_user + after.children_system - before.children_system
    )
    return time.perf_counter() - start, output


def outcomes(report: Path) -> dict[str, str]:
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {test["nodeid"]: test["outcome"] for test in data["tests"]}


def failing(found: dict[str, str], baseline: dict[str, str]) -> set[str]:
    bad = ("failed", "error", "crashed", "timeout")
    return {n for n, o in found.items() if o in bad and baseline.get(n) == "passed"}


def testmon_failing(output: str) -> tuple[set[str], int]:
    """Failing ids (from ``-rf``'s short summary) and how many tests ran."""
    bad = set()
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            bad.add(line.split(" ", 2)[1])
    ran = 0
    for line in output.splitlines()[-3:]:
        for part in line.strip("= ").split(","):
            words = part.split()
            if len(words) >= 2 and words[0].isdigit() and words[1] in ("passed", "failed"):
                ran += int(words[0])
    return bad, ran


def cpu_run(cmd: list[str], root: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU of the process and its children) of one run."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(cmd, cwd=root, env=env, capture_output=True, timeout=1800, check=False)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def overhead(
    root: Path, work: Path, reps: int, workers: int, env: dict[str, str]
) -> dict[str, object]:
    """``aqe run`` with and without ``--record-deps``, interleaved: medians and ratios."""
    history = work / "overhead.db"
    base = [sys.executable, "-m", "aqe", "run", "-w", str(workers), "--no-live", "-q"]
    base += ["--history", str(history)]
    times: dict[str, list[tuple[float, float]]] = {"plain": [], "record": []}
    for rep in range(reps):
        order = ["plain", "record"] if rep % 2 == 0 else ["record", "plain"]
        for kind in order:
            extra = ["--record-deps"] if kind == "record" else []
            times[kind].append(cpu_run([*base, *extra], root, env))
    result: dict[str, object] = {"reps": reps, "load": os.getloadavg()}
    for kind, pairs in times.items():
        result[f"{kind}_wall_median"] = round(statistics.median(w for w, _ in pairs), 2)
        result[f"{kind}_cpu_median"] = round(statistics.median(c for _, c in pairs), 2)
    for measure in ("wall", "cpu"):
        plain = result[f"plain_{measure}_median"]
        record = result[f"record_{measure}_median"]
        assert isinstance(plain, float) and isinstance(record, float)
        result[f"{measure}_ratio"] = round(record / plain, 3)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--mutations", type=int, default=50, help="caught mutations to judge")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--testmon", action="store_true")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--tries", type=int, default=0, help="give up after N (default 4x)")
    parser.add_argument(
        "--cache",
        type=Path,
        help="JSON file of full runs' verdicts per mutation, kept across invocations",
    )
    parser.add_argument(
        "--overhead", type=int, default=0, metavar="REPS", help="only --record-deps' cost"
    )
    args = parser.parse_args()
    args.work = args.work.resolve()  # the runs' working directory is the project's copy
    args.project = args.project.resolve()
    if args.overhead:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_"))}
        env.update(PYTHONPATH=str(args.project), CI="true")
        args.work.mkdir(parents=True, exist_ok=True)
        found = overhead(args.project, args.work, args.overhead, args.workers, env)
        print(json.dumps(found, indent=2))
        return 0

    root = args.work / args.project.name
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(args.project, root, ignore=shutil.ignore_patterns("*.egg-info", ".git"))
    (root / ".gitignore").write_text(".aqe/\n__pycache__/\n.testmondata*\n", encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "first")
    base = git(root, "rev-parse", "HEAD")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_"))}
    env.update(PYTHONPATH=str(root), CI="true", PYTHONDONTWRITEBYTECODE="1")
    # A mutation can make a test loop forever: a per-test limit (it then counts as failed).
    aqe = [sys.executable, "-m", "aqe", "run", "-w", str(args.workers), "--no-live"]
    aqe += ["--timeout", "120"]
    report = args.work / "report.json"

    seconds, _out = run([*aqe, "--record-deps", "--json", str(report)], root, env)
    baseline = outcomes(report)
    print(f"baseline: {len(baseline)} tests, {seconds:.1f}s, map recorded", flush=True)
    history = root / ".aqe" / "history.db"
    saved = args.work / "history-baseline.db"
    shutil.copy(history, saved)
    if args.testmon:
        t_seconds, _ = run([sys.executable, "-m", "pytest", "-q", "--testmon"], root, env)
        shutil.copy(root / ".testmondata", args.work / "testmondata-baseline")
        print(f"testmon baseline: {t_seconds:.1f}s", flush=True)

    files = [
        f
        for f in git(root, "ls-files", "*.py").splitlines()
        if "test" not in f.split("/")[-1]
        and "/tests/" not in f"/{f}"
        and "conftest" not in f
        and not f.startswith(("docs/", "setup.py"))
    ]
    pool = mutations(root, files)
    everything = len(pool)
    pool = [m for m in pool if reached(root, saved, m)]
    random.Random(args.seed).shuffle(pool)
    print(
        f"{everything} candidate mutations in {len(files)} files, {len(pool)} in code some "
        "test ran (the others no full run can catch: not tried)",
        flush=True,
    )
    cache: dict[str, dict[str, object]] = {}
    if args.cache is not None and args.cache.exists():
        cache = json.loads(args.cache.read_text(encoding="utf-8"))
    rows = []
    tries = 0
    limit = args.tries or args.mutations * 4
    for mutation in pool:
        if len(rows) >= args.mutations or tries >= limit:
            break
        tries += 1
        git(root, "reset", "-q", "--hard", base)
        apply(root, mutation)
        git(root, "commit", "-qam", mutation.describe())
        key = f"{args.project.name} {mutation.describe()}"
        if key in cache:  # the full run's verdict, from an earlier invocation
            known = cache[key]
            full_s, full_cpu = float(known["full_s"]), float(known["full_cpu"])  # type: ignore[arg-type]
            caught = set(known["caught"])  # type: ignore[call-overload]
        else:
            full_s, _ = run([*aqe, "--no-history", "--json", str(report)], root, env)
            full_cpu = CPU[-1]
            caught = failing(outcomes(report), baseline)
            cache[key] = {"full_s": full_s, "full_cpu": full_cpu, "caught": sorted(caught)}
            if args.cache is not None:
                args.cache.write_text(json.dumps(cache), encoding="utf-8")
        if not caught:
            continue
        shutil.copy(saved, history)
        for extra in ("-wal", "-shm"):
            (history.parent / (history.name + extra)).unlink(missing_ok=True)
        aff_s, aff_out = run([*aqe, "--affected", base, "--json", str(report)], root, env)
        found = outcomes(report)
        aff_caught = failing(found, baseline)
        row = {
            "mutation": mutation.describe(),
            "caught_full": sorted(caught),
            "selected": len(found),
            "total": len(baseline),
            "full_s": round(full_s, 2),
            "affected_s": round(aff_s, 2),
            "full_cpu": round(full_cpu, 2),
            "affected_cpu": round(CPU[-1], 2),
            "missed": not aff_caught,
            "missed_tests": sorted(caught - aff_caught),
        }
        row["why"] = next((x for x in aff_out.splitlines() if x.startswith("aqe: --affected")), "")
        if "nothing to run" in aff_out:
            row["selected"] = 0
        if args.testmon:
            shutil.copy(args.work / "testmondata-baseline", root / ".testmondata")
            # pytest has no per-test limit: a mutation that loops forever hangs it.
            testmon = [sys.executable, "-m", "pytest", "-q", "-rfE", "--testmon"]
            t_s, t_out = run(testmon, root, env, timeout=180)
            t_bad, t_ran = testmon_failing(t_out)
            hung = t_out == "HUNG"
            row.update(testmon_s=round(t_s, 2), testmon_missed=not (t_bad & caught) and not hung,
                       testmon_selected=t_ran, testmon_hung=hung)  # fmt: skip
        rows.append(row)
        print(
            f"[{len(rows)}] {mutation.describe()}: full {full_s:.1f}s caught {len(caught)}; "
            f"affected {aff_s:.1f}s ran {row['selected']}/{len(baseline)}; "
            f"CPU full {row['full_cpu']}s affected {row['affected_cpu']}s"
            + (" MISSED " + ",".join(row["missed_tests"][:3]) if row["missed"] else "")
            + (f"; testmon {row['testmon_s']}s ran {row['testmon_selected']}"
               + (" MISSED" if row["testmon_missed"] else "") if args.testmon else ""),
            flush=True,
        )  # fmt: skip
    git(root, "reset", "-q", "--hard", base)
    if not rows:
        print("no caught mutation")
        return 1
    missed = [r for r in rows if r["missed"]]
    summary = {
        "project": args.project.name,
        "tests": len(baseline),
        "tried": tries,
        "caught": len(rows),
        "missed": len(missed),
        "mean_fraction_selected": round(
            statistics.mean(r["selected"] / r["total"] for r in rows), 4
        ),
        "median_full_s": statistics.median(r["full_s"] for r in rows),
        "median_affected_s": statistics.median(r["affected_s"] for r in rows),
        "median_full_cpu": statistics.median(r["full_cpu"] for r in rows),
        "median_affected_cpu": statistics.median(r["affected_cpu"] for r in rows),
        "load": os.getloadavg(),
    }
    if args.testmon:
        summary.update(
            testmon_missed=sum(r["testmon_missed"] for r in rows),
            median_testmon_s=statistics.median(r["testmon_s"] for r in rows),
            testmon_mean_fraction=round(
                statistics.mean(r["testmon_selected"] / r["total"] for r in rows), 4
            ),
        )
    print(json.dumps(summary, indent=2))
    for row in missed:
        print(f"MISSED: {row['mutation']}: the full run failed {row['missed_tests']}")
    if args.json_out:
        args.json_out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    _ = asdict  # dataclass rows stay plain dicts in the output
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
