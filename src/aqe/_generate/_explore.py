"""The search, run in a child process: call the module's code and keep what covers more.

It imports the user's module, so it runs apart from aqe (``python -m
aqe._generate._explore REQUEST OUT``) with a memory cap, a per-call alarm, stdout and
stderr sent to /dev/null and the working directory in a scratch folder. Findings stream
to OUT as JSON lines, so a call that kills the process loses only the function it was in.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import enum
import importlib
import inspect
import itertools
import json
import os
import random
import resource
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from ._arcs import Arc, ArcTracer, FileMap
from ._domain import (
    Domain,
    ModuleFacts,
    domain_for,
    hints_of,
    module_facts,
    table_strings,
    type_aliases,
)
from ._model import SELF, STEP, Case, FunctionReport, snake, to_json
from ._process import WALL_FACTOR
from ._values import stable_message, stdlib_namespace, to_source
from ._views import DICT_VIEW, LEN_VIEW, LIST_VIEW, MAX_ATTRS, best_view, public_attributes, views

CALL_SECONDS = 1.0
#: The search's budget is its own CPU time, not the wall clock: the same seed and
#: budget find the same tests on a busy machine as on an idle one (a wall-clock
#: budget found fewer under load, so output depended on what else ran).
clock = time.process_time
PLATEAU_CALLS = 120
MAX_KEPT = 24
#: Found but not kept cases a target's mutants are replayed against, at most.
MAX_SPARES = 80
#: Distinct results (return value or message) a target's kept cases show, at most.
MAX_OUTPUTS = 8
#: Candidates of one parameter tried with the others at their first value.
SINGLES = 160
#: Spare cases of one outcome kept for the mutant replays (a table of rules gives one
#: outcome for many inputs, each reaching another row).
SPARES_PER_OUTCOME = 5
_SKIP_EXCEPTIONS = (MemoryError, RecursionError, KeyboardInterrupt)
_DANGER = (
    "subprocess",
    "os.system",
    "rmtree",
    "os.remove",
    "os.unlink",
    "input(",
    "sleep(",
    "urlopen",
    "requests.",
    "socket",
    "shutil.move",
    "os.kill",
    "sys.exit",
    "webbrowser",
)
#: Dangerous only in a module that works with files (``link.unlink()`` in a linked list).
_FILE_DANGER = (".unlink(", ".rmdir(", ".write_text(", ".write_bytes(")
_OPS = {
    "__lt__": "op:<",
    "__le__": "op:<=",
    "__gt__": "op:>",
    "__ge__": "op:>=",
    "__eq__": "op:==",
    "__ne__": "op:!=",
    "__str__": "op:str",
    "__repr__": "op:repr",
    "__len__": "op:len",
    "__iter__": "op:iter",
    "__contains__": "op:in",
    "__getitem__": "op:getitem",
    "__bool__": "op:bool",
    "__add__": "op:+",
    "__sub__": "op:-",
    "__mul__": "op:*",
    "__truediv__": "op:/",
    "__floordiv__": "op://",
    "__mod__": "op:%",
    "__radd__": "op:r+",
    "__rsub__": "op:r-",
    "__rmul__": "op:r*",
    "__neg__": "op:neg",
    "__pos__": "op:pos",
    "__abs__": "op:abs",
    "__and__": "op:&",
    "__or__": "op:|",
    "__setitem__": "op:setitem",
    "__delitem__": "op:delitem",
    # The public ways in to these dunders: copy.copy(x), pickle round trips, x(...).
    "__copy__": "op:copy",
    "__reduce__": "op:pickle",
    "__getstate__": "op:pickle",
    "__setstate__": "op:pickle",
    "__call__": "op:call",
}
#: Operators that take the receiver alone, whatever the dunder's own signature says.
_UNARY_OPS = ("op:copy", "op:pickle")


#: Address space a call may add to the process once the module is imported: a call that
#: builds a gigabyte string fails at once with MemoryError instead of filling pages for a
#: second (the absolute cap used before let 999999999-byte strings through on one machine
#: and not on another, depending on what the interpreter had mapped).
HEADROOM = 384 << 20


def cap_memory(headroom: int) -> None:
    """Cap the address space at what is mapped now plus ``headroom``."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        mapped = 1 << 30
    limit = mapped + headroom
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class _CallTimeout(BaseException):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _CallTimeout


@dataclass
class Target:
    """One thing to call: a function, a constructor, a method, a property, an operator."""

    name: str
    form: str
    obj: Any
    params: list[inspect.Parameter]
    owner: type | None = None
    lines: range = range(0)
    body: ast.AST | None = None
    domains: list[Domain] = field(default_factory=list)
    init: Any = None  # a constructor's __init__, whose hints describe the call


