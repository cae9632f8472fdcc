r"""Failure triage benchmark: do aqe's failure clusters match the bugs that caused them?

A labelled failure set is made from a real library (toolz 1.2.0 from its sdist, by
default the one pip downloads): seeded random mutations of its code (a comparison
flipped, ``+`` and ``-`` swapped, a small constant changed, a return value dropped)
are tried one at a time with ``aqe run``; a mutation is kept when it alone breaks
between 1 and ``--max-broken`` tests, in a function no kept mutation touches, until
``--bugs`` are kept. Each single-bug run is kept in the history ("past failures")
and tells which tests that bug breaks. Then all kept bugs are injected at once and
the suite runs again: each failure is labelled with the one bug that breaks it alone
(failures that several bugs, or none, break alone are left out and counted).

Scores of ``aqe failures --json`` on that run against the labels: adjusted Rand
index, homogeneity, completeness and V-measure. Retrieval: for each failure, the
top result of ``aqe failures similar`` (other runs only) must come from the run of
its own bug. Bars: ARI >= 0.90, homogeneity >= 0.95, top-1 >= 0.90.

``--scale N`` also times the similar-failure query against a history holding N
failures (real failure texts of the runs, varied), median of 50 queries; bar 50 ms
at 100,000.

Usage::

    python benchmarks/triage.py                       # 8 bugs, seed 1
    python benchmarks/triage.py --seed 2 --scale 100000
    python benchmarks/triage.py --sdist toolz-1.2.0.tar.gz
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE = "toolz==1.2.0"
LIBRARY_FILES = ("toolz/itertoolz.py", "toolz/functoolz.py", "toolz/dicttoolz.py")
TESTS = "toolz/tests"

_SWAP = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
}  # fmt: skip


@dataclass(frozen=True)
class Mutation:
    path: str
    line: int
    col: int
    end_col: int
    replacement: str
    function: str
    what: str

    def apply(self, root: Path) -> None:
        file = root / self.path
        lines = file.read_text().splitlines(keepends=True)
        text = lines[self.line - 1]
        lines[self.line - 1] = text[: self.col] + self.replacement + text[self.end_col :]
        file.write_text("".join(lines))


def candidates(root: Path) -> list[Mutation]:
    found: list[Mutation] = []
    for path in LIBRARY_FILES:
        source = (root / path).read_text()
        tree = ast.parse(source)
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef) or func.name.startswith("_"):
                continue
            for node in ast.walk(func):
                if getattr(node, "lineno", None) != getattr(node, "end_lineno", -1):
                    continue
                new: ast.AST | None = None
                what = ""
                if isinstance(node, ast.Compare) and len(node.ops) == 1:
                    swapped = _SWAP.get(type(node.ops[0]))
                    if swapped:
                        new = ast.Compare(node.left, [swapped()], node.comparators)
                        what = "comparison flipped"
                elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
                    op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
                    new, what = ast.BinOp(node.left, op, node.right), "+/- swapped"
                elif (
                    isinstance(node, ast.Constant)
                    and type(node.value) is int
                    and 0 <= node.value <= 2
                ):
                    new, what = ast.Constant(node.value + 1), "constant changed"
                elif isinstance(node, ast.Return) and node.value is not None:
                    new, what = ast.Return(ast.Constant(None)), "return value dropped"
                if new is None:
                    continue
                found.append(
                    Mutation(
                        path=path,
                        line=node.lineno,
                        col=node.col_offset,
                        end_col=node.end_col_offset or node.col_offset,
                        replacement=ast.unparse(new),
                        function=func.name,
                        what=what,
                    )
                )
    return found


def aqe(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_"))}
    # No bytecode, not even aqe's own cache of what collection imports (the library
    # too): a mutation and its undoing can land in one second with the same file size,
    # and Python would then run the stale .pyc of the other version.
    return subprocess.run(
        [sys.executable, "-m", "aqe", *args],
        cwd=root,
        env={**env, "CI": "true", "PYTHONDONTWRITEBYTECODE": "1", "AQE_BYTECODE_CACHE": "false"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def run_suite(root: Path, report: Path) -> tuple[str, set[str]]:
    """Run the tests; the run id and the tests whose final outcome failed."""
    result = aqe(root, "run", "-w", "2", "-q", "--json", str(report), TESTS)
    if result.returncode not in (0, 1) or not report.exists():
        return "", set()
    data = json.loads(report.read_text())
    final: dict[str, str] = {}
    for test in data["tests"]:
        final[test["nodeid"]] = test["outcome"]
    if data["collection_errors"]:
        return data["run"]["run_id"], {"<collection error>"}
    failed = {n for n, o in final.items() if o in ("failed", "error", "crashed", "timeout")}
    return data["run"]["run_id"], failed


def fetch(sdist: str | None, into: Path) -> Path:
    if sdist is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             "-d", str(into), PACKAGE],
            check=True,
        )  # fmt: skip
        sdist = str(next(into.glob("*.tar.gz")))
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data")
    root = next(p for p in into.iterdir() if p.is_dir())
    (root / ".gitignore").write_text(".aqe/\n")
    return root


# -- scores -------------------------------------------------------------------------


def _comb2(n: int) -> float:
    return n * (n - 1) / 2


def adjusted_rand(labels: list[str], clusters: list[str]) -> float:
    table = Counter(zip(labels, clusters, strict=True))
    rows, cols, n = Counter(labels), Counter(clusters), len(labels)
    index = sum(_comb2(v) for v in table.values())
    a, b = sum(_comb2(v) for v in rows.values()), sum(_comb2(v) for v in cols.values())
    expected = a * b / _comb2(n) if n > 1 else 0.0
    top = (a + b) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def _entropy(counts: Counter[str], n: int) -> float:
    return -sum(c / n * math.log(c / n) for c in counts.values() if c)


def _conditional(a: list[str], b: list[str]) -> float:
    """H(a | b)."""
    n = len(a)
    joint = Counter(zip(a, b, strict=True))
    cols = Counter(b)
    return -sum(c / n * math.log(c / cols[y]) for (_, y), c in joint.items())


def v_measure(labels: list[str], clusters: list[str]) -> tuple[float, float, float]:
    n = len(labels)
    h_labels, h_clusters = _entropy(Counter(labels), n), _entropy(Counter(clusters), n)
    homogeneity = 1.0 if h_labels == 0 else 1 - _conditional(labels, clusters) / h_labels
    completeness = 1.0 if h_clusters == 0 else 1 - _conditional(clusters, labels) / h_clusters
    total = homogeneity + completeness
    return homogeneity, completeness, (2 * homogeneity * completeness / total if total else 0.0)


# -- the benchmark ---------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", help=f"sdist of {PACKAGE} (default: pip download it)")
    parser.add_argument("--bugs", type=int, default=8)
    parser.add_argument("--max-broken", type=int, default=25)
    parser.add_argument("--tries", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=int, default=0, help="Also time similar search at N.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Show retrieval misses.")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from aqe._knowledge import _commands
    from aqe._store import HistoryStore

    with tempfile.TemporaryDirectory(prefix="aqe-triage-") as tmp:
        root = fetch(args.sdist, Path(tmp))
        pristine = {path: (root / path).read_text() for path in LIBRARY_FILES}
        rng = random.Random(args.seed)
        pool = candidates(root)
        rng.shuffle(pool)
        kept: list[tuple[Mutation, str, set[str]]] = []
        used: set[tuple[str, str]] = set()
        tried = 0
        for mutation in pool:
            if len(kept) == args.bugs or tried == args.tries:
                break
            if (mutation.path, mutation.function) in used:
                continue
            tried += 1
            mutation.apply(root)
            run_id, broken = run_suite(root, Path(tmp) / f"single{tried}.json")
            for path, text in pristine.items():
                (root / path).write_text(text)
            if not broken or len(broken) > args.max_broken or "<collection error>" in broken:
                continue
            kept.append((mutation, run_id, broken))
            used.add((mutation.path, mutation.function))
        print(f"tried {tried} mutations of {len(pool)}; kept {len(kept)} bugs:")
        for mutation, _, broken in kept:
            print(f"  {mutation.path}:{mutation.line} {mutation.function}: {mutation.what} "
                  f"-> breaks {len(broken)} tests")  # fmt: skip
        for mutation, _, _ in kept:
            mutation.apply(root)
        all_run, failed = run_suite(root, Path(tmp) / "all.json")
        labels: dict[str, str] = {}
        ambiguous = unexplained = 0
        for nodeid in failed:
            owners = [m.function for m, _, broken in kept if nodeid in broken]
            if len(owners) == 1:
                labels[nodeid] = owners[0]
            elif owners:
                ambiguous += 1
            else:
                unexplained += 1
        clustering = json.loads(aqe(root, "failures", "--run", all_run, "--json").stdout)
        cluster_of = {n: g["key"] for g in clustering["clusters"] for n in g["tests"]}
        ids = sorted(labels)
        truth = [labels[n] for n in ids]
        found = [cluster_of[n] for n in ids]
        ari = adjusted_rand(truth, found)
        homogeneity, completeness, v = v_measure(truth, found)
        # The same run clustered by fingerprints alone (as on a first sighting, with
        # no past run in which these tests broke together).
        alone_store = HistoryStore(root / ".aqe" / "history.db")
        alone = _commands.clusters(all_run, alone_store.results_for_run(all_run), str(root))
        alone_store.close()
        alone_of = {n: g["key"] for g in alone["clusters"] for n in g["tests"]}
        alone_found = [alone_of[n] for n in ids]
        alone_h = v_measure(truth, alone_found)
        bug_of_run = {run_id: m.function for m, run_id, _ in kept}
        store = HistoryStore(root / ".aqe" / "history.db")
        hits = 0
        for nodeid in ids:
            near = _commands.similar(store, nodeid, all_run, 1)["similar"]
            hit = bool(near) and bug_of_run.get(near[0]["run_id"]) == labels[nodeid]
            hits += hit
            if not hit and args.verbose:
                print(f"  miss: {nodeid} ({labels[nodeid]}) -> {near[:1]}")
        top1 = hits / len(ids) if ids else float("nan")
        print(
            f"all {len(kept)} bugs at once: {len(failed)} failures, {len(ids)} labelled "
            f"({ambiguous} broken by several bugs alone, {unexplained} by none alone)"
        )
        print(f"clusters found: {len(set(found))} for {len(set(truth))} bugs")
        cause_of = {g["key"]: g["cause"] for g in clustering["clusters"]}
        for bug in sorted(set(truth)):
            keys = Counter(k for t, k in zip(truth, found, strict=True) if t == bug)
            if len(keys) > 1:
                split = ", ".join(f"{cause_of[k]} x{n}" for k, n in keys.items())
                print(f"  bug in {bug} split into {len(keys)}: {split}")
        for key in sorted(set(found)):
            bugs = Counter(t for t, k in zip(truth, found, strict=True) if k == key)
            if len(bugs) > 1:
                mixed = ", ".join(f"{bug} x{n}" for bug, n in bugs.items())
                print(f"  cluster {cause_of[key]} holds {len(bugs)} bugs: {mixed}")
        print(f"ARI {ari:.3f} (bar 0.90), homogeneity {homogeneity:.3f} (bar 0.95), "
              f"completeness {completeness:.3f}, V-measure {v:.3f}")  # fmt: skip
        print(f"top-1 retrieval of a past failure of the same bug: {top1:.3f} (bar 0.90)")
        print(f"fingerprints alone (no history links): {len(set(alone_found))} clusters, "
              f"ARI {adjusted_rand(truth, alone_found):.3f}, homogeneity {alone_h[0]:.3f}, "
              f"completeness {alone_h[1]:.3f}")  # fmt: skip
        ok = ari >= 0.90 and homogeneity >= 0.95 and top1 >= 0.90
        if args.scale:
            ok &= scale(store, all_run, ids, args.scale, Path(tmp))
        store.close()
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def scale(store: Any, run_id: str, nodeids: list[str], count: int, tmp: Path) -> bool:
    """Time the similar-failure query against ``count`` indexed failures.

    The index is filled the way a long history fills it: ``count / 20`` distinct
    tests, each failing 20 times (numbers in its message vary), each with one of
    the real causes of the benchmark's runs. The queries are failures of stored
    tests. A worst case is timed too: the real failure texts alone, repeated, so
    that every term is in thousands of failures.
    """
    from aqe._knowledge._triage import signature
    from aqe._store import HistoryStore

    texts = [
        signature(result.to_dict()).text.split()
        for result in store.results_for_run(run_id)
        if result.outcome in ("failed", "error")
    ]
    rng = random.Random(7)

    def fill(path: Path, make: Any) -> Any:
        index = HistoryStore(path)
        batch: list[tuple[str, int, str, str, str]] = []
        for i in range(count):
            batch.append(make(i))
            if len(batch) == 5000:
                index.add_failure_texts(f"run{i // 5000}", batch)
                batch = []
        if batch:
            index.add_failure_texts("last", batch)
        return index

    def realistic(i: int) -> tuple[str, int, str, str, str]:
        test = i % max(1, count // 20)
        words = [*texts[test % len(texts)], f"test_case_{test}", f"test_mod{test % 300}"]
        words.append(f"value{rng.randrange(100)}")
        return (f"tests/test_mod{test % 300}.py::test_case_{test}", 1, "k", "c", " ".join(words))

    def repeated(i: int) -> tuple[str, int, str, str, str]:
        return (f"tests/t.py::test_{i}", 1, "k", "c", " ".join(texts[i % len(texts)]))

    ok = True
    for name, make, queries in (
        ("realistic", realistic, [realistic(rng.randrange(count))[4].split() for _ in range(50)]),
        ("worst case", repeated, [texts[i % len(texts)] for i in range(50)]),
    ):
        index = fill(tmp / f"{name.replace(' ', '_')}.db", make)
        times = []
        for words in queries:
            start = time.perf_counter()
            index.similar_failures(words, exclude_run="none", limit=5)
            times.append(time.perf_counter() - start)
        index.close()
        median = statistics.median(times) * 1000
        bar = " (bar 50 ms)" if name == "realistic" else ""
        print(
            f"similar-failure query over {count:,} stored failures ({name}): median "
            f"{median:.1f} ms of 50 queries{bar}"
        )
        if name == "realistic":
            ok = median < 50
    return ok


if __name__ == "__main__":
    sys.exit(main())
