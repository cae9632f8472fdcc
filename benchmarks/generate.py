r"""``aqe generate`` against Pynguin 0.48, side by side, on nine real modules from PyPI.

For each module (``inflection``, ``humanize.number``, ``slugify.slugify``,
``boltons.strutils``, ``semver.version``, and a second set the generator was not tuned on:
``more_itertools.recipes``, ``cachetools``, ``natsort.natsort``, ``dateutil.relativedelta``;
pinned below) the script runs

* ``aqe generate MODULE --out tests/test_MODULE.py --budget 20 --seed 1`` (``--seed`` only
  when ``aqe generate --help`` lists it) in an empty scratch project (cwd = that project,
  which holds only an empty ``tests/``), with the Python 3.11 venv's ``aqe``, and
* ``pynguin --project-path P --module-name MODULE --output-path OUT
  --maximum-search-time 60 --seed 1`` (Python 3.10 venv, ``PYNGUIN_DANGER_AWARE`` set;
  P is a scratch copy of the module's top-level package), defaults otherwise,

then measures both generated files the same way, in the Python 3.11 venv (same interpreter,
pytest and coverage for both tools; the module is the pinned copy installed there):

* ``coverage run --branch --include=<module source file> -m pytest -p no:cacheprovider
  <test file>`` with ``PYTHONHASHSEED=1``: line and branch coverage of the module alone,
  and the test items run (passed / xfailed / failed) from a JUnit XML report;
* a second, plain ``python -m pytest`` run in a fresh process with ``PYTHONHASHSEED=2``:
  "green twice" means both runs exited 0;
* a static AST check of the file: assertions on an untouched module global (an ``assert``
  or ``assertX(...)`` call whose subject is a non-callable, non-module attribute of the
  target module, such as ``assert inflection.PLURALS == [...]``, or a parametrize value
  of such a global used as the expected side of an assert), unless the test assigns or
  monkeypatches that global first;
* a static AST check for assertions on an underscore attribute (``x._map``; dunders
  aside) or on ``vars()``: they break on a refactor that keeps the behaviour;
* the mutation score: aqe's own AST mutator (``aqe._generate._mutate``, operators in
  docs/generate.md) on the module, the same fixed sample of ``--mutants`` mutants (seed
  ``--seed``) for both tools' files, each mutant run in its own forked process within
  ``--mutation-time`` seconds, in the Python 3.11 venv;
* the generator's wall time (the whole process, start-up included).

Pynguin's tests are also run under the 3.10 venv they were generated in; when the
figures differ, the 3.10 ones are added as a note. A Pynguin run that crashes, writes no
file or passes ``--timeout`` (process group killed) counts as 0% with a note. The
"import only" row is the coverage of importing the module and nothing else.

Bars (aqe): branch coverage >= Pynguin's on every module; over the modules (covered
statements and branches summed) >= 85% branches and >= 90% lines; mutation score >=
Pynguin's + 10 percentage points on every module; every suite green twice; no assertion on
an untouched module global, an underscore attribute or ``vars()``; at most 30 s of wall time
per module. The exit status is 1 when a bar fails (or aqe could not be run), else 0.

Venvs (made on first use, or again with ``--setup``), under ``--work`` (default
``/work/genbench``): ``venv-aqe`` (Python 3.11: the five packages, coverage, pytest,
hypothesis, aqe editable from this repo) and ``venv-pynguin`` (Python 3.10: pynguin, the
five packages, coverage, pytest). Scratch projects go to ``WORK/runs/`` and are removed
unless ``--keep``.

Usage::

    python benchmarks/generate.py                        # all five modules, both tools
    python benchmarks/generate.py --skip-pynguin         # aqe only (about 3 min)
    python benchmarks/generate.py --modules inflection,semver.version --keep
    python benchmarks/generate.py --skip-aqe --json-out benchmarks/_results/gen.json
    python benchmarks/generate.py --setup                # (re)install the pinned venvs

A full run takes about 15-20 minutes, almost all of it Pynguin's (60 s of search plus
start-up and assertion generation per module).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

#: Module under test -> (PyPI distribution, top-level package).
MODULES: dict[str, tuple[str, str]] = {
    "inflection": ("inflection", "inflection"),
    "humanize.number": ("humanize", "humanize"),
    "slugify.slugify": ("python-slugify", "slugify"),
    "boltons.strutils": ("boltons", "boltons"),
    "semver.version": ("semver", "semver"),
    # The second set (issue 22): modules the generator was not tuned on, chosen for what
    # they stress: higher-order functions and iterators, stateful cache classes, sort keys
    # and callables, a value class with arithmetic.
    "more_itertools.recipes": ("more-itertools", "more_itertools"),
    "cachetools": ("cachetools", "cachetools"),
    "natsort.natsort": ("natsort", "natsort"),
    "dateutil.relativedelta": ("python-dateutil", "dateutil"),
}

#: The same versions in both venvs. humanize 4.17.0 needs Python >= 3.11, so 4.16.0.
PACKAGE_PINS = (
    "inflection==0.5.1",
    "humanize==4.16.0",
    "python-slugify==9.2.0",  # brings text-unidecode 1.3
    "boltons==26.2.0",
    "semver==3.1.2",
    "more-itertools==11.1.0",  # 11.2 needs Python 3.11
    "cachetools==7.3.3",
    "natsort==8.4.0",
    "python-dateutil==3.0.0",
)
#: pytest 9 for aqe (what the project uses); Pynguin 0.48 needs pytest < 9.
AQE_PINS = ("coverage==7.16.2", "pytest==9.2.0", "hypothesis==6.170.17")
PYNGUIN_PINS = ("pynguin==0.48.0", "coverage==7.16.2", "pytest==8.4.2")

PY311 = "/root/.pyenv/versions/3.11.7/bin/python3.11"
PY310 = "/root/.pyenv/versions/3.10.13/bin/python3.10"

BAR_BRANCH_TOTAL = 85.0
BAR_LINE_TOTAL = 90.0
BAR_WALL = 30.0
#: aqe's mutation score must be this many percentage points above Pynguin's on every module.
BAR_MUTATION_MARGIN = 10.0

_DROP_ENV = ("AQE_", "PYTEST_", "COVERAGE_", "PYNGUIN_", "PYTHONHASHSEED", "VIRTUAL_ENV")


# --------------------------------------------------------------------------- venvs


def _venv_ok(venv: Path, pins: tuple[str, ...]) -> bool:
    stamp = venv / "benchmark-pins.txt"
    return (
        (venv / "bin" / "python").exists()
        and stamp.exists()
        and (stamp.read_text() == "\n".join(pins) + "\n")
    )


def make_venv(venv: Path, python: str, pins: tuple[str, ...], force: bool) -> None:
    if not force and _venv_ok(venv, pins):
        return
    print(f"setting up {venv} ({python}) ...", flush=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    log = venv.parent / f"{venv.name}-setup.log"
    with log.open("w") as out:
        for cmd in ([*pip, "--upgrade", "pip"], [*pip, *pins]):
            if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
                sys.exit(f"setting up {venv} failed, see {log}")
    (venv / "benchmark-pins.txt").write_text("\n".join(pins) + "\n")


def setup(args: argparse.Namespace) -> tuple[Path, Path]:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    aqe_venv, pyn_venv = work / "venv-aqe", work / "venv-pynguin"
    # aqe is installed editable from this repo: one pin line that names the repo path.
    make_venv(aqe_venv, args.python311, (*PACKAGE_PINS, *AQE_PINS, "-e", str(REPO)), args.setup)
    if not args.skip_pynguin:
        make_venv(pyn_venv, args.python310, (*PYNGUIN_PINS, *PACKAGE_PINS), args.setup)
    return aqe_venv, pyn_venv


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_ENV)}
    env.update(extra)
    return env


def venv_env(venv: Path, **extra: str) -> dict[str, str]:
    env = clean_env(**extra)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


#: CPU seconds (user + system) of the last ``run_group`` command and the children it
#: waited for: on a shared machine the wall time says more about the neighbours.
LAST_CPU = [0.0]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_group(
    cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float, log: Path
) -> tuple[int | None, float]:
    """Run ``cmd`` in its own process group; (exit code or None on timeout, wall s).
    Its CPU time goes to ``LAST_CPU``."""
    start = time.monotonic()
    cpu_start = _children_cpu()
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # stray workers of the group, too
            except ProcessLookupError:
                pass
            proc.wait()
    LAST_CPU[0] = _children_cpu() - cpu_start
    return code, time.monotonic() - start


def last_line(log: Path) -> str:
    lines = [x.strip() for x in log.read_text(errors="replace").splitlines() if x.strip()]
    return lines[-1][:160] if lines else "(no output)"


# --------------------------------------------------------------------------- facts


_INFO = r"""
import importlib, json, sys, types
mod = importlib.import_module(sys.argv[1])
names = sorted(n for n, v in vars(mod).items()
               if not callable(v) and not isinstance(v, types.ModuleType))