class Explorer:
    def __init__(self, module: types.ModuleType, out: TextIO, budget: float, seed: int) -> None:
        self.module = module
        self.out = out
        self.deadline = clock() + budget
        #: Properties get a third of the search's time on top of it.
        self.property_deadline = self.deadline + budget / 5 + budget / 3
        self.rng = random.Random(seed)
        self.path = os.path.realpath(module.__file__ or "")
        with open(self.path, encoding="utf-8") as handle:
            source = handle.read()
        self.tree = ast.parse(source)
        self.touches_files = any(w in source for w in ("import os", "pathlib", "shutil"))
        self.filemap = FileMap.of(self.path)
        self.tracer = ArcTracer(self.path, self.filemap)
        self.namespace: dict[str, Any] = stdlib_namespace()
        self.namespace.update(vars(module))
        self.facts: ModuleFacts = module_facts(self.tree, self.namespace)
        from ._doctests import doc_calls

        self.doc: dict[str, list[Any]] = {}
        with contextlib.suppress(Exception):
            self.doc = doc_calls(module, self.namespace)
        self.hint_namespace = {
            **type_aliases(self.tree, self.namespace, module.__package__),
            **self.namespace,
        }
        self.covered: set[Arc] = set()
        self.covered_lines: set[int] = set()
        self.defs = self._definitions()
        self.tried: set[str] = set()
        self.tried_inputs: dict[str, list[str]] = {}
        self.retracted: set[str] = set()
        self.last_value: Any = None
        self.prepared: dict[type, list[str]] = {}
        self.pool_base: dict[tuple[type, str], list[str]] = {}
        self.receiver_wins: dict[str, int] = {}
        self.pool_kinds: dict[type, dict[tuple[str, tuple[int, ...]], int]] = {}
        self.behaviours: dict[str, set[str]] = {}
        self.kept_cases: dict[str, list[Case]] = {}
        self.outputs: dict[str, set[tuple[Any, ...]]] = {}
        #: Replays against mutants (``_killers``) get a fifth of the budget on top of it.
        self.killer_deadline = self.deadline + budget / 5

    # -- discovery -------------------------------------------------------------------------
    def _definitions(self) -> dict[str, ast.AST]:
        defs: dict[str, ast.AST] = {}
        for node in self.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                defs[node.name] = node
            elif isinstance(node, ast.ClassDef):
                defs[node.name] = node
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        defs[f"{node.name}.{item.name}"] = item
        return defs

    def _span(self, name: str) -> tuple[range, ast.AST | None]:
        node = self.defs.get(name)
        if node is None:
            return range(0), None
        end = getattr(node, "end_lineno", None) or node.lineno  # type: ignore[attr-defined]
        body = getattr(node, "body", None)
        start = body[0].lineno if body else node.lineno  # type: ignore[attr-defined]
        return range(start, end + 1), node

    def targets(self, only: str | None) -> tuple[list[Target], list[Target]]:
        """Module-level callables and constructors first, then methods needing instances."""
        first: list[Target] = []
        later: list[Target] = []
        for name, obj in vars(self.module).items():
            if getattr(obj, "__module__", None) != self.module.__name__:
                continue
            if only and name != only and not only.startswith(f"{name}."):
                continue
            if inspect.isfunction(obj):
                if inspect.iscoroutinefunction(obj) or inspect.isasyncgenfunction(obj):
                    continue
                first.append(self._target(name, "call", obj, None))
            elif inspect.isclass(obj) and not issubclass(obj, (BaseException, enum.Enum)):
                if self._defined_here(obj):
                    self._class_targets(obj, first, later, only)
        return [t for t in first if t is not None], [t for t in later if t is not None]

    def _written_here(self, raw: Any) -> bool:
        func = getattr(raw, "__func__", None) or getattr(raw, "fget", None) or raw
        code = getattr(func, "__code__", None)
        if code is None:
            return True
        return bool(os.path.realpath(code.co_filename) == self.path)

    def _defined_here(self, cls: type) -> bool:
        try:
            return os.path.realpath(inspect.getsourcefile(cls) or "") == self.path
        except (TypeError, OSError):
            return False

    def _class_targets(
        self, cls: type, first: list[Target], later: list[Target], only: str | None
    ) -> None:
        name = cls.__name__
        # A private class is built through the public functions that return it (its
        # methods get those instances, and a subclass's): a test that names it breaks
        # when a refactor renames it.
        public = not name.startswith("_") or only == name
        if (
            public
            and not inspect.isabstract(cls)
            and (only in (None, name) or (only or "").startswith(name))
        ):
            init = cls.__init__  # type: ignore[misc]
            first.append(self._target(name, "call", cls, None, init=init))
        forms: set[str] = set()
        for attr, raw in vars(cls).items():
            qual = f"{name}.{attr}"
            if only and only not in (name, qual):
                continue
            if not self._written_here(raw):
                continue  # made by dataclass/attrs: testing it tests the library
            if attr.startswith("_") and attr not in _OPS:
                continue  # private: reached through the public methods, renamed by refactors
            if isinstance(raw, (classmethod, staticmethod)):
                first.append(self._target(qual, "call", getattr(cls, attr), cls))
            elif isinstance(raw, property) and raw.fget is not None:
                later.append(self._target(qual, "property", raw.fget, cls, receiver=True))
            elif inspect.isfunction(raw) and attr in _OPS:
                if _OPS[attr] in forms:
                    continue  # __reduce__ and __setstate__: one pickle round trip
                forms.add(_OPS[attr])
                target = self._target(qual, _OPS[attr], raw, cls, receiver=True)
                if target.form in _UNARY_OPS:
                    target.params = []
                later.append(target)
            elif inspect.isfunction(raw) and not attr.startswith("__"):
                later.append(self._target(qual, "method", raw, cls, receiver=True))

    def _target(
        self,
        name: str,
        form: str,
        obj: Any,
        owner: type | None,
        receiver: bool = False,
        init: Any = None,
    ) -> Target:
        try:
            signature = inspect.signature(init or obj)
        except (TypeError, ValueError):
            signature = inspect.Signature()
        params = list(signature.parameters.values())
        if init is not None or (receiver and params):
            params = params[1:]  # self
        span_name = f"{name}.__init__" if init is not None else name
        lines, body = self._span(span_name)
        if init is not None and body is None:
            lines, body = self._span(name)
        return Target(
            name=name,
            form=form,
            obj=obj,
            params=params,
            owner=owner,
            lines=lines,
            body=body,
            init=init,
        )

    # -- domains ---------------------------------------------------------------------------
    def prepare(self, target: Target) -> str | None:
        """Fill the target's domains; a reason to skip it, or None."""
        if target.body is not None:
            text = ast.unparse(target.body)
            words = _DANGER + (_FILE_DANGER if self.touches_files else ())
            for word in words:
                if word in text:
                    return f"side effects ({word.strip('(.')})"
        typed = target.init if target.init is not None else target.obj
        hints = hints_of(typed, self.hint_namespace) if target.params else {}
        wide = self._function_constants(target.body)
        rows = table_strings(self._tables_read(target))
        stored = self._stored_calls(target) if target.init is not None else {}
        for param in target.params:
            if param.kind is param.VAR_KEYWORD:
                continue
            hint = hints.get(param.name)
            if hint is None and param.name in stored:
                # ``self._ttu = ttu`` in __init__ and ``self._ttu(key, value, time)`` in a
                # method: the constructor takes a function of that many arguments.
                hint = Callable[[Any] * stored[param.name], Any]
            domain = domain_for(param, hint, target.body, self.facts)
            domain.add([src for src in wide if _fits_any(src, domain)])
            if rows and str in domain.kinds:
                # Right after the first value: one input per row of the tables it reads.
                head, rest = domain.candidates[:1], domain.candidates[1:]
                domain.candidates = head + [r for r in rows if r not in head]
                domain.add(rest)
            if target.form.startswith("op:") and target.owner is not None:
                # a == b, a < b: the other side is most often another instance.
                own = self.facts.pools.get(target.owner, [])[:6]
                domain.candidates = own + [c for c in domain.candidates if c not in own]
            target.domains.append(domain)
            if not domain.candidates:
                if (
                    param.default is inspect.Parameter.empty
                    and param.kind is not param.VAR_POSITIONAL
                ):
                    return f"no inputs for parameter {param.name!r}"
        return None

    def _stored_calls(self, target: Target) -> dict[str, int]:
        """Constructor parameters the class stores on ``self`` and later calls, with the
        number of arguments the call passes."""
        owner = target.obj if isinstance(target.obj, type) else None
        node = self.defs.get(owner.__name__) if owner is not None else None
        if not isinstance(node, ast.ClassDef) or target.body is None:
            return {}
        names = {p.name for p in target.params}
        stored: dict[str, str] = {}  # attribute -> parameter
        for sub in ast.walk(target.body):
            if isinstance(sub, ast.Assign) and isinstance(sub.value, ast.Name):
                for aim in sub.targets:
                    if (
                        isinstance(aim, ast.Attribute)
                        and isinstance(aim.value, ast.Name)
                        and aim.value.id == "self"
                        and sub.value.id in names
                    ):
                        stored[aim.attr] = sub.value.id
        found: dict[str, int] = {}
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Call)
                and isinstance(sub.func, ast.Attribute)
                and isinstance(sub.func.value, ast.Name)
                and sub.func.value.id == "self"
                and sub.func.attr in stored
                and not any(isinstance(a, ast.Starred) for a in sub.args)
            ):
                found.setdefault(stored[sub.func.attr], len(sub.args))
        return found

    def _tables_read(self, target: Target) -> list[Any]:
        """The module-level containers the target's function (or one it defines) reads
        by name."""
        from ._killers import function_of, names_read

        func = function_of(target.obj, target.init, self.path)
        if func is None:
            return []
        names = names_read(func)
        return [
            value
            for name in names
            if isinstance(value := vars(self.module).get(name), (list, tuple, set, frozenset, dict))
        ]

    def _function_constants(self, body: ast.AST | None) -> list[str]:
        if body is None:
            return []
        found: list[str] = []
        for node in ast.walk(body):
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float)):
                if isinstance(node.value, str) and (len(node.value) > 40 or "\n" in node.value):
                    continue
                found.append(repr(node.value))
        return list(dict.fromkeys(found))[:40]

    # -- calls -----------------------------------------------------------------------------
    def _columns(self, target: Target) -> tuple[list[str], list[bool], list[inspect.Parameter]]:
        names, keywords, used = [], [], []
        positional_ok = True
        for param in target.params:
            if param.kind is param.VAR_KEYWORD:
                continue
            names.append(param.name)
            keyword = param.kind is param.KEYWORD_ONLY or not positional_ok
            keywords.append(keyword)
            used.append(param)
        return names, keywords, used

    def call_case(self, target: Target, args: list[str], receiver: str | None) -> Case:
        names, keywords, _used = self._columns(target)
        params, flags, columns = names[: len(args)], keywords[: len(args)], list(args)
        setup: list[str] = []
        if receiver is not None:
            owner = target.owner.__name__ if target.owner else "obj"
            base, *setup = receiver.split(STEP)
            params = [_receiver_name(owner, params), *params]
            flags = [False, *flags]
            columns = [base, *columns]
        form = target.form if receiver is not None else "call"
        pad = [
            (
                name,
                to_source(param.default, self.namespace)
                if param.default is not inspect.Parameter.empty
                else None,
                keyword,
            )
            for name, keyword, param in list(zip(names, keywords, _used, strict=False))[len(args) :]
        ]
        return Case(
            target=target.name,
            form=form,
            params=params,
            args=columns,
            keywords=flags,
            outcome="returns",
            pad=pad,
            setup=setup,
        )

    def run(self, case: Case) -> tuple[Case | None, set[Arc], set[int]]:
        """Evaluate the case's sources afresh, call it traced, fill in its outcome."""
        call_text = STEP.join([case.call([f"({a})" for a in case.args]), *case.setup])
        if call_text in self.tried:
            return None, set(), set()
        self.tried.add(call_text)
        namespace = dict(self.namespace)
        try:
            values = [eval(a, namespace) for a in case.args]
        except Exception:
            return None, set(), set()
        local = dict(namespace)
        for index, value in enumerate(values):
            local[f"_aqe_{index}"] = value
        if case.setup and not self._setup(case.setup, local):
            return None, set(), set()
        before = [_snapshot(v, self.namespace) for v in values]
        self.last_value = None
        expr = compile(case.call([f"_aqe_{i}" for i in range(len(values))]), "<aqe>", "eval")

        consuming = []

        def invoke() -> Any:
            result = eval(expr, local)
            if isinstance(result, (types.GeneratorType, Iterator)) and not isinstance(
                result, (str, bytes, list, tuple, dict)
            ):
                consuming.append(True)  # an error from here on is raised by list(call)
                return _Consumed(list(_bounded_iter(result)))
            return result

        signal.setitimer(signal.ITIMER_REAL, CALL_SECONDS)
        try:
            value, error, arcs, lines = self.tracer.run(invoke)
        except _CallTimeout:
            return None, set(), set()
        except BaseException as exc:  # SystemExit from the user's code
            if isinstance(exc, KeyboardInterrupt):
                raise
            value, error, arcs, lines = None, exc, set(self.tracer.arcs), set(self.tracer.lines)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if isinstance(error, _SKIP_EXCEPTIONS):
            return None, arcs, lines
        if error is not None:
            if isinstance(error, _TooLong):
                return None, arcs, lines
            case.consume = bool(consuming)
            return self._raised(case, error), arcs, lines
        if isinstance(value, _Consumed):
            case.consume = True
            value = value.items
        self.last_value = value if self._instance(value) else None  # never hold big results
        expected = to_source(value, self.namespace)
        if expected is None and not case.consume:
            signal.setitimer(signal.ITIMER_REAL, CALL_SECONDS)
            try:
                # Traced: a returned function (a decorator, a key) runs the module's code
                # when the view calls it, and the test's assertion runs it again.
                view, _, view_arcs, view_lines = self.tracer.run(
                    lambda: best_view(value, self.namespace)
                )
                arcs, lines = arcs | view_arcs, lines | view_lines
            except (_CallTimeout, Exception):
                view = None
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if view is not None:
                case.view, expected = view
        if expected is None:
            return None, arcs, lines
        case.expected = expected
        after = [_snapshot(v, self.namespace) for v in values]
        for index, (old, new) in enumerate(zip(before, after, strict=False)):
            for key, source in new.items():
                if old.get(key, source) != source:
                    case.outcome = "mutates"
                    case.state[f"{case.params[index]}{key}"] = source
        return case, arcs, lines

    def _raised(self, case: Case, error: BaseException) -> Case | None:
        kind = type(error)
        name = _exception_name(kind, self.namespace)
        if name is None:
            return None
        case.outcome = "raises"
        case.exc_type = name
        message = str(error)
        if message and stable_message(message):
            case.match = message.splitlines()[0][:120]
        return case

    # -- search ----------------------------------------------------------------------------
    def search(
        self,
        target: Target,
        seconds: float,
        receivers: list[str] | None,
        patience: int = PLATEAU_CALLS,
    ) -> FunctionReport:
        report = FunctionReport(target=target.name)
        stop = min(self.deadline, clock() + seconds)
        kept: list[Case] = []
        spares: list[Case] = []
        outcomes: dict[tuple[Any, ...], int] = {}
        covering = 0  # kept for new arcs or a new behaviour (the cap); results aside
        seen_behaviours = self.behaviours.setdefault(target.name, set())
        stale = 0
        domains = [d.candidates or ["None"] for d in target.domains]
        required = [
            p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL,)
            for p in self._columns(target)[2]
        ]
        seeds = self._doc_seeds(target)
        if receivers is not None:
            receivers = list(dict.fromkeys([*(r for r, _ in seeds if r), *receivers]))
        for args in itertools.chain(seeds, self._inputs(domains, required, receivers)):
            if clock() > stop or stale > patience or covering >= MAX_KEPT:
                break
            receiver, rest = args
            case = self.call_case(target, rest, receiver)
            report.calls += 1
            if receiver is None and rest:
                seen = self.tried_inputs.setdefault(target.name, [])
                if rest[0] not in seen and len(seen) < 200:
                    seen.append(rest[0])
            try:
                found, arcs, lines = self.run(case)
            except MemoryError:  # a result too big even to write down
                self.last_value = None
                stale += 1
                continue
            new = arcs - self.covered
            if target.form == "call" and self._instance(self.last_value):
                self._pool_call(case)
            if found is not None and not new and len(spares) < MAX_SPARES:
                key = (found.behaviour(), found.expected, found.match, str(found.state))
                if outcomes.get(key, 0) < SPARES_PER_OUTCOME:
                    outcomes[key] = outcomes.get(key, 0) + 1
                    spares.append(found)
            if found is None:
                stale += 1
                if arcs and new:
                    # A call that covered new code but left no oracle (an unwritable value).
                    report.dropped["value not expressible"] = (
                        report.dropped.get("value not expressible", 0) + 1
                    )
                continue
            if receiver is not None and found.outcome != "raises":
                self.receiver_wins[receiver] = self.receiver_wins.get(receiver, 0) + 1
            behaviour = found.behaviour()
            fresh = behaviour not in seen_behaviours and len(seen_behaviours) < 4
            # A result not seen before is a different path through the data (a table's
            # rule, a branchless formula): kept though it adds no arc, a few per target.
            output = (behaviour, found.expected, found.match)
            outputs = self.outputs.setdefault(target.name, set())
            novel = (
                output not in outputs
                and len(outputs) < MAX_OUTPUTS
                and len(found.expected or found.match or "") < 160
            )
            if new or fresh or novel:
                self.covered |= arcs
                self.covered_lines |= lines
                found.arcs = len(new)
                seen_behaviours.add(behaviour)
                outputs.add(output)
                kept.append(found)
                self.out.write(json.dumps(to_json(found)) + "\n")
                self.out.flush()
                if (
                    receiver is not None
                    and found.outcome == "mutates"
                    and target.form in ("method", "op:setitem", "op:delitem")
                ):
                    self._prepare_receiver(target, receiver, found)
                stale = 0 if new or fresh else stale + 1
                covering += bool(new or fresh)
            else:
                stale += 1
        previous = self.kept_cases.setdefault(target.name, [])
        previous.extend(kept)
        if spares and target.body is not None:
            for case in self._killers(target, previous, spares, report, seconds):
                kept.append(case)
                previous.append(case)
                self.out.write(json.dumps(to_json(case)) + "\n")
            self.out.flush()
        report.kept = len(kept)
        self._figures(report, target.lines)
        return report

    def _killers(
        self,
        target: Target,
        kept: list[Case],
        spares: list[Case],
        report: FunctionReport,
        seconds: float,
    ) -> list[Case]:
        """Spare cases that detect a fault in the target no kept case detects."""
        from ._killers import DataMutant, data_mutants, function_of, mutant_codes, select
        from ._probe import observe

        func = function_of(target.obj, target.init, self.path)
        if func is None or target.body is None or clock() > self.killer_deadline:
            return []
        stop = min(self.killer_deadline, clock() + max(0.3, seconds / 2))
        codes: list[types.CodeType | DataMutant] = [*mutant_codes(target.body, func, self.path)]
        codes += data_mutants(func)
        if not codes:
            return []
        stable = [c for c in spares if self._replays(c, observe)]
        saved = self._module_state()
        try:
            chosen, detected, total = select(
                func, codes, kept, stable, observe, self.namespace, lambda: clock() > stop
            )
        finally:
            self._restore(saved)
        report.mutants = [detected, total]
        return chosen

    def _replays(self, case: Case, observe: Callable[[Case, dict[str, Any]], bool]) -> bool:
        signal.setitimer(signal.ITIMER_REAL, CALL_SECONDS)
        try:
            return observe(case, self.namespace)
        except BaseException:
            return False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def _setup(self, steps: list[str], local: dict[str, Any]) -> bool:
        signal.setitimer(signal.ITIMER_REAL, CALL_SECONDS)
        try:
            for step in steps:
                exec(step.replace(SELF, "_aqe_0"), local)  # our own call text
        except _CallTimeout:
            return False
        except Exception:
            return False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        return True

    def _prepare_receiver(self, target: Target, receiver: str, case: Case) -> None:
        """After a call changed its receiver, that changed object serves later methods."""
        if target.owner is None or not any(k.startswith(case.params[0]) for k in case.state):
            return
        steps = receiver.split(STEP)
        # Deeper while the steps keep reaching new code: a cache full after three inserts.
        if len(steps) > (6 if case.arcs else 3):
            return
        step = case.call([SELF, *case.args[1:]], raw=True)
        prepared = STEP.join([*steps, step])
        pool = self.prepared.setdefault(target.owner, [])
        if prepared not in pool and len(pool) < 12:
            pool.append(prepared)

    def _instance(self, value: Any) -> bool:
        owner = type(value)
        return self.namespace.get(owner.__name__) is owner and self._defined_here(owner)

    def _pool_of(self, owner: type) -> list[str]:
        """Built instances of ``owner``, then of its subclasses (a base class's methods
        run on them too)."""
        found = list(self.facts.pools.get(owner, []))
        for cls, pool in self.facts.pools.items():
            if cls is not owner and issubclass(cls, owner):
                found += [src for src in pool[:4] if src not in found]
        return found

    def _pool_call(self, case: Case) -> None:
        """A built instance that no literal can write down is rebuilt by its call.

        Two instances at most per set of constructor arguments that differ from the first
        instance's: a pool of sixteen sizes with the same bad ``ttl`` gives the methods
        sixteen times one state."""
        owner = type(self.last_value)
        pool = self.facts.pools.setdefault(owner, [])
        source = case.call(case.args, raw=True)
        if case.expected is not None and len(case.expected) < 160 and not case.view:
            source = case.expected
        if source in pool or len(pool) >= 16 or len(source) >= 400:
            return
        base = self.pool_base.setdefault((owner, case.target), list(case.args))
        varied = tuple(
            i
            for i in range(max(len(base), len(case.args)))
            if i >= len(base) or i >= len(case.args) or base[i] != case.args[i]
        )
        counts = self.pool_kinds.setdefault(owner, {})
        if counts.get((case.target, varied), 0) >= 2:
            return
        counts[(case.target, varied)] = counts.get((case.target, varied), 0) + 1
        pool.append(source)

    def _doc_seeds(self, target: Target) -> list[tuple[str | None, list[str]]]:
        """Docstring calls as rows of columns (keywords placed by parameter name)."""
        names = [p.name for p in self._columns(target)[2]]
        seeds: list[tuple[str | None, list[str]]] = []
        for call in self.doc.get(target.name, []):
            if (call.receiver is None) != (target.form == "call"):
                continue
            row = list(call.args)
            if len(row) > len(names) or any(k not in names for k in call.keywords):
                continue
            needed = max([len(row)] + [names.index(k) + 1 for k in call.keywords])
            for index in range(len(row), needed):
                domain = target.domains[index].candidates if index < len(target.domains) else []
                row.append(call.keywords.get(names[index]) or (domain[0] if domain else "None"))
            seeds.append((call.receiver, row))
        return seeds

    def _inputs(
        self, domains: list[list[str]], required: list[bool], receivers: list[str] | None
    ) -> Iterator[tuple[str | None, list[str]]]:
        """Defaults first, then one parameter varied at a time, then mutants and mixes."""
        recv = receivers or [None]  # type: ignore[list-item]
        base = [d[0] for d in domains]
        width = len(domains)

        def trimmed(row: list[str]) -> list[str]:
            # Stop at the first optional column still at its first candidate.
            out = list(row)
            while out and not required[len(out) - 1] and out[-1] == domains[len(out) - 1][0]:
                out.pop()
            return out

        for r in recv:
            yield r, trimmed(base)

        def singles() -> Iterator[list[str]]:
            for index in range(width):
                for candidate in domains[index][1:SINGLES]:
                    row = list(base)
                    row[index] = candidate
                    yield row

        # One in four rows sets two parameters of one kind at once (two datetimes, a
        # start and a stop): a branch under ``if a and b`` needs both, which varying one
        # parameter at a time never gives.
        lanes = [singles(), _pairs(domains, base)]
        turn = 0
        while lanes:
            lane = lanes[0 if turn % 4 or len(lanes) == 1 else 1]
            turn += 1
            row = next(lane, None)
            if row is None:
                lanes.remove(lane)
                continue
            yield self.rng.choice(recv), trimmed(row)
        for r in recv[1:]:
            for index in range(width):
                for candidate in domains[index][:8]:
                    row = list(base)
                    row[index] = candidate
                    yield r, trimmed(row)
        while True:
            row = [self.rng.choice(d[:40]) for d in domains]
            if width and self.rng.random() < 0.5:
                index = self.rng.randrange(width)
                mutant = _mutate(row[index], self.rng, self.namespace)
                if mutant is not None:
                    row[index] = mutant
            yield self.rng.choice(recv), trimmed(row)

    def _figures(self, report: FunctionReport, lines: range) -> None:
        if lines:
            report.span = [lines.start, lines.stop - 1]
        statements = {s for s in self.filemap.statements if s in lines}
        branches = self.filemap.branch_arcs(lines)
        report.lines_total = len(statements)
        report.lines_hit = len(statements & self.covered_lines)
        report.branches_total = len(branches)
        report.branches_hit = len(branches & self.covered)

    def explore(self, only: str | None) -> None:
        first, later = self.targets(only)
        names = {t.name for t in first + later}
        if only and only not in names:
            self.out.write(
                json.dumps(
                    {
                        "type": "error",
                        "usage": True,
                        "message": f"--function {only!r}: no function, class or method of that "
                        f"name in {self.module.__name__}",
                    }
                )
                + "\n"
            )
            return
        self._pass(first, None)
        self._pass(later, "receiver")
        # Time left: more passes over what still misses branches, each more patient.
        rounds = 0
        while clock() < self.deadline - 0.05 and rounds < 6:
            leftovers = [
                t
                for t in first + later
                if t.domains and self._missing(t) and t.name not in self.retracted
            ]
            if not leftovers:
                break
            rounds += 1
            self._pass(leftovers, "again", patience=PLATEAU_CALLS * 4 * rounds)

    def _module_state(self) -> dict[str, tuple[Any, Any]]:
        """Copies of the module's mutable globals (tables, registries, caches)."""
        saved = {}
        for name, value in vars(self.module).items():
            if isinstance(value, (list, dict, set)) and not name.startswith("__"):
                try:
                    saved[name] = (value, copy.deepcopy(value))
                except Exception:
                    continue
        return saved

    def _restore(self, saved: dict[str, tuple[Any, Any]]) -> list[str]:
        changed = []
        for name, (live, copied) in saved.items():
            try:
                same = live == copied and vars(self.module).get(name) is live
            except Exception:
                same = True
            if same:
                continue
            changed.append(name)
            if isinstance(live, list):
                live[:] = copied
            elif isinstance(live, (dict, set)):
                live.clear()
                live.update(copied)
            setattr(self.module, name, live)
        return changed

    def _missing(self, target: Target) -> bool:
        return bool(self.filemap.branch_arcs(target.lines) - self.covered)

    def _pass(self, targets: list[Target], mode: str | None, patience: int = PLATEAU_CALLS) -> None:
        for index, target in enumerate(targets):
            remaining = self.deadline - clock()
            if remaining <= 0:
                break
            share = remaining / max(1, len(targets) - index)
            if mode != "again":
                reason = self.prepare(target)
                if reason is not None:
                    report = FunctionReport(target=target.name, skipped=reason)
                    self._figures(report, target.lines)
                    self.out.write(json.dumps(to_json(report)) + "\n")
                    continue
            receivers = None
            if target.owner is not None and target.form != "call":
                # A model of the object's state, cheaply: instances on which earlier
                # methods returned (not raised) first, so a cache built with a usable
                # size and ttl serves the methods before one every insert rejects.
                pool = self._pool_of(target.owner)
                ranked = sorted(pool, key=lambda r: -self.receiver_wins.get(r, 0))
                receivers = ranked[:8]
                prepared = list(self.prepared.get(target.owner, []))
                for cls, steps in self.prepared.items():
                    if cls is not target.owner and issubclass(cls, target.owner):
                        prepared += steps[:4]
                receivers = receivers + prepared
                if not receivers:
                    report = FunctionReport(
                        target=target.name, skipped="no instance could be built"
                    )
                    self._figures(report, target.lines)
                    self.out.write(json.dumps(to_json(report)) + "\n")
                    continue
            saved = self._module_state()
            report = self.search(target, share, receivers, patience)
            changed = self._restore(saved)
            if changed:
                # Its tests would leave the module changed for every later test in the
                # process: none is written, and the search goes on from a clean module.
                report.skipped = f"changes module state ({', '.join(changed[:3])})"
                report.kept = 0
                self.out.write(json.dumps({"type": "retract", "target": target.name}) + "\n")
                self.retracted.add(target.name)
            self.out.write(json.dumps(to_json(report)) + "\n")
            self.out.flush()


