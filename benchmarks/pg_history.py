r"""The PostgreSQL history under load, on a real server: many writers, interrupts, search.

Three checks, one private PostgreSQL cluster (``tests/pg_cluster.py``: ``initdb`` in a
temporary directory as the ``postgres`` user, a loopback port, removed after):

* **writers**: ``--rounds`` rounds of 4 ``aqe run -w 1`` at once writing to one
  database (``AQE_HISTORY=postgresql://...``); in each round every run gets SIGINT at
  a random moment with probability 1/2 (seeded: ``--seed``), from its first
  milliseconds to past its end. Then, for the whole database: no result twice (run,
  test, attempt); every run row finished (its end set) with counts equal to its
  stored results' final outcomes; and for every run that wrote its JSON report, the
  stored results equal the report's, test by test and attempt by attempt. A run
  stopped before it began recording leaves no row and no report; one stopped later
  leaves both.
* **flaky**: the database exported (``aqe history export``) and imported into SQLite
  and into a second PostgreSQL database; ``aqe flaky --json`` agrees on all three.
* **similar**: a history of ``--failures`` indexed failure texts (synthetic: tracebacks
  built from a vocabulary of identifiers), the same rows in SQLite and PostgreSQL;
  the median time of ``similar_failures`` for 50 queries taken from the stored texts,
  on each store, interleaved. Results in ``benchmarks/README.md``.

Usage::

    python benchmarks/pg_history.py [--rounds 10] [--seed 1] [--failures 2000,20000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pg_cluster import Cluster, cluster

from aqe._model import RunRecord, TestResult
from aqe._store import HistoryStore, open_history
from aqe._store._postgres import SIMILAR_SQL
from aqe._store._sqlite import _COMMON, _QUERY_TERMS

#: A small suite that takes a couple of seconds at -w 1: quick tests, one failing,
#: one flaky (retried), so interrupts land before, during and after the results.
PROJECT = {
    "pyproject.toml": "[tool.pytest.ini_options]\n",
    "tests/test_work.py": """
        import os
        import time

        import pytest

        @pytest.mark.parametrize("n", range(40))
        def test_step(n):
            time.sleep(0.08)

        def test_fails():
            raise ValueError("the widget_factory returned None for order 42")

        def test_flaky():
            assert os.urandom(1)[0] % 3, "flaky: the coin came up zero"
    """,
}

FINAL = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")


def _write_project(root: Path) -> None:
    for name, text in PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_"))}
    env.update(CI="true", **extra)
    return env


def _aqe(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aqe", *args],
        cwd=cwd, env=_env(**env), capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _in_interpreter_start(err: str) -> bool:
    """SIGINT before aqe's entry point ran (the interpreter's start-up: site hooks,
    runpy, the stdlib and ``aqe/__init__.py`` importing): Python prints a traceback of
    its own there, as for any Python program; nothing was recorded yet."""
    frames = [line for line in err.splitlines() if line.lstrip().startswith("File ")]
    ours = [f for f in frames if "/aqe/" in f]
    early = ("/aqe/__init__.py", "/aqe/__main__.py", "/aqe/_version.py")
    return bool(frames) and all(any(name in f for name in early) for f in ours)


def writers(url: str, project: Path, rounds: int, seed: int) -> list[str]:
    """Run the rounds; the problems found (empty: none)."""
    rng = random.Random(seed)
    problems: list[str] = []
    reports: list[Path] = []
    interrupted = early = 0
    for round_ in range(rounds):
        procs: list[tuple[subprocess.Popen[str], float | None, float]] = []
        for i in range(4):
            report = project / f"r{round_}-{i}.json"
            reports.append(report)
            delay = rng.uniform(0.0, 6.0) if rng.random() < 0.5 else None
            proc = subprocess.Popen(
                [sys.executable, "-m", "aqe", "run", "-w", "1", "--retries", "1",
                 "--json", str(report)],
                cwd=project, env=_env(AQE_HISTORY=url), text=True,
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            )  # fmt: skip
            procs.append((proc, delay, time.monotonic()))
        try:
            pending = sorted((d + t, p) for p, d, t in procs if d is not None)
            for when, proc in pending:
                time.sleep(max(0.0, when - time.monotonic()))
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
                    interrupted += 1
            for proc, _delay, _t in procs:
                _out, err = proc.communicate(timeout=300)
                if _in_interpreter_start(err):
                    early += 1  # Python's own start-up, before aqe's first line ran
                    continue
                if "Traceback" in err:
                    problems.append(f"round {round_}: a traceback: {err.strip()[-300:]}")
                if proc.returncode not in (0, 1, 2):
                    problems.append(f"round {round_}: exit {proc.returncode}: {err.strip()[-200:]}")
        finally:
            for proc, _delay, _t in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
    written = [r for r in reports if r.exists()]
    with psycopg.connect(url) as conn:
        doubled = conn.execute(
            "SELECT count(*) FROM (SELECT run_id, nodeid, attempt FROM results"
            " GROUP BY run_id, nodeid, attempt HAVING count(*) > 1) AS d"
        ).fetchone()
        if doubled != (0,):
            problems.append(f"{doubled} (run, test, attempt) stored twice")
        runs = conn.execute(
            'SELECT run_id, "end", passed, failed, skipped, xfailed, xpassed, error FROM runs'
        ).fetchall()
        for run_id, end, *counts in runs:
            if end is None:
                problems.append(f"run {run_id}: never finished")
                continue
            final = Counter(
                outcome
                for (outcome,) in conn.execute(
                    "SELECT r.outcome FROM results AS r WHERE r.run_id = %s AND r.attempt ="
                    " (SELECT max(s.attempt) FROM results AS s"
                    "  WHERE s.run_id = r.run_id AND s.nodeid = r.nodeid)",
                    (run_id,),
                )
            )
            if [final.get(o, 0) for o in FINAL] != [c or 0 for c in counts]:
                problems.append(f"run {run_id}: counts {counts} but results {dict(final)}")
        for path in written:
            data = json.loads(path.read_text(encoding="utf-8"))
            expected = sorted((t["nodeid"], t["attempt"], t["outcome"]) for t in data["tests"])
            stored = sorted(
                conn.execute(
                    "SELECT nodeid, attempt, outcome FROM results WHERE run_id = %s",
                    (data["run"]["run_id"],),
                ).fetchall()
            )
            if [tuple(s) for s in stored] != expected:
                problems.append(f"{path.name}: stored results differ from the report")
        if len(runs) != len(written):
            problems.append(f"{len(runs)} run rows but {len(written)} reports written")
        stored_results = conn.execute("SELECT count(*) FROM results").fetchone()
    print(
        f"writers: {rounds} rounds x 4 runs, {interrupted} interrupted at random moments"
        f" ({early} while the interpreter itself started);"
        f" {len(runs)} run rows, {len(written)} reports,"
        f" {stored_results[0] if stored_results else 0} results stored;"
        f" problems: {len(problems)}"
    )
    return problems


def flaky(cluster_: Cluster, url: str, project: Path) -> list[str]:
    """``aqe flaky --json`` on the database, and on its copies in SQLite and PostgreSQL."""
    dump = project / "history.jsonl.gz"
    done = _aqe("history", "export", str(dump), "--history", url, cwd=project)
    if done.returncode:
        return [f"export failed: {done.stderr.strip()}"]
    copy_pg = cluster_.create_database("aqe_copy")
    copy_sqlite = str(project / "copy.db")
    verdicts = {}
    stores = (("postgres", url), ("postgres copy", copy_pg), ("sqlite copy", copy_sqlite))
    for name, where in stores:
        if where != url:
            done = _aqe("history", "import", str(dump), "--history", where, cwd=project)
            if done.returncode:
                return [f"import into {name} failed: {done.stderr.strip()}"]
        done = _aqe("flaky", "--json", "--history", where, cwd=project)
        if done.returncode not in (0, 1):
            return [f"aqe flaky on {name}: exit {done.returncode}: {done.stderr.strip()}"]
        verdicts[name] = json.loads(done.stdout)
    first = verdicts["postgres"]
    print(
        f"flaky: {len(json.dumps(first))} bytes of verdicts; same on every store:"
        f" {all(v == first for v in verdicts.values())}"
    )
    return [f"aqe flaky differs on {n}" for n, v in verdicts.items() if v != first]


def _vocabulary(rng: random.Random) -> list[str]:
    syllables = [
        "wid",
        "get",
        "or",
        "der",
        "fac",
        "tory",
        "cache",
        "node",
        "parse",
        "key",
        "user",
        "acct",
        "row",
        "col",
        "tok",
        "en",
        "map",
        "list",
        "req",
        "resp",
    ]
    return sorted({"_".join(rng.sample(syllables, 3)) for _ in range(4000)})


def _failure(rng: random.Random, words: list[str]) -> str:
    chosen = rng.sample(words, 6)
    return (
        f"def test_{chosen[0]}():\n"
        f">       assert {chosen[1]}({chosen[2]}) == {rng.randint(0, 999)}\n"
        f"E       AssertionError: {chosen[3]} returned None for {chosen[4]}\n"
        f"src/pkg/{chosen[5]}.py:{rng.randint(1, 900)}: AssertionError"
    )


def similar(cluster_: Cluster, tmp: Path, failures: int, seed: int) -> None:
    """Fill both stores with the same failures; time the same queries on each."""
    rng = random.Random(seed)
    words = _vocabulary(rng)
    texts = [_failure(rng, words) for _ in range(failures)]
    tmp.mkdir()
    url = cluster_.create_database(f"aqe_similar_{tmp.name}")
    stores = {
        "sqlite": HistoryStore(tmp / f"similar-{failures}.db"),
        "postgres": open_history(url),
    }
    per_run = 500
    for start in range(0, failures, per_run):
        run_id = f"run-{start // per_run:04d}"
        batch = texts[start : start + per_run]
        results = [
            TestResult(nodeid=f"tests/test_x.py::test_{start + i}", file="tests/test_x.py",
                       line=i, outcome="failed", phases={"call": 0.01}, worker=0,
                       message=text.splitlines()[2])
            for i, text in enumerate(batch)
        ]  # fmt: skip
        rows = [(r.nodeid, 1, f"k{start + i}", "AssertionError", t)
                for i, (r, t) in enumerate(zip(results, batch, strict=True))]  # fmt: skip
        for store in stores.values():
            record = RunRecord(run_id=run_id, start=float(start), command=["aqe"], root="/",
                               workers=1)  # fmt: skip
            store.begin_run(record)
            store.add_results(run_id, results)
            store.add_failure_texts(run_id, rows)
            record.end = float(start) + 1
            record.exit_code = 1
            store.finish_run(record)
    queries = [rng.choice(texts).split() for _ in range(50)]
    times: dict[str, list[float]] = {name: [] for name in stores}
    agree = 0
    for query in queries:
        found = {}
        for name, store in stores.items():
            began = time.perf_counter()
            found[name] = store.similar_failures(query, exclude_run=None, limit=10)
            times[name].append(time.perf_counter() - began)
        agree += found["sqlite"][0].nodeid == found["postgres"][0].nodeid
    # The server's own time for the same statements (EXPLAIN ANALYZE): what the query
    # and its plan cost, apart from the round trip and waiting for a CPU to run on.
    server = []
    with psycopg.connect(url) as conn:
        for query in queries:
            params = {"common": _COMMON, "text": " ".join(query), "most": _QUERY_TERMS,
                      "exclude": None, "limit": 10}  # fmt: skip
            rows = conn.execute("EXPLAIN (ANALYZE, TIMING OFF) " + SIMILAR_SQL, params)
            last = [row[0] for row in rows.fetchall()][-1]
            server.append(float(last.split(":")[1].split()[0]))
    for store in stores.values():
        store.close()
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    print(
        f"similar: {failures} failures; median query sqlite {medians['sqlite']:.2f} ms,"
        f" postgres {medians['postgres']:.2f} ms ({medians['postgres'] / medians['sqlite']:.2f}x,"
        f" of which the server's execution {statistics.median(server):.2f} ms);"
        f" same best match on {agree}/{len(queries)} queries; load {os.getloadavg()[0]:.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--failures", default="2000,20000", help="history sizes for 'similar', comma-separated"
    )
    parser.add_argument("--skip", choices=("writers", "flaky", "similar"), action="append",
                        default=[])  # fmt: skip
    args = parser.parse_args()
    problems: list[str] = []
    with cluster() as made, tempfile.TemporaryDirectory(prefix="aqe-pgbench-") as scratch:
        tmp = Path(scratch)
        url = made.create_database("aqe_history")
        project = tmp / "project"
        _write_project(project)
        if "writers" not in args.skip:
            problems += writers(url, project, args.rounds, args.seed)
        if "flaky" not in args.skip:
            problems += flaky(made, url, project)
        if "similar" not in args.skip:
            for n, size in enumerate(args.failures.split(",")):
                similar(made, tmp / str(n), int(size), args.seed)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