print(json.dumps({"file": mod.__file__, "globals": names}))
"""


def module_info(venv: Path, module: str) -> dict[str, Any]:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _INFO, module],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    info: dict[str, Any] = json.loads(out.stdout)
    return info


@dataclass
class Measure:
    stmts: int = 0
    covered: int = 0
    branches: int = 0
    covered_branches: int = 0
    tests: int = 0
    passed: int = 0
    xfailed: int = 0
    skipped: int = 0
    failed: int = 0
    green: list[bool] = field(default_factory=list)
    note: str = ""
    mutation: dict[str, Any] | None = None  # aqe._generate._mutate.Score.as_dict()

    @property
    def mutation_pct(self) -> float | None:
        if not self.mutation or self.mutation.get("percent") is None:
            return None
        return float(self.mutation["percent"])

    @property
    def line_pct(self) -> float:
        return 100.0 * self.covered / self.stmts if self.stmts else 0.0

    @property
    def branch_pct(self) -> float:
        return 100.0 * self.covered_branches / self.branches if self.branches else 0.0

    @property
    def green_twice(self) -> bool:
        return len(self.green) == 2 and all(self.green)


def _coverage_json(venv: Path, data: Path, out: Path, cwd: Path) -> dict[str, Any] | None:
    py = str(venv / "bin" / "python")
    result = subprocess.run(
        [py, "-m", "coverage", "json", f"--data-file={data}", "-o", str(out)],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not out.exists():
        return None
    totals: dict[str, Any] = json.loads(out.read_text())["totals"]
    return totals


def _junit(path: Path, m: Measure) -> None:
    if not path.exists():
        return
    for case in ET.parse(path).getroot().iter("testcase"):
        m.tests += 1
        kinds = {child.tag: child for child in case}
        if "failure" in kinds or "error" in kinds:
            m.failed += 1
        elif "skipped" in kinds:
            if kinds["skipped"].get("type") == "pytest.xfail":
                m.xfailed += 1
            else:
                m.skipped += 1
        else:
            m.passed += 1


def import_only(venv: Path, module: str, source: str, scratch: Path) -> Measure:
    """Coverage of ``import MODULE`` alone (module-level statements, no test)."""
    scratch.mkdir(parents=True, exist_ok=True)
    data = scratch / ".coverage-import"
    py = str(venv / "bin" / "python")
    script = scratch / "import_only.py"
    script.write_text(f"import importlib\n\nimportlib.import_module({module!r})\n")
    cov = [py, "-m", "coverage", "run", "--branch", f"--data-file={data}", f"--include={source}"]
    subprocess.run(
        [*cov, str(script)],
        cwd=scratch,
        env=clean_env(),
        capture_output=True,
        check=True,
    )
    totals = _coverage_json(venv, data, scratch / "import.json", scratch)
    m = Measure()
    if totals:
        m.stmts, m.covered = totals["num_statements"], totals["covered_lines"]
        m.branches, m.covered_branches = totals["num_branches"], totals["covered_branches"]
    return m


def measure(
    venv: Path,
    test_file: Path,
    cwd: Path,
    source: str,
    hashseeds: tuple[str, str],
    timeout: float,
    empty: Measure,
) -> Measure:
    """Coverage (first run) and green-twice (both runs) of ``test_file`` under ``venv``."""
    tag = venv.name
    data = cwd / f".coverage-{tag}"
    py = str(venv / "bin" / "python")
    pytest_args = ["-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)]
    m = Measure(stmts=empty.stmts, branches=empty.branches)
    junit1 = cwd / f"junit-{tag}-1.xml"
    cov = [py, "-m", "coverage", "run", "--branch", f"--data-file={data}", f"--include={source}"]
    code1, _ = run_group(
        [*cov, *pytest_args, f"--junitxml={junit1}"],
        cwd=cwd,
        env=venv_env(venv, PYTHONHASHSEED=hashseeds[0]),
        timeout=timeout,
        log=cwd / f"pytest-{tag}-1.log",
    )
    code2, _ = run_group(
        [py, *pytest_args, f"--junitxml={cwd / f'junit-{tag}-2.xml'}"],
        cwd=cwd,
        env=venv_env(venv, PYTHONHASHSEED=hashseeds[1]),
        timeout=timeout,
        log=cwd / f"pytest-{tag}-2.log",
    )
    m.green = [code1 == 0, code2 == 0]
    _junit(junit1, m)
    totals = _coverage_json(venv, data, cwd / f"coverage-{tag}.json", cwd)
    if totals is None:
        m.note = "no coverage data (module not imported from the measured file?)"
    else:
        m.stmts, m.covered = totals["num_statements"], totals["covered_lines"]
        m.branches, m.covered_branches = totals["num_branches"], totals["covered_branches"]
    if code1 != 0:
        m.note = (
            m.note + "; " if m.note else ""
        ) + f"pytest: {last_line(cwd / f'pytest-{tag}-1.log')}"
    elif code2 != 0:
        m.note = (
            m.note + "; " if m.note else ""
        ) + f"run 2: {last_line(cwd / f'pytest-{tag}-2.log')}"
    return m


_MUTATION = r"""
import json, sys
from pathlib import Path
from aqe._generate._mutate import measure
module, file, test, cwd, limit, seconds, seed = sys.argv[1:8]
score = measure(module, file, Path(test), Path(cwd), [], limit=int(limit),
                seconds=float(seconds), seed=int(seed))