@dataclass
class _Consumed:
    items: list[Any]


def _bounded_iter(iterator: Iterator[Any]) -> Iterator[Any]:
    for index, item in enumerate(iterator):
        if index >= 200:
            raise _TooLong
        yield item


class _TooLong(Exception):
    pass


#: Pairs of parameters varied together, at most, and values tried per parameter of a pair.
MAX_PAIRS = 24
PAIR_VALUES = 4


def _pairs(domains: list[list[str]], base: list[str]) -> Iterator[list[str]]:
    """Rows with two parameters of one kind (their candidates overlap) set off their
    defaults together, nearest parameters first."""
    heads = [set(d[1 : 1 + 2 * PAIR_VALUES]) for d in domains]
    found = [
        (j - i, i, j)
        for i in range(len(domains))
        for j in range(i + 1, len(domains))
        if heads[i] & heads[j]
    ]
    for _gap, i, j in sorted(found)[:MAX_PAIRS]:
        for a in domains[i][1 : 1 + PAIR_VALUES]:
            for b in domains[j][1 : 1 + PAIR_VALUES]:
                if a != b:
                    row = list(base)
                    row[i], row[j] = a, b
                    yield row


def _receiver_name(owner: str, taken: list[str]) -> str:
    name = snake(owner).lstrip("_") or "obj"
    return name if name not in taken else f"{name}_obj"


