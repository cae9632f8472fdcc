"""Mutation score: the share of small injected faults that a test file detects.

Coverage says a line ran, not that a test would notice it being wrong. aqe's own AST
mutator makes one fault at a time in the module's source, each a classic operator:

- ``arith``: ``+``/``-``, ``*``/``/``, ``//`` -> ``/``, ``%`` -> ``*``, ``**`` -> ``*``,
  ``<<``/``>>``, ``&``/``|``, ``^`` -> ``&`` (also in ``+=`` and friends);
- ``compare``: ``<`` -> ``<=``, ``<=`` -> ``<``, ``>`` -> ``>=``, ``>=`` -> ``>``, ``==``/``!=``,
  ``is``/``is not``, ``in``/``not in``;
- ``boolean``: ``and``/``or``; ``not x`` -> ``x``; ``-x`` -> ``x``;
- ``constant``: an int ``n`` -> ``n + 1``, ``True``/``False``, a string ``s`` -> ``'XX' + s + 'XX'``
  (docstrings, annotations and ``__all__`` are left alone);
- ``return``: ``return expr`` -> ``return None``; ``break``/``continue`` swapped.

Each mutant runs the test file in its own process: a runner that has imported pytest,
but neither the module nor the tests, forks once per mutant, and an import hook in the
child compiles the mutated tree in place of the module (so ``from pkg import mod`` and the
package's own ``__init__`` get the mutant too). A mutant is killed when the run fails or
errors, or outlives its timeout (a fault that makes a loop endless is detected); it
survives when the file passes. Without a green baseline there is no score. The whole run is
bounded in time: mutants not reached are counted apart, never as survivors.
"""

from __future__ import annotations

import ast
import copy
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ARITH: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.Mult,
    ast.Pow: ast.Mult,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
    ast.BitXor: ast.BitAnd,
}
_COMPARE: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
OPERATORS = ("arith", "compare", "boolean", "constant", "return")
#: Hypothesis examples per property test in a mutant's run (and the unchanged run).
MUTANT_EXAMPLES = 20


@dataclass(frozen=True)
class Mutant:
    index: int
    line: int
    operator: str
    description: str


class _Mutator(ast.NodeTransformer):
    """Walks the tree in a fixed order, numbering each place a fault can go; applies the
    one numbered ``target`` (or none, to list them all)."""

    def __init__(self, target: int | None = None) -> None:
        self.target = target
        self.count = 0
        self.found: list[Mutant] = []
        self.line = 0  # first line of the statement being walked (as coverage.py counts)

    def visit(self, node: ast.AST) -> Any:
        if not isinstance(node, ast.stmt):
            return super().visit(node)
        saved, self.line = self.line, node.lineno
        try:
            return super().visit(node)
        finally:
            self.line = saved

    def _point(self, node: ast.AST, operator: str, description: str) -> bool:
        index = self.count
        self.count += 1
        self.found.append(Mutant(index, self.line, operator, description))
        return index == self.target

    # -- places left alone ------------------------------------------------------------------
    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        start = 0
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            start = 1 if isinstance(body[0].value.value, str) else 0  # a docstring
        out = body[:start]
        for stmt in body[start:]:
            new = self.visit(stmt)
            out.extend(new if isinstance(new, list) else [new] if new is not None else [])
        return out

    def visit_Module(self, node: ast.Module) -> ast.AST:
        node.body = self._body(node.body)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args.defaults = [self.visit(d) for d in node.args.defaults]
        node.args.kw_defaults = [
            self.visit(d) if d is not None else None for d in node.args.kw_defaults
        ]
        node.body = self._body(node.body)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.body = self._body(node.body)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return node
        return self.generic_visit(node)

    def visit_If(self, node: ast.If) -> ast.AST:
        test = ast.unparse(node.test)
        if test.endswith("TYPE_CHECKING") or test.startswith("__name__"):
            return node
        node.test = self.visit(node.test)
        node.body = self._body(node.body)
        node.orelse = self._body(node.orelse)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        return node  # f-string parts: message text, mutated through their expressions below

    # -- faults -----------------------------------------------------------------------------
    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        other = _ARITH.get(type(node.op))
        if other is not None and self._point(node, "arith", f"{_sym(node.op)} -> {_sym(other())}"):
            node.op = other()
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        other = _ARITH.get(type(node.op))
        if other is not None and self._point(
            node, "arith", f"{_sym(node.op)}= -> {_sym(other())}="
        ):
            node.op = other()
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        for index, op in enumerate(node.ops):
            other = _COMPARE.get(type(op))
            if other is not None and self._point(node, "compare", f"{_sym(op)} -> {_sym(other())}"):
                node.ops[index] = other()
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        self.generic_visit(node)
        swap = ast.Or if isinstance(node.op, ast.And) else ast.And
        if self._point(node, "boolean", f"{_sym(node.op)} -> {_sym(swap())}"):
            node.op = swap()
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, (ast.Not, ast.USub)):
            if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
                return node  # -1 is a constant: the constant operator covers it
            if self._point(node, "boolean", f"drop {_sym(node.op)}"):
                return node.operand
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._point(node, "constant", f"{value} -> {not value}"):
                return ast.copy_location(ast.Constant(not value), node)
        elif isinstance(value, int):
            if self._point(node, "constant", f"{value} -> {value + 1}"):
                return ast.copy_location(ast.Constant(value + 1), node)
        elif isinstance(value, str) and value:
            if self._point(node, "constant", f"{value[:20]!r} -> 'XX...XX'"):
                return ast.copy_location(ast.Constant(f"XX{value}XX"), node)
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        self.generic_visit(node)
        if node.value is None or (
            isinstance(node.value, ast.Constant) and node.value.value is None
        ):
            return node
        if self._point(node, "return", "return None"):
            node.value = ast.copy_location(ast.Constant(None), node.value)
        return node

    def visit_Break(self, node: ast.Break) -> ast.AST:
        if self._point(node, "return", "break -> continue"):
            return ast.copy_location(ast.Continue(), node)
        return node

    def visit_Continue(self, node: ast.Continue) -> ast.AST:
        if self._point(node, "return", "continue -> break"):
            return ast.copy_location(ast.Break(), node)
        return node


