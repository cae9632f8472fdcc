r"""How much a first run's wall time depends on luck: test order without history.

On a first run nobody knows which tests are long. A runner picks some order, and the
run's tail is decided by where the longest tests happen to fall in it: a 4 s test that
starts when the other worker has 1 s of work left costs 3 s of idle time, and no
scheduler can tell it apart from a 0.01 s test before it has run.

This script replays a generated suite (its ``manifest.json``: every test's duration)
through a model of aqe's first-run schedule with no overhead at all: files dealt to
two workers' queues, each file's tests run in order on one worker with one test of
lookahead, an idle worker takes half of another's unstarted files, else the tail of
the file it is running (all but the test running and the one sent after it). It does
so for many random file orders and for the order aqe derives from file sizes, and
prints the distribution next to the ideal bound ``max(longest, total / 2)``.

Each file's module fixture and import cost is paid by every worker that runs a test of
the file (a stolen tail pays it again). Start-up, collection and exit are left out, so
a real run adds its fixed cost (about 0.5 s) to these figures.

Usage::

    python benchmarks/firstrun_order.py benchmarks/_suites/heavy
    python benchmarks/firstrun_order.py SUITE_DIR --orders 10000 --seed 2
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
from pathlib import Path

WORKERS = 2


def load(suite: Path) -> tuple[list[str], list[list[float]], list[float]]:
    """File names (sorted), each file's test durations in file order, and what a
    worker pays once for a file (module fixture and import)."""
    manifest = json.loads((suite / "manifest.json").read_text())
    files: dict[str, list[float]] = {}
    for test in manifest["tests"]:
        files.setdefault(test["nodeid"].split("::")[0], []).append(test["duration"])
    setup = {f["path"]: f["fixture_seconds"] + f["import_ms"] / 1000 for f in manifest["files"]}
    names = sorted(files)
    return names, [files[name] for name in names], [setup.get(name, 0.0) for name in names]


def deal(order: list[int], weights: list[float]) -> list[list[int]]:
    """Longest-first onto the least loaded queue, as aqe deals files."""
    queues: list[list[int]] = [[] for _ in range(WORKERS)]
    loads = [0.0] * WORKERS
    for index in order:
        target = loads.index(min(loads))
        queues[target].append(index)
        loads[target] += weights[index]
    return queues


Unit = tuple[int, list[float]]  # a file's index, the durations of its tests left


def makespan(files: list[list[float]], setup: list[float], queues: list[list[int]]) -> float:
    """Wall time of the modelled schedule (no fixed cost)."""
    todo: list[list[Unit]] = [[(i, list(files[i])) for i in queue] for queue in queues]
    current: list[Unit] = [(-1, []) for _ in range(WORKERS)]
    seen: list[set[int]] = [set() for _ in range(WORKERS)]
    busy_until = [0.0] * WORKERS
    finished = [0.0] * WORKERS
    events = [(0.0, w) for w in range(WORKERS)]
    heapq.heapify(events)
    while events:
        now, worker = heapq.heappop(events)
        if not current[worker][1] and todo[worker]:
            current[worker] = todo[worker].pop(0)
        if not current[worker][1]:
            _steal(worker, todo, current, busy_until, now)
        file, tests = current[worker]
        if not tests:
            finished[worker] = now
            continue
        duration = tests.pop(0)
        if file not in seen[worker]:
            seen[worker].add(file)
            duration += setup[file]
        busy_until[worker] = now + duration
        heapq.heappush(events, (busy_until[worker], worker))
    return max(finished)


def _steal(
    thief: int,
    todo: list[list[Unit]],
    current: list[Unit],
    busy_until: list[float],
    now: float,
) -> None:
    for victim in range(WORKERS):
        if victim == thief:
            continue
        if todo[victim]:
            keep = len(todo[victim]) // 2
            todo[thief] = todo[victim][keep:]
            todo[victim] = todo[victim][:keep]
            current[thief] = todo[thief].pop(0)
            return
        # The victim keeps the test it runs and the one already sent to it.
        file, tests = current[victim]
        sent = 1 if busy_until[victim] > now else 0
        if len(tests) > sent:
            current[thief] = (file, tests[sent:])
            current[victim] = (file, tests[:sent])
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", type=Path, help="a gensuite.py suite directory")
    parser.add_argument("--orders", type=int, default=4000, help="random orders (4000)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    names, files, setup = load(args.suite)
    totals = [sum(durations) for durations in files]
    ideal = max(max(max(d) for d in files), sum(totals) / WORKERS)
    rng = random.Random(args.seed)
    spans = []
    for _ in range(args.orders):
        order = list(range(len(files)))
        rng.shuffle(order)
        spans.append(makespan(files, setup, deal(order, [1.0] * len(files))))
    spans.sort()

    def at(q: float) -> float:
        return spans[min(len(spans) - 1, int(q * len(spans)))]

    sizes = [float((args.suite / name).stat().st_size) for name in names]
    by_size = sorted(range(len(files)), key=lambda i: -sizes[i])
    aqe_order = makespan(files, setup, deal(by_size, sizes))
    rank = sum(span < aqe_order for span in spans) / len(spans)
    # What aqe does since 0227f54: files dealt by size, each worker runs its own in
    # pytest's (file name) order.
    in_order = makespan(files, setup, [sorted(q) for q in deal(by_size, sizes)])
    in_rank = sum(span < in_order for span in spans) / len(spans)
    print(f"suite {args.suite}: {len(names)} files, ideal bound {ideal:.2f} s")
    print(
        f"{args.orders} random orders: median {at(0.5):.2f} s ({at(0.5) / ideal:.3f}x), "
        f"p75 {at(0.75):.2f}, p90 {at(0.9):.2f}, p99 {at(0.99):.2f}, "
        f"mean {statistics.mean(spans):.2f}"
    )
    print(
        f"aqe's first-run order until 0227f54 (files by size): {aqe_order:.2f} s "
        f"({aqe_order / ideal:.3f}x), slower than {rank:.0%} of random orders"
    )
    print(
        f"dealt by size, run in pytest's order: {in_order:.2f} s "
        f"({in_order / ideal:.3f}x), slower than {in_rank:.0%} of random orders"
    )


if __name__ == "__main__":
    main()