print(json.dumps(score.as_dict()))
"""


def mutation_score(
    venv: Path, module: str, source: str, test_file: Path, cwd: Path, args: argparse.Namespace
) -> dict[str, Any] | None:
    """aqe's AST mutator on ``module``, the same sample of mutants for every tool's file."""
    py = str(venv / "bin" / "python")
    cmd = [py, "-c", _MUTATION, module, source, str(test_file), str(cwd)]
    cmd += [str(args.mutants), str(args.mutation_time), str(args.seed)]
    done = subprocess.run(
        cmd,
        cwd=cwd,
        env=venv_env(venv),
        capture_output=True,
        text=True,
        timeout=args.mutation_time + 300,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        return {"percent": None, "baseline": (done.stderr.strip().splitlines() or ["?"])[-1]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def private_assertions(path: Path) -> list[tuple[int, str]]:
    """Asserts (and ``pytest.param`` rows' expected sides are never private) that read an
    underscore attribute (``x._map``, ``x._Cls__data``; dunders aside) or ``vars()``."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return []
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        subjects: list[ast.AST] = []
        if isinstance(node, ast.Assert):
            subjects = [node.test]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr.startswith("assert")
        ):
            subjects = list(node.args)
        for subject in subjects:
            for sub in ast.walk(subject):
                if (
                    isinstance(sub, ast.Attribute)
                    and sub.attr.startswith("_")
                    and not (sub.attr.startswith("__") and sub.attr.endswith("__"))
                ):
                    found.append((node.lineno, f".{sub.attr}"))
                elif (
                    isinstance(sub, ast.Call)
                    and isinstance(sub.func, ast.Name)
                    and sub.func.id == "vars"
                ):
                    found.append((node.lineno, "vars()"))
    return found