def _sym(op: ast.AST) -> str:
    return {
        ast.Add: "+",
        ast.Sub: "-",
        ast.Mult: "*",
        ast.Div: "/",
        ast.FloorDiv: "//",
        ast.Mod: "%",
        ast.Pow: "**",
        ast.LShift: "<<",
        ast.RShift: ">>",
        ast.BitAnd: "&",
        ast.BitOr: "|",
        ast.BitXor: "^",
        ast.Lt: "<",
        ast.LtE: "<=",
        ast.Gt: ">",
        ast.GtE: ">=",
        ast.Eq: "==",
        ast.NotEq: "!=",
        ast.Is: "is",
        ast.IsNot: "is not",
        ast.In: "in",
        ast.NotIn: "not in",
        ast.And: "and",
        ast.Or: "or",
        ast.Not: "not",
        ast.USub: "-",
    }.get(type(op), type(op).__name__)


def list_mutants(source: str) -> list[Mutant]:
    """Every fault the operators can make in ``source``, in a fixed order."""
    mutator = _Mutator()
    mutator.visit(ast.parse(source))
    return mutator.found


def mutated_tree(source: str, index: int) -> ast.Module:
    """The module's tree with fault number ``index`` in it."""
    tree = ast.parse(source)
    mutator = _Mutator(index)
    new = mutator.visit(copy.deepcopy(tree))
    ast.fix_missing_locations(new)
    return new  # type: ignore[no-any-return]


def sample(count: int, limit: int | None, seed: int = 0) -> list[int]:
    """Which mutants to run: all, or a fixed random sample of ``limit`` (same seed, same
    sample, so two test files of one module meet the same faults)."""
    if limit is None or count <= limit:
        return list(range(count))
    return sorted(random.Random(seed).sample(range(count), limit))


@dataclass
class Score:
    """What a mutation run found."""

    total: int = 0  # mutants the module has
    sampled: int = 0  # of which this run was to try
    killed: int = 0
    survived: int = 0
    timeouts: int = 0  # counted in killed
    not_run: int = 0  # past the time bound
    baseline: str = "passed"  # or why there is no score
    seconds: float = 0.0
    survivors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def percent(self) -> float | None:
        ran = self.killed + self.survived
        if self.baseline != "passed" or not ran:
            return None
        return 100.0 * self.killed / ran

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "sampled": self.sampled,
            "killed": self.killed,
            "survived": self.survived,
            "timeouts": self.timeouts,
            "not_run": self.not_run,
            "baseline": self.baseline,
            "percent": None if self.percent is None else round(self.percent, 1),
            "seconds": round(self.seconds, 2),
            "survivors": self.survivors[:50],
        }