def _fits_any(source: str, domain: Domain) -> bool:
    if not domain.kinds or object in domain.kinds:
        return False
    try:
        value = ast.literal_eval(source)
    except Exception:
        return False
    return any(type(value) is kind for kind in domain.kinds if isinstance(kind, type))


def _has_vars(value: Any) -> bool:
    return hasattr(value, "__dict__") and not isinstance(value, (type, types.ModuleType))


def _snapshot(value: Any, namespace: dict[str, Any]) -> dict[str, str]:
    """What a test can check of a value after a call, through its public face only:
    ``""`` for a plain container itself, ``":dict"``/``":list"``/``":len"`` for a mapping
    or collection object, ``".attr"`` for each public attribute or property that can be
    written down (never an underscore name: a refactor renames those)."""
    if isinstance(value, (str, bytes, int, float, bool, type(None), tuple, frozenset)):
        return {}  # immutable: nothing to watch
    if type(value) in (list, dict, set, bytearray) or not (
        _has_vars(value) or hasattr(type(value), "__slots__")
    ):
        try:
            source = to_source(copy.deepcopy(value), namespace)
        except Exception:
            return {}
        return {"": source} if source is not None else {}
    out: dict[str, str] = {}
    for view, source in _public_views(value, namespace):
        if view.startswith("{}."):
            out[view[2:]] = source
        elif view in (DICT_VIEW, LIST_VIEW, LEN_VIEW):
            out[":" + view.split("(", 1)[0]] = source
    return out