# --------------------------------------------------------------------------- AST check


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _str_arg(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


_WRAPPERS = {"len", "list", "tuple", "set", "frozenset", "sorted", "dict", "str", "repr", "bool"}


class _GlobalAsserts:
    """Finds assertions whose subject is a non-callable global of the target module."""

    def __init__(self, module: str, globals_: list[str]) -> None:
        self.module = module
        self.globals = set(globals_)
        self.aliases = {module}  # dotted prefixes that name the target module
        self.direct: dict[str, str] = {}  # local name -> global (from MODULE import G)

    def _collect_aliases(self, tree: ast.Module) -> None:
        parent, _, last = self.module.rpartition(".")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name == self.module and a.asname:
                        self.aliases.add(a.asname)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if node.module == parent and a.name == last:
                        self.aliases.add(a.asname or a.name)
                    elif node.module == self.module and a.name in self.globals:
                        self.direct[a.asname or a.name] = a.name
            elif isinstance(node, ast.Assign) and isinstance(node.value, (ast.Subscript, ast.Call)):
                value = node.value
                name: str | None = None
                if isinstance(value, ast.Subscript) and _dotted(value.value) == "sys.modules":
                    sl = value.slice
                    if isinstance(sl, ast.Constant) and isinstance(sl.value, str):
                        name = sl.value
                elif isinstance(value, ast.Call) and (_dotted(value.func) or "").endswith(
                    "import_module"
                ):
                    name = _str_arg(value)
                if name == self.module:
                    for target in node.targets:
                        if isinstance(target, ast.Name):
                            self.aliases.add(target.id)

    def global_of(self, node: ast.AST) -> str | None:
        """The global that ``node`` reads (``mod.G``, ``mod.G[k].x``, ``len(mod.G)``)."""
        while True:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id in _WRAPPERS and len(node.args) == 1 and not node.keywords:
                    node = node.args[0]
                    continue
                return None
            if isinstance(node, ast.Subscript):
                node = node.value
                continue
            if isinstance(node, ast.Name):
                return self.direct.get(node.id)
            if isinstance(node, ast.Attribute):
                prefix = _dotted(node.value)
                if prefix in self.aliases and node.attr in self.globals:
                    return node.attr
                node = node.value
                continue
            return None

    def _subjects(self, test: ast.AST) -> list[ast.AST]:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return self._subjects(test.operand)
        if isinstance(test, ast.BoolOp):
            return [s for v in test.values for s in self._subjects(v)]
        if isinstance(test, ast.Compare):
            return [test.left, *test.comparators]
        return [test]

    def _touched(self, func: ast.AST) -> set[str]:
        """Globals the test itself assigns or monkeypatches."""
        touched: set[str] = set()
        for node in ast.walk(func):
            targets: list[ast.AST] = []
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                g = self.global_of(t)
                if g:
                    touched.add(g)
            if isinstance(node, ast.Call) and (_dotted(node.func) or "").endswith("setattr"):
                if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                    touched.add(str(node.args[1].value))
                elif node.args and isinstance(node.args[0], ast.Constant):
                    touched.add(str(node.args[0].value).rpartition(".")[2])
        return touched

    def check(self, source: str) -> list[tuple[int, str]]:
        tree = ast.parse(source)
        self._collect_aliases(tree)
        found: list[tuple[int, str]] = []
        funcs = [
            n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        ]
        for func in funcs:
            touched = self._touched(func)
            compared: set[str] = set()  # names compared in an assert (expected values)
            for node in ast.walk(func):
                subjects: list[ast.AST] = []
                if isinstance(node, ast.Assert):
                    subjects = self._subjects(node.test)
                    if isinstance(node.test, ast.Compare):
                        compared |= {s.id for s in subjects if isinstance(s, ast.Name)}
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    if node.func.attr.startswith("assert"):
                        subjects = list(node.args)
                for s in subjects:
                    g = self.global_of(s)
                    if g and g not in touched:
                        found.append((node.lineno, g))
            found += self._parametrized(func, compared, touched)
        return sorted(set(found))

    def _parametrized(
        self, func: ast.FunctionDef | ast.AsyncFunctionDef, compared: set[str], touched: set[str]
    ) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        for deco in func.decorator_list:
            if not (
                isinstance(deco, ast.Call) and (_dotted(deco.func) or "").endswith("parametrize")
            ):
                continue
            if len(deco.args) < 2:
                continue
            names_node, rows = deco.args[0], deco.args[1]
            if isinstance(names_node, ast.Constant) and isinstance(names_node.value, str):
                names = [n.strip() for n in names_node.value.split(",") if n.strip()]
            elif isinstance(names_node, (ast.List, ast.Tuple)):
                names = [str(e.value) for e in names_node.elts if isinstance(e, ast.Constant)]
            else:
                continue
            wanted = [i for i, n in enumerate(names) if n in compared]
            if not wanted or not isinstance(rows, (ast.List, ast.Tuple)):
                continue
            for row in rows.elts:
                if isinstance(row, ast.Call) and (_dotted(row.func) or "").endswith("param"):
                    values = list(row.args)
                elif len(names) == 1:
                    values = [row]
                elif isinstance(row, (ast.List, ast.Tuple)):
                    values = list(row.elts)
                else:
                    continue
                for i in wanted:
                    if i < len(values):
                        g = self.global_of(values[i])
                        if g and g not in touched:
                            found.append((values[i].lineno, g))
        return found


def global_assertions(path: Path, module: str, globals_: list[str]) -> list[tuple[int, str]]:
    try:
        return _GlobalAsserts(module, globals_).check(path.read_text())
    except SyntaxError as exc:
        return [(exc.lineno or 0, "<syntax error>")]


# --------------------------------------------------------------------------- tools


@dataclass
class Row:
    module: str
    tool: str
    available: bool = True
    wall: float = 0.0
    cpu: float = 0.0
    measure: Measure = field(default_factory=Measure)
    globals_flagged: list[tuple[int, str]] = field(default_factory=list)
    private_flagged: list[tuple[int, str]] = field(default_factory=list)
    note: str = ""
    test_file: str = ""
    py310: dict[str, Any] | None = None


def test_name(module: str) -> str:
    return "test_" + module.replace(".", "_") + ".py"


def aqe_help(venv: Path, aqe: str) -> str | None:
    """``aqe generate --help`` output, or None when the command is not there."""
    result = subprocess.run(
        [aqe, "generate", "--help"],
        env=venv_env(venv, CI="true"),
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout if result.returncode == 0 else None


def run_aqe(venv: Path, module: str, project: Path, args: argparse.Namespace) -> Row:
    row = Row(module, "aqe")
    (project / "tests").mkdir(parents=True)
    out = Path("tests") / test_name(module)
    cmd = [
        args.aqe or str(venv / "bin" / "aqe"),
        "generate",
        module,
        "--out",
        str(out),
        "--budget",
        f"{args.aqe_budget:g}",
    ]
    if args.aqe_seed:
        cmd += ["--seed", str(args.seed)]
    code, row.wall = run_group(
        cmd,
        cwd=project,
        env=venv_env(venv, CI="true"),
        timeout=args.timeout,
        log=project.parent / "aqe-generate.log",
    )
    row.cpu = LAST_CPU[0]
    if code is None:
        row.note = f"aqe generate timed out after {args.timeout:.0f} s"
    elif code != 0:
        row.note = f"aqe generate exit {code}: {last_line(project.parent / 'aqe-generate.log')}"
    if (project / out).exists():
        row.test_file = str(project / out)
    elif not row.note:
        row.note = "aqe generate wrote no file"
    return row


def run_pynguin(venv: Path, module: str, scratch: Path, args: argparse.Namespace) -> Row:
    row = Row(module, "pynguin")
    top = MODULES[module][1]
    project, out = scratch / "project", scratch / "tests"
    out.mkdir(parents=True)
    installed = Path(module_info(venv, top)["file"])
    if installed.name == "__init__.py":  # a package: copy its directory
        shutil.copytree(
            installed.parent, project / top, ignore=shutil.ignore_patterns("__pycache__")
        )
    else:
        project.mkdir()
        shutil.copy2(installed, project / installed.name)
    cmd = [
        str(venv / "bin" / "pynguin"),
        "--project-path",
        str(project),
        "--module-name",
        module,
        "--output-path",
        str(out),
        "--maximum-search-time",
        str(args.pynguin_time),
        "--seed",
        str(args.seed),
        "--no-rich",
        "-v",
    ]
    log = scratch / "pynguin.log"
    code, row.wall = run_group(
        cmd,
        cwd=scratch,
        env=venv_env(venv, PYNGUIN_DANGER_AWARE="1"),
        timeout=args.timeout,
        log=log,
    )
    row.cpu = LAST_CPU[0]
    files = sorted(out.glob("test_*.py"))
    if code is None:
        row.note = f"pynguin timed out after {args.timeout:.0f} s"
    elif code != 0:
        row.note = f"pynguin exit {code}: {last_line(log)}"
    if files:
        row.test_file = str(files[0])
    elif not row.note:
        row.note = "pynguin wrote no file"
    return row


# --------------------------------------------------------------------------- report


def pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}" if whole else "-"


def fmt_row(row: Row) -> str:
    m = row.measure
    if not row.available:
        return f"| {row.module} | {row.tool} | - | - | - | - | - | - | - | - | not available |"
    tests = f"{m.passed}/{m.tests}"
    extra = [
        f"{n} {k}" for n, k in ((m.xfailed, "xfail"), (m.skipped, "skip"), (m.failed, "fail")) if n
    ]
    if extra:
        tests += " (" + ", ".join(extra) + ")"
    green = "yes" if m.green_twice else "no"
    if m.green and not m.green_twice:
        green += " (" + "/".join("ok" if g else "red" for g in m.green) + ")"
    if not row.test_file:
        green = "-"
    wall = f"{row.wall:.1f}" if row.wall else "-"
    cpu = f"{row.cpu:.1f}" if row.cpu else "-"
    notes = "; ".join(x for x in (row.note, m.note) if x)
    if row.py310 is not None:
        notes = (
            (notes + "; " if notes else "")
            + "under 3.10: {lines}% lines, {branches}% "
            "branches, {passed}/{tests} passed, green twice {green}".format(**row.py310)
        )
    flagged = str(len(row.globals_flagged)) if row.test_file else "-"
    private = str(len(row.private_flagged)) if row.test_file else "-"
    return (
        f"| {row.module} | {row.tool} | {pct(m.covered, m.stmts)} "
        f"| {pct(m.covered_branches, m.branches)} | {fmt_mutation(m)} | {tests} | {green} "
        f"| {flagged} | {private} | {wall} | {cpu} | {notes} |"
    )


def fmt_mutation(m: Measure) -> str:
    if m.mutation is None:
        return "-"
    if m.mutation_pct is None:
        return f"none ({m.mutation.get('baseline', '?')[:60]})"
    ran = m.mutation["killed"] + m.mutation["survived"]
    unrun = f", {m.mutation['not_run']} not run" if m.mutation.get("not_run") else ""
    return f"{m.mutation_pct:.1f} ({m.mutation['killed']}/{ran}{unrun})"


def total(rows: list[Row]) -> Measure:
    t = Measure()
    for r in rows:
        m = r.measure
        t.stmts += m.stmts
        t.covered += m.covered
        t.branches += m.branches
        t.covered_branches += m.covered_branches
        t.tests += m.tests
        t.passed += m.passed
    return t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modules",
        default=",".join(MODULES),
        help=f"comma-separated subset of {', '.join(MODULES)}",
    )
    parser.add_argument("--seed", type=int, default=1, help="--seed of Pynguin (and of aqe)")
    parser.add_argument("--pynguin-time", type=int, default=60, help="--maximum-search-time")
    parser.add_argument("--aqe-budget", type=float, default=20, help="aqe generate --budget")
    parser.add_argument(
        "--timeout", type=float, default=600, help="hard limit on each generator process (s)"
    )
    parser.add_argument("--hashseeds", default="1,2", help="PYTHONHASHSEED of the two runs")
    parser.add_argument("--skip-pynguin", action="store_true")
    parser.add_argument(
        "--mutants", type=int, default=100, help="mutants sampled per module (0: no mutation)"
    )
    parser.add_argument(
        "--mutation-time", type=float, default=150, help="time bound of one mutation run (s)"
    )
    parser.add_argument("--skip-aqe", action="store_true")
    parser.add_argument("--work", default="/work/genbench", help="venvs and scratch dirs")
    parser.add_argument("--setup", action="store_true", help="reinstall the pinned venvs")
    parser.add_argument("--python311", default=PY311 if Path(PY311).exists() else sys.executable)
    parser.add_argument("--python310", default=PY310)
    parser.add_argument(
        "--aqe",
        help="aqe executable to run (default: WORK/venv-aqe/bin/aqe); it runs with "
        "the venv-aqe environment, and its tests are measured in venv-aqe",
    )
    parser.add_argument("--keep", action="store_true", help="keep (and print) scratch dirs")
    parser.add_argument("--json-out", help="write the measurements as JSON here")
    args = parser.parse_args()
    modules = [m.strip() for m in args.modules.split(",") if m.strip()]
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; choose from {list(MODULES)}")
    seeds = tuple(args.hashseeds.split(","))
    if len(seeds) != 2:
        parser.error("--hashseeds takes two values, e.g. 1,2")
    hashseeds: tuple[str, str] = (seeds[0], seeds[1])

    aqe_venv, pyn_venv = setup(args)
    runs = Path(args.work) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    scratch_root = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=runs))
    aqe = args.aqe or str(aqe_venv / "bin" / "aqe")
    help_text = None if args.skip_aqe else aqe_help(aqe_venv, aqe)
    has_aqe = help_text is not None
    args.aqe_seed = help_text is not None and "--seed" in help_text  # passed on when it has one
    if not args.skip_aqe and not has_aqe:
        print(f"`{aqe} generate` is not available: aqe's rows are empty")

    rows: list[Row] = []
    baselines: dict[str, Measure] = {}
    try:
        for module in modules:
            info = module_info(aqe_venv, module)
            source = info["file"]
            base = scratch_root / module
            baselines[module] = import_only(aqe_venv, module, source, base / "import-only")
            tools: list[str] = ([] if args.skip_aqe else ["aqe"]) + (
                [] if args.skip_pynguin else ["pynguin"]
            )
            for tool in tools:
                print(f"{module}: {tool} ...", flush=True)
                if tool == "aqe":
                    if not has_aqe:
                        rows.append(
                            Row(
                                module,
                                "aqe",
                                available=False,
                                measure=Measure(
                                    stmts=baselines[module].stmts,
                                    branches=baselines[module].branches,
                                ),
                            )
                        )
                        continue
                    row = run_aqe(aqe_venv, module, base / "aqe" / "project", args)
                    cwd = base / "aqe" / "project"
                else:
                    row = run_pynguin(pyn_venv, module, base / "pynguin", args)
                    cwd = base / "pynguin"
                if row.test_file:
                    test_file = Path(row.test_file)
                    row.measure = measure(
                        aqe_venv, test_file, cwd, source, hashseeds, args.timeout, baselines[module]
                    )
                    row.globals_flagged = global_assertions(test_file, module, info["globals"])
                    row.private_flagged = private_assertions(test_file)
                    if args.mutants > 0 and row.measure.green and row.measure.green[0]:
                        row.measure.mutation = mutation_score(
                            aqe_venv, module, source, test_file, cwd, args
                        )
                    if tool == "pynguin":
                        m10 = measure(
                            pyn_venv,
                            test_file,
                            cwd,
                            module_info(pyn_venv, module)["file"],
                            hashseeds,
                            args.timeout,
                            baselines[module],
                        )
                        if (m10.covered, m10.covered_branches, m10.passed, m10.green_twice) != (
                            row.measure.covered,
                            row.measure.covered_branches,
                            row.measure.passed,
                            row.measure.green_twice,
                        ):
                            row.py310 = {
                                "lines": pct(m10.covered, m10.stmts),
                                "branches": pct(m10.covered_branches, m10.branches),
                                "passed": m10.passed,
                                "tests": m10.tests,
                                "green": "yes" if m10.green_twice else "no",
                            }
                else:
                    row.measure = Measure(
                        stmts=baselines[module].stmts, branches=baselines[module].branches
                    )
                rows.append(row)
                print("  " + fmt_row(row), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(scratch_root, ignore_errors=True)

    print()
    print(
        f"aqe generate --budget {args.aqe_budget:g} vs Pynguin 0.48.0 "
        f"--maximum-search-time {args.pynguin_time} --seed {args.seed}; "
        f"measured under Python 3.11, PYTHONHASHSEED {hashseeds[0]} then {hashseeds[1]}"
    )
    print()
    print(
        "| module | tool | lines % | branches % | mutation % (killed/run) | tests passed/run "
        "| green twice | global asserts | private asserts | wall s | CPU s | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for module in modules:
        b = baselines[module]
        print(
            f"| {module} | import only | {pct(b.covered, b.stmts)} "
            f"| {pct(b.covered_branches, b.branches)} | - | - | - | - | - | - | - "
            f"| {b.stmts} statements, {b.branches} branches |"
        )
        for row in rows:
            if row.module == module:
                print(fmt_row(row))
    for tool in ("aqe", "pynguin"):
        mine = [r for r in rows if r.tool == tool]
        if mine and any(r.available for r in mine):
            t = total(mine)
            green = sum(r.measure.green_twice for r in mine)
            scores = [r.measure.mutation_pct for r in mine]
            mean = (
                f"{sum(x for x in scores if x is not None) / len(scores):.1f} (mean)"
                if scores and all(x is not None for x in scores)
                else "-"
            )
            print(
                f"| all | {tool} | {pct(t.covered, t.stmts)} | "
                f"{pct(t.covered_branches, t.branches)} | {mean} | {t.passed}/{t.tests} | "
                f"{green}/{len(mine)} | {sum(len(r.globals_flagged) for r in mine)} | "
                f"{sum(len(r.private_flagged) for r in mine)} | "
                f"{sum(r.wall for r in mine):.1f} | {sum(r.cpu for r in mine):.1f} | |"
            )

    flagged = [r for r in rows if r.globals_flagged]
    if flagged:
        print()
        print("Assertions on an untouched module global (tool file: global xN at lines):")
        for r in flagged:
            per: dict[str, list[int]] = {}
            for line, g in r.globals_flagged:
                per.setdefault(g, []).append(line)
            for g, lines in per.items():
                at = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
                print(f"  {r.tool} {Path(r.test_file).name}: {g} x{len(lines)} at {at}")

    print()
    bars: list[tuple[str, bool | None]] = []
    aqe_rows = [r for r in rows if r.tool == "aqe"]
    if not args.skip_aqe:
        by_mod = {r.module: r for r in rows if r.tool == "pynguin"}
        if args.skip_pynguin:
            bars.append(("aqe branches >= Pynguin's on every module", None))
        else:
            worse = [
                r.module
                for r in aqe_rows
                if r.module in by_mod
                and (not r.available or r.measure.branch_pct < by_mod[r.module].measure.branch_pct)
            ]
            bars.append(
                (
                    f"aqe branches >= Pynguin's on every module (below on: "
                    f"{', '.join(worse) or 'none'})",
                    not worse,
                )
            )
        t = total(aqe_rows)
        bars.append(
            (
                f"aqe overall branches {pct(t.covered_branches, t.branches)}% >= "
                f"{BAR_BRANCH_TOTAL:.0f}%",
                t.branch_pct >= BAR_BRANCH_TOTAL,
            )
        )
        bars.append(
            (
                f"aqe overall lines {pct(t.covered, t.stmts)}% >= {BAR_LINE_TOTAL:.0f}%",
                t.line_pct >= BAR_LINE_TOTAL,
            )
        )
        if args.skip_pynguin or args.mutants <= 0:
            bars.append((f"aqe mutation score >= Pynguin's + {BAR_MUTATION_MARGIN:.0f} pp", None))
        else:
            short = []
            for r in aqe_rows:
                other = by_mod.get(r.module)
                mine_pct = r.measure.mutation_pct
                theirs = 0.0 if other is None else (other.measure.mutation_pct or 0.0)
                if mine_pct is None or mine_pct < theirs + BAR_MUTATION_MARGIN:
                    short.append(f"{r.module} {mine_pct} vs {theirs}")
            bars.append(
                (
                    f"aqe mutation score >= Pynguin's + {BAR_MUTATION_MARGIN:.0f} pp on every "
                    f"module (short on: {', '.join(short) or 'none'})",
                    not short,
                )
            )
        n_private = sum(len(r.private_flagged) for r in aqe_rows)
        bars.append(
            (f"aqe assertions on an underscore attribute or vars(): {n_private}", not n_private)
        )
        green = sum(r.available and r.measure.green_twice for r in aqe_rows)
        bars.append((f"aqe suites green twice: {green}/{len(aqe_rows)}", green == len(aqe_rows)))
        n_flag = sum(len(r.globals_flagged) for r in aqe_rows)
        bars.append(
            (
                f"aqe assertions on an untouched module global: {n_flag}",
                n_flag == 0 and all(r.available and r.test_file for r in aqe_rows),
            )
        )
        heavy = [f"{r.module} {r.cpu:.1f} s" for r in aqe_rows if r.cpu > BAR_WALL]
        bars.append(
            (
                f"aqe CPU <= {BAR_WALL:.0f} s per module, children included (over: "
                f"{', '.join(heavy) or 'none'})",
                not heavy and all(r.available for r in aqe_rows),
            )
        )
        slow = [f"{r.module} {r.wall:.1f} s" for r in aqe_rows if r.wall > BAR_WALL]
        bars.append(
            (
                f"aqe wall <= {BAR_WALL:.0f} s per module (over: {', '.join(slow) or 'none'})",
                not slow and all(r.available for r in aqe_rows),
            )
        )
    for text, ok in bars:
        print(f"{'SKIP' if ok is None else 'PASS' if ok else 'FAIL'}  {text}")
    if args.keep:
        print(f"\nscratch dirs kept under {scratch_root}")

    if args.json_out:
        payload = {
            "modules": modules,
            "seed": args.seed,
            "pynguin_time": args.pynguin_time,
            "aqe_budget": args.aqe_budget,
            "hashseeds": hashseeds,
            "pins": [*PACKAGE_PINS, *AQE_PINS, *PYNGUIN_PINS],
            "import_only": {k: asdict(v) for k, v in baselines.items()},
            "rows": [asdict(r) for r in rows],
            "bars": [{"bar": text, "ok": ok} for text, ok in bars],
        }
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if any(ok is False for _, ok in bars) else 0


if __name__ == "__main__":
    sys.exit(main())
