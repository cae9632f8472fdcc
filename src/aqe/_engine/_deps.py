"""The dependency gate: tests held back until the tests they depend on have ended.

A test marked ``depends(...)`` (or ``pytest-dependency``'s marker) waits here; it is
released once every dependency passed, and skipped, naming the dependency, once
one did not. When nothing else can run, what still waits is settled: dependencies
that never ran, or a cycle (a mistake in the suite, reported as such). No pytest,
no processes: the coordinator records the skips and hands releases to the planner.

``review`` and ``settle`` are lazy: each skip the coordinator records ends that
test, which may decide others before the generator reaches them (they are then
skipped as depending on a skipped test, as pytest-dependency would say).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from .._verdicts import PASSING

#: How a skip reason says what became of a dependency.
_VERB = {
    "failed": "failed",
    "error": "had an error",
    "crashed": "crashed",
    "timeout": "timed out",
    "skipped": "was skipped",
    "xfailed": "failed (xfail)",
}


class DependencyGate:
    def __init__(self) -> None:
        #: Each test's outcome once no attempt of it is left to run.
        self.final: dict[str, str] = {}
        #: Tests held back: node id -> the refs it waits for.
        self.waiting: dict[str, tuple[str, ...]] = {}
        #: A mistake found in the suite (a cycle), for a usage error.
        self.usage_error = ""
        self._held_once: set[str] = set()

    def hold(self, nodeid: str, refs: tuple[str, ...]) -> None:
        """Hold ``nodeid`` until ``refs`` end; once per test (a file collected
        again brings it again), never after it ended."""
        if nodeid not in self.final and nodeid not in self._held_once:
            self._held_once.add(nodeid)
            self.waiting[nodeid] = refs

    def end(self, nodeid: str, outcome: str) -> None:
        self.final[nodeid] = outcome

    def states(self, refs: Sequence[str]) -> list[tuple[str, str | None]]:
        """(ref, outcome so far) per dependency; a ref that names a parametrized test
        stands for all its instances (a failing one counts first)."""
        found: list[tuple[str, str | None]] = []
        for ref in refs:
            if ref in self.final:
                found.append((ref, self.final[ref]))
                continue
            family = [o for n, o in self.final.items() if n.startswith(ref + "[")]
            bad = [o for o in family if o not in PASSING]
            found.append((ref, bad[0] if bad else (family[0] if family else None)))
        return found

    def review(self) -> Iterator[tuple[str, str | None]]:
        """(node id, skip reason) for a test a dependency failed, (node id, None)
        for one free to run; each leaves the gate as it is yielded."""
        for nodeid, refs in list(self.waiting.items()):
            if nodeid not in self.waiting:
                continue  # settled meanwhile (a skip recorded for another one)
            states = self.states(refs)
            failed = [(ref, o) for ref, o in states if o is not None and o not in PASSING]
            if failed:
                ref, outcome = failed[0]
                del self.waiting[nodeid]
                yield nodeid, f"depends on {ref}, which {_VERB.get(outcome, outcome)}"
            elif all(o is not None for _, o in states):
                del self.waiting[nodeid]
                yield nodeid, None

    def settle(self) -> Iterator[tuple[str, str]]:
        """Nothing else can run: (node id, skip reason) for every test still waiting.
        A cycle sets ``usage_error``."""
        graph = {n: [r for r in refs if r in self.waiting] for n, refs in self.waiting.items()}
        cycle = find_cycle(graph)
        loop = " -> ".join([*cycle, cycle[0]]) if cycle else ""
        if cycle:
            self.usage_error = f"dependency cycle: {loop}"
        for nodeid, refs in list(self.waiting.items()):
            if nodeid not in self.waiting:
                continue
            missing = [ref for ref, o in self.states(refs) if o is None]
            reason = (
                f"in a dependency cycle: {loop}"
                if nodeid in cycle
                else f"depends on {missing[0] if missing else refs[0]}, which did not run"
            )
            del self.waiting[nodeid]
            yield nodeid, reason


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle in ``graph`` (node -> nodes it waits for), or []."""
    done: set[str] = set()
    for start in graph:
        if start in done:
            continue
        path = [start]
        on_path = {start}
        stack: list[Iterator[str]] = [iter(graph.get(start, ()))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
            elif child in on_path:
                return path[path.index(child) :]
            elif child not in done:
                stack.append(iter(graph.get(child, ())))
                path.append(child)
                on_path.add(child)
    return []