def _public_views(value: Any, namespace: dict[str, Any]) -> list[tuple[str, str]]:
    """Each public attribute on its own (a state oracle names what changed), and the
    container view."""
    found = [v for v in views(value, namespace) if not v[0].startswith("attrgetter")]
    for name in public_attributes(value)[:MAX_ATTRS]:
        try:
            raw = inspect.getattr_static(value, name)
            if isinstance(raw, (types.FunctionType, staticmethod, classmethod)):
                continue
            item = getattr(value, name)
        except Exception:
            continue
        if callable(item) and not isinstance(item, type):
            continue
        source = to_source(item, namespace)
        if source is not None and ("{}." + name, source) not in found:
            found.append(("{}." + name, source))
    return found


def _exception_name(kind: type, namespace: dict[str, Any]) -> str | None:
    import builtins

    name: str = kind.__name__
    if getattr(builtins, name, None) is kind or namespace.get(name) is kind:
        return name
    module: str = kind.__module__
    try:
        owner = importlib.import_module(module)
    except Exception:
        return None
    if getattr(owner, kind.__qualname__, None) is kind:
        return f"{module}.{kind.__qualname__}"
    for base in kind.__mro__[1:]:
        base_name: str = base.__name__
        if getattr(builtins, base_name, None) is base and base is not BaseException:
            return base_name
    return None


