"""``aqe generate``: unit tests for a module, kept only when they pass twice.

The flow: resolve the target and the output path (refusing anything outside the project),
search in a child process (``_explore``), write the findings as a pytest file
(``_render``), run it in fresh processes, two at a time with different hash seeds (``_verify``),
drop every case that failed a run, and repeat until a round drops nothing and four seeds
have passed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import AqeError, UsageError
from .._paths import aqe_directory
from ._model import Case, FunctionReport, Property, from_json, to_json
from ._process import WALL_FACTOR, child_env, start
from ._render import render
from ._verify import (
    MIN_SEEDS,
    SEEDS_PER_ROUND,
    Verdict,
    coverage_figures,
    function_figures,
    run_twice,
)

if TYPE_CHECKING:
    from ._mutate import Score

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
MAX_ROUNDS = 5
#: Mutants ``--report`` samples (same seed, same sample), within the budget's seconds.
MUTANTS = 100


class GenerateError(AqeError):
    """The target could not be explored or its tests could not be made to run."""

    exit_code = 1


@dataclass
class Request:
    target: str
    root: Path
    out: Path | None = None
    function: str | None = None
    budget: float = 20.0
    dry_run: bool = False
    force: bool = False
    seed: int = 0
    mutation: bool = False  # measure the kept file's mutation score (``--report``)


@dataclass
class Result:
    module: str
    module_file: str
    text: str
    out: Path
    written: bool
    tests: int
    cases: int
    properties: int
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (test id, why)
    functions: list[FunctionReport] = field(default_factory=list)
    coverage: dict[str, float] | None = None
    per_function: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    warning: str | None = None
    mutation: Score | None = None
    notes: list[str] = field(default_factory=list)  # what the user should know (no Hypothesis)


def resolve_target(target: str, root: Path) -> tuple[str, list[str]]:
    """The module name to import and the folders to put on ``sys.path`` first."""
    path = Path(target)
    if target.endswith(".py") or os.sep in target or path.exists():
        if not path.exists():
            raise UsageError(f"MODULE_OR_PATH {target!r} does not exist")
        file = path.resolve()
        if file.is_dir():
            file = file / "__init__.py"
            if not file.exists():
                raise UsageError(f"MODULE_OR_PATH {target!r} is a folder without __init__.py")
        if file.suffix != ".py":
            raise UsageError(f"MODULE_OR_PATH {target!r} is not a Python file")
        if not file.is_relative_to(root):
            raise UsageError(f"MODULE_OR_PATH {target!r} is outside the project root {root}")
        parts = [] if file.name == "__init__.py" else [file.stem]
        folder = file.parent
        while (folder / "__init__.py").exists() and folder != folder.parent:
            parts.insert(0, folder.name)
            folder = folder.parent
        return ".".join(parts), [str(folder)]
    if not _DOTTED.match(target):
        raise UsageError(f"MODULE_OR_PATH {target!r} is neither a file nor a dotted module name")
    paths = [str(p) for p in (root / "src", root) if p.is_dir()]
    return target, paths


def output_path(request: Request, module: str) -> Path:
    root = request.root
    if request.out is None:
        tests = root / "tests"
        out = tests / f"test_{module.replace('.', '_')}_generated.py"
    else:
        out = request.out if request.out.is_absolute() else Path.cwd() / request.out
    out = out.resolve()
    if not out.is_relative_to(root):
        raise UsageError(f"--out {request.out or out} is outside the project root {root}")
    if out.suffix != ".py":
        raise UsageError(f"--out {request.out} must name a .py file")
    if root / ".aqe" in out.parents:
        raise UsageError(f"--out {request.out} is inside aqe's own .aqe folder")
    if out.exists() and not request.force and not request.dry_run:
        raise UsageError(f"--out {out.relative_to(root)} exists; pass --force to overwrite it")
    if out.is_dir():
        raise UsageError(f"--out {request.out} is a folder")
    if not request.dry_run:
        folder = out.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"--out {request.out or out}: {folder} is not a writable folder")
        if out.exists() and not os.access(out, os.W_OK):
            raise UsageError(f"--out {request.out or out} is not writable")
    return out


def generate(request: Request) -> Result:
    started = time.monotonic()
    root = request.root.resolve()
    request.root = root
    module, paths = resolve_target(request.target, root)
    out = output_path(request, module)
    work = Path(tempfile.mkdtemp(prefix="generate-", dir=aqe_directory(root)))
    scratch = Path(tempfile.mkdtemp(prefix="aqe-generate-"))
    try:
        search_budget = max(1.0, request.budget * 0.55)
        findings = _explore(request, module, paths, work, scratch, search_budget)
        result = _verified(request, findings, work, out)
        result.warning = findings.warning
        if not _has_module("hypothesis"):
            result.notes.append(
                "Hypothesis is not installed: no property tests were written, only plain "
                "cases (pip install 'hypothesis>=6.100' to get them)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
    if not request.dry_run:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(result.text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot write it ({exc.strerror or exc})") from None
        result.written = True
    result.seconds = time.monotonic() - started
    return result


@dataclass
class _Findings:
    module: str
    module_file: str
    names: dict[str, str]
    cases: list[Case]
    properties: list[Property]
    reports: dict[str, FunctionReport]
    paths: list[str] = field(default_factory=list)
    warning: str | None = None


def _explore(
    request: Request, module: str, paths: list[str], work: Path, scratch: Path, budget: float
) -> _Findings:
    request_file = work / "request.json"
    out_file = work / "findings.jsonl"
    request_file.write_text(
        json.dumps(
            {
                "module": module,
                "paths": paths,
                "budget": budget,
                "seed": request.seed,
                "function": request.function,
            }
        ),
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "aqe._generate._explore", str(request_file), str(out_file)]
    proc = start(command, scratch, child_env("0", paths), stderr=subprocess.PIPE)
    try:
        # The child ends itself past its budget (CPU, or WALL_FACTOR x in wall time).
        _, stderr = proc.communicate(timeout=budget * WALL_FACTOR + 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        _, stderr = proc.communicate()
    findings = _read_findings(out_file, module, proc.returncode, stderr or "")
    findings.paths = paths
    if proc.returncode != 0:
        last = (stderr or "").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        findings.warning = f"the search stopped early ({last[0][:200]}); what it found is used"
    return findings


def _read_findings(out_file: Path, module: str, code: int, stderr: str) -> _Findings:
    findings = _Findings(
        module=module, module_file="", names={}, cases=[], properties=[], reports={}
    )
    lines = out_file.read_text(encoding="utf-8").splitlines() if out_file.exists() else []
    for line in lines:
        try:
            data: dict[str, Any] = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a killed explorer
        kind = data.get("type")
        if kind == "error":
            if data.get("usage"):
                raise UsageError(str(data["message"]))
            raise GenerateError(str(data["message"]))
        if kind == "retract":
            findings.cases = [c for c in findings.cases if c.target != data["target"]]
        elif kind == "module":
            findings.module_file = data["file"]
            findings.names = data["names"]
        elif kind in ("Case", "Property", "FunctionReport"):
            item = from_json(data)
            if isinstance(item, Case):
                findings.cases.append(item)
            elif isinstance(item, Property):
                findings.properties.append(item)
            else:
                _merge_report(findings.reports, item)
    if not findings.module_file:
        tail = stderr.strip().splitlines()[-1:] or [f"exit code {code}"]
        raise GenerateError(f"could not explore {module}: {tail[0]}")
    return findings


def _merge_report(reports: dict[str, FunctionReport], report: FunctionReport) -> None:
    earlier = reports.get(report.target)
    if earlier is not None:
        report.calls += earlier.calls
        report.kept += earlier.kept
        report.mutants = report.mutants or earlier.mutants
        for reason, count in earlier.dropped.items():
            report.dropped[reason] = report.dropped.get(reason, 0) + count
    reports[report.target] = report


def _regenerate_command(request: Request, out: Path) -> str:
    parts = ["aqe generate", request.target]
    if request.function:
        parts += ["--function", request.function]
    parts += ["--out", str(out.relative_to(request.root)), "--force"]
    return " ".join(parts)


def _verified(request: Request, findings: _Findings, work: Path, out: Path) -> Result:
    cases = list(findings.cases)
    properties = list(findings.properties)
    dropped: list[tuple[str, str]] = []
    candidate = work / out.name
    command = _regenerate_command(request, out)
    coverage_of = findings.module_file if _has_coverage() else None
    if not findings.reports:
        raise UsageError(_nothing_to_test(findings))
    if not cases and not properties:
        raise GenerateError(_nothing_to_test(findings))
    unstable = _probe(findings, cases, work)
    dropped += [(f"{c.target}({', '.join(c.args)[:60]})", PROBE_REASON) for c in unstable]
    cases = [c for c in cases if all(c is not u for u in unstable)]
    text = ""
    seeds_run = 0
    changed = True
    for _round in range(MAX_ROUNDS):
        seeds = tuple(str(seeds_run + i + 1) for i in range(SEEDS_PER_ROUND))
        seeds_run += len(seeds)
        if changed:
            text, by_id = render(findings.module, cases, properties, findings.names, command)
            candidate.write_text(text, encoding="utf-8")
        verdicts = run_twice(candidate, request.root, seeds, coverage_of=coverage_of)
        broken = next((v.broken for v in verdicts if v.broken), None)
        if broken is not None:
            if properties:
                dropped += [(_prop_name(p), "the file did not load with it") for p in properties]
                properties = []
                continue
            raise GenerateError(
                f"the generated tests for {findings.module} do not load: {_cause(broken)}"
            )
        failing = _failing(verdicts)
        changed = bool(failing)
        if not failing and seeds_run >= MIN_SEEDS:
            break
        remove: set[int] = set()
        for name, why in failing.items():
            item = by_id.get(name)
            dropped.append((name, why))
            if item is None:  # unknown id: drop the whole test function
                prefix = name.split("[", 1)[0]
                remove |= {id(c) for key, c in by_id.items() if key.split("[", 1)[0] == prefix}
            else:
                remove.add(id(item))
        cases = [c for c in cases if id(c) not in remove]
        properties = [p for p in properties if id(p) not in remove]
        if not cases and not properties:
            raise GenerateError(
                f"no generated test for {findings.module} passed in fresh processes "
                f"({len(dropped)} dropped: {dropped[0][1]})"
            )
    else:
        raise GenerateError(
            f"the tests for {findings.module} still failed after {MAX_ROUNDS} "
            "rounds of dropping failing cases"
        )
    text, _ = render(findings.module, cases, properties, findings.names, command, seeds_run)
    passed = verdicts[0].passed
    kept_ids = {id(c) for c in cases}
    lost: dict[str, int] = {}
    for case in findings.cases:
        if id(case) not in kept_ids:
            lost[case.target] = lost.get(case.target, 0) + 1
    for target, count in lost.items():
        report = findings.reports.get(target)
        if report is not None:
            report.kept = max(0, report.kept - count)
            report.dropped["failed a verification run"] = count
    figures = coverage_figures(candidate, findings.module_file) if coverage_of else None
    spans = {name: r.span for name, r in findings.reports.items() if len(r.span) == 2}
    per_function = function_figures(candidate, findings.module_file, spans) if figures else {}
    score = None
    if request.mutation:
        from ._mutate import measure

        candidate.write_text(text, encoding="utf-8")
        score = measure(
            findings.module,
            findings.module_file,
            candidate,
            request.root,
            findings.paths,
            limit=MUTANTS,
            seconds=max(10.0, request.budget),
            seed=request.seed,
        )
    return Result(
        module=findings.module,
        module_file=findings.module_file,
        text=text,
        out=out,
        written=False,
        tests=len(passed),
        cases=len(cases),
        properties=len(properties),
        dropped=dropped,
        functions=list(findings.reports.values()),
        coverage=figures,
        per_function=per_function,
        mutation=score,
    )


PROBE_REASON = "gave another result under another hash seed"
#: Hash seeds of the replay before any file is written (the pytest runs use 1 to 4).
PROBE_SEEDS = ("5", "6", "7", "8")


def _probe(findings: _Findings, cases: list[Case], work: Path) -> list[Case]:
    """Cases whose outcome changes with the hash seed (set order, hashes), by replay."""
    checked = [c for c in cases]
    if not checked:
        return []
    request = work / "probe.json"
    request.write_text(
        json.dumps(
            {
                "module": findings.module,
                "paths": findings.paths,
                "cases": [to_json(c) for c in checked],
            }
        ),
        encoding="utf-8",
    )
    procs = []
    for seed in PROBE_SEEDS:
        out = work / f"probe-{seed}.json"
        command = [sys.executable, "-m", "aqe._generate._probe", str(request), str(out)]
        procs.append((start(command, work, child_env(seed, findings.paths)), out))
    bad: set[int] = set()
    for proc, out in procs:
        try:
            proc.wait(timeout=60 + len(checked))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            continue  # the pytest runs still judge every case
        if out.exists():
            bad |= set(json.loads(out.read_text(encoding="utf-8")))
    return [checked[i] for i in sorted(bad)]


def _nothing_to_test(findings: _Findings) -> str:
    reports = list(findings.reports.values())
    if not reports:
        return f"{findings.module} defines no functions or classes to test"
    skipped = [f"{r.target}: {r.skipped}" for r in reports if r.skipped][:3]
    why = f" (skipped {'; '.join(skipped)})" if skipped else ""
    return (
        f"no call to the {len(reports)} functions of {findings.module} gave a result a test "
        f"can check{why}"
    )


def _failing(verdicts: list[Verdict]) -> dict[str, str]:
    failing = {}
    for name in set().union(*(v.failed for v in verdicts)):
        if all(name in v.failed for v in verdicts):
            failing[name] = "failed in a fresh process"
        else:
            failing[name] = "failed under one hash seed only"
    return failing


def _prop_name(prop: Property) -> str:
    return f"{prop.kind} of {', '.join(prop.targets)}"


def _has_coverage() -> bool:
    return _has_module("coverage")


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _cause(tail: str | None) -> str:
    """pytest's error line (``E   NameError: ...``) from a failed load, else its last line."""
    lines = (tail or "").splitlines()
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    return errors[-1] if errors else (lines[-1] if lines else "no output")