def measure(
    module: str,
    module_file: str,
    test_file: Path,
    root: Path,
    paths: list[str],
    *,
    limit: int | None = 150,
    seconds: float = 60.0,
    jobs: int = 2,
    seed: int = 0,
    python: str | None = None,
) -> Score:
    """Run ``test_file`` against mutants of ``module`` (a child process; see the module
    docstring). ``python`` is the interpreter that has the module and pytest."""
    source = Path(module_file).read_text(encoding="utf-8")
    found = list_mutants(source)
    chosen = sample(len(found), limit, seed)
    request = {
        "module": module,
        "file": module_file,
        "test_file": str(test_file),
        "root": str(root),
        "paths": paths,
        "mutants": chosen,
        "seconds": seconds,
        "jobs": jobs,
    }
    work = test_file.with_name(f"{test_file.stem}.mutants.json")
    work.write_text(json.dumps(request), encoding="utf-8")
    out = work.with_suffix(".out")
    out.unlink(missing_ok=True)  # never a previous run's outcomes
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COVERAGE_"))}
    env["PYTHONHASHSEED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [python or sys.executable, "-m", "aqe._generate._mutate", str(work), str(out)]
    started = time.monotonic()
    score = Score(total=len(found), sampled=len(chosen))
    proc = subprocess.Popen(
        command,
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # forks left behind by a killed runner
        except ProcessLookupError:
            pass
    score.seconds = time.monotonic() - started
    outcomes: dict[str, str] = {}
    if out.exists():
        data = json.loads(out.read_text(encoding="utf-8"))
        score.baseline = data["baseline"]
        outcomes = data["outcomes"]
    else:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        score.baseline = f"the mutation runner failed: {tail[0][:200]}"
    by_index = {m.index: m for m in found}
    for index in chosen:
        outcome = outcomes.get(str(index))
        if outcome in ("killed", "timeout"):
            score.killed += 1
            score.timeouts += outcome == "timeout"
        elif outcome == "survived":
            score.survived += 1
            mutant = by_index[index]
            score.survivors.append(
                {"line": mutant.line, "operator": mutant.operator, "change": mutant.description}
            )
        else:
            score.not_run += 1
    return score


# -- the runner (python -m aqe._generate._mutate REQUEST OUT) -----------------------------


class _Finder(importlib.abc.MetaPathFinder):
    """Gives ``module`` a loader that executes the mutated tree instead of the file."""

    def __init__(self, module: str, tree: ast.Module, origin: str) -> None:
        self.module = module
        self.tree = tree
        self.origin = origin

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.module:
            return None
        real = importlib.machinery.PathFinder.find_spec(fullname, path)
        if real is None or real.origin is None:
            return None
        loader = _Loader(self.tree, real.origin)
        return importlib.util.spec_from_file_location(
            fullname,
            real.origin,
            loader=loader,
            submodule_search_locations=real.submodule_search_locations,
        )


class _Loader(importlib.abc.Loader):
    def __init__(self, tree: ast.Module, origin: str) -> None:
        self.tree = tree
        self.origin = origin

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        exec(compile(self.tree, self.origin, "exec"), module.__dict__)


def _pytest_args(request: dict[str, Any]) -> list[str]:
    return [
        request["test_file"],
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        # Pass or fail is all a mutant's run needs: no assertion rewriting (it compiled the
        # whole test file again in every fork).
        "--assert=plain",
        # The runner imported the plugins before pytest's rewrite hook (to fork faster):
        # a project's filterwarnings = error must not turn that notice into a failure.
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        f"--rootdir={request['root']}",
    ]


class _Select:
    """A pytest plugin that runs only the tests that ran the mutated statement (all when
    ``keep`` is None), Hypothesis tests last: a plain case that fails ends the run sooner."""

    def __init__(self, keep: set[str] | None) -> None:
        self.keep = keep

    def pytest_collection_modifyitems(self, config: Any, items: list[Any]) -> None:
        if self.keep is not None:
            items[:] = [item for item in items if item.nodeid in self.keep]
        items.sort(key=lambda item: bool(getattr(getattr(item, "obj", None), "hypothesis", 0)))


class _Contexts:
    """A pytest plugin that tells coverage.py which test is running (the baseline run)."""

    def __init__(self, cov: Any) -> None:
        self.cov = cov

    def pytest_runtest_setup(self, item: Any) -> None:
        self.cov.switch_context(item.nodeid)


def _child(
    request: dict[str, Any], index: int | None, tests: dict[int, list[str]] | None = None
) -> None:
    """In a fork: the mutant in place of the module, then the tests that ran its line (all
    when unknown); exit 0 if they pass. The baseline (no mutant) writes, per line of the
    module, the tests that ran it."""
    import pytest

    os.setpgid(0, 0)
    try:
        cov = None
        plugins: list[Any] = []
        if index is not None:
            source = Path(request["file"]).read_text(encoding="utf-8")
            tree = mutated_tree(source, index)
            sys.meta_path.insert(0, _Finder(request["module"], tree, request["file"]))
            line = request["lines"].get(str(index))
            if tests is not None and tests.get(line) and "" not in tests[line]:
                plugins.append(_Select(set(tests[line])))
            else:
                plugins.append(_Select(None))
        else:
            cov = _start_coverage(request["file"])
            if cov is not None:
                plugins.append(_Contexts(cov))
        code = pytest.main(_pytest_args(request), plugins=plugins)
        if cov is not None:
            cov.stop()
            data = cov.get_data()
            by_line = data.contexts_by_lineno(os.path.realpath(request["file"]))
            statements = cov.analysis2(request["file"])[1]
            # "" is the import (collection): a statement run only then runs every test.
            ran = {str(n): by_line.get(n, []) for n in statements}
            Path(request["lines_out"]).write_text(json.dumps(ran), encoding="utf-8")
    except BaseException:
        os._exit(3)
    os._exit(0 if int(code) == 0 else 1)


def _start_coverage(file: str) -> Any:
    try:
        import coverage
    except ImportError:
        return None
    cov = coverage.Coverage(data_file=None, include=[file], branch=False)
    cov.start()
    return cov


def _run(request: dict[str, Any], index: int | None, timeout: float) -> tuple[str, float]:
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(request, index)
    deadline = started + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return ("survived" if code == 0 else "killed"), time.monotonic() - started
        if time.monotonic() > deadline:
            _kill(pid)
            return "timeout", time.monotonic() - started
        time.sleep(0.005)


def _kill(pid: int) -> None:
    for target in (-pid, pid):
        try:
            os.kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _pool(
    request: dict[str, Any],
    indices: list[int],
    timeout: float,
    deadline: float,
    jobs: int,
    tests: dict[int, list[str]] | None,
) -> Iterator[tuple[int, str]]:
    """Run mutants ``jobs`` at a time until ``deadline``."""
    pending = list(indices)
    running: dict[int, tuple[int, float]] = {}  # pid -> (mutant, started)
    while pending or running:
        while pending and len(running) < jobs and time.monotonic() < deadline:
            index = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                _child(request, index, tests)
            running[pid] = (index, time.monotonic())
        if not running:
            return
        for pid, (index, started) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del running[pid]
                code = os.waitstatus_to_exitcode(status)
                yield index, "survived" if code == 0 else "killed"
            elif time.monotonic() - started > timeout:
                _kill(pid)
                del running[pid]
                yield index, "timeout"
        time.sleep(0.005)


def _preload() -> None:
    """Import pytest, its plugins and Hypothesis once, before the forks: each fork then
    starts pytest in a fraction of the time (plugins are what take long)."""
    import importlib.metadata

    import pytest  # noqa: F401

    for entry in importlib.metadata.entry_points(group="pytest11"):
        try:
            entry.load()
        except Exception:
            continue
    try:
        from hypothesis import settings
    except ImportError:
        return
    # Property tests draw 20 examples a mutant instead of 100: the mutants' runs are many,
    # and every tool's file gets the same (a test's own max_examples still wins).
    settings.register_profile("aqe-mutants", max_examples=MUTANT_EXAMPLES)
    settings.load_profile("aqe-mutants")


def main(argv: list[str]) -> int:
    request = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    sys.path[:0] = [request["root"], *request["paths"]]
    started = time.monotonic()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    _preload()
    outcomes: dict[str, str] = {}
    request["lines_out"] = argv[1] + ".lines"
    mutants = list_mutants(Path(request["file"]).read_text("utf-8"))
    request["lines"] = {str(m.index): m.line for m in mutants}
    baseline, took = _run(request, None, max(60.0, float(request["seconds"])))
    result: dict[str, Any] = {"baseline": "passed", "outcomes": outcomes}
    if baseline != "survived":
        result["baseline"] = f"the tests do not pass on the unchanged module ({baseline})"
    else:
        # Per statement, the tests that ran it: a mutant runs only those, and a fault in a
        # statement no test runs survives without being run.
        ran_file = Path(request["lines_out"])
        tests: dict[int, list[str]] | None = None
        if ran_file.exists():
            ran = json.loads(ran_file.read_text(encoding="utf-8"))
            tests = {int(line): ids for line, ids in ran.items()}
        to_run = []
        for index in request["mutants"]:
            line = request["lines"].get(str(index))
            if tests is not None and line in tests and not tests[line]:
                outcomes[str(index)] = "survived"
            else:
                to_run.append(index)
        timeout = max(2.0, took * 3 + 1.0)
        deadline = started + float(request["seconds"])
        jobs = max(1, int(request.get("jobs", 2)))
        for index, outcome in _pool(request, to_run, timeout, deadline, jobs, tests):
            outcomes[str(index)] = outcome
    Path(argv[1]).write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