def _mutate(source: str, rng: random.Random, namespace: dict[str, Any]) -> str | None:
    try:
        value = eval(source, dict(namespace))
    except Exception:
        return None
    if isinstance(value, bool):
        return repr(not value)
    if isinstance(value, str):
        ops: list[Callable[[str], str]] = [
            lambda s: s + rng.choice("xs-_. 1"),
            lambda s: s.upper(),
            lambda s: s.title(),
            lambda s: s[: len(s) // 2],
            lambda s: s * 2,
            lambda s: " " + s,
            lambda s: s.replace(" ", "_"),
            lambda s: s.replace("_", " "),
            lambda s: s[1:],
            lambda s: s + rng.choice(["ies", "s", "es", "man", "ed", "ing", "y", "ss"]),
            lambda s: rng.choice(["-", ".", "+", "0", "A"]) + s,
            lambda s: s[:-1],
        ]
        return repr(rng.choice(ops)(value)[:120])
    if isinstance(value, int):
        choices = [value + 1, value - 1, -value, value * 10, value // 2, 0, 3, value * 1000 - 1]
        return repr(rng.choice(choices))
    if isinstance(value, float):
        return repr(rng.choice([value * 2, -value, value + 0.5, value / 3, 0.0]))
    if isinstance(value, list):
        if value and rng.random() < 0.5:
            return to_source(value[1:], namespace)
        return to_source(value + value[:1], namespace)
    return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    devnull = os.open(os.devnull, os.O_RDWR)
    saved = [os.dup(1), os.dup(2)]
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)


def _limit_cpu(seconds: int) -> None:
    """End the search (exit 3, what it found is kept) past ``seconds`` of CPU."""
    try:
        import resource

        used = int(clock()) + 1
        signal.signal(signal.SIGXCPU, lambda signum, frame: os._exit(3))
        resource.setrlimit(resource.RLIMIT_CPU, (used + seconds, used + seconds + 5))
    except (ImportError, OSError, ValueError):
        pass  # no such limit here: the wall-clock watchdog still ends it


def _import_error(module: str, exc: BaseException) -> dict[str, Any]:
    """A module that is not there is the user's mistake (exit 4); one that fails while
    importing is its code's (exit 1)."""
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if missing and (module == missing or module.startswith(f"{missing}.")):
        return {
            "type": "error",
            "usage": True,
            "message": f"MODULE_OR_PATH {module!r}: no module named {missing!r} on the "
            "project's paths or in the environment",
        }
    return {"type": "error", "message": f"cannot import {module}: {type(exc).__name__}: {exc}"}


def main(argv: list[str]) -> int:
    request = json.loads(open(argv[0], encoding="utf-8").read())
    sys.path[:0] = request["paths"]
    signal.signal(signal.SIGALRM, _alarm)
    sys.setrecursionlimit(3000)
    # A call stuck in C code never sees the alarm: end the whole search past its
    # time, in CPU (a busy loop) or, much later, in wall time (a blocked call).
    budget = float(request["budget"])
    _limit_cpu(int(budget * 2 + 15))
    watchdog = threading.Timer(budget * WALL_FACTOR + 30, os._exit, args=(3,))
    watchdog.daemon = True
    watchdog.start()
    with open(argv[1], "w", encoding="utf-8") as out:
        try:
            with _quiet():
                module = importlib.import_module(request["module"])
        except BaseException as exc:  # the user's module failed to import
            out.write(json.dumps(_import_error(request["module"], exc)) + "\n")
            return 1
        from ._render import namespace_kinds

        cap_memory(int(request.get("memory_headroom", HEADROOM)))
        out.write(
            json.dumps(
                {
                    "type": "module",
                    "name": module.__name__,
                    "file": os.path.realpath(module.__file__ or ""),
                    "names": namespace_kinds(vars(module)),
                }
            )
            + "\n"
        )
        out.flush()
        explorer = Explorer(module, out, float(request["budget"]), int(request.get("seed", 0)))
        with _quiet():
            explorer.explore(request.get("function"))
            if request.get("properties", True):
                from ._properties import find_properties

                for prop in find_properties(explorer):
                    out.write(json.dumps(to_json(prop)) + "\n")
        out.write(json.dumps({"type": "done"}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
