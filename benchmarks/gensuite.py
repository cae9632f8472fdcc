"""Generate synthetic pytest suites for benchmarking ``aqe`` against pytest and pytest-xdist.

Real suites differ in the things a parallel runner can win or lose on: how many tests
there are (per-test overhead), how their durations are distributed (scheduling quality),
how expensive module-scoped fixtures are (grouping tests of a module on one worker),
and how expensive modules are to import (collection cost, fork-after-import).  This
generator lets each of those be dialled in independently and reproducibly (seeded), and
writes a ``manifest.json`` with every test's intended duration so a benchmark can compare
measured wall time against an ideal bound rather than only against other tools.

Usage::

    python benchmarks/gensuite.py heavy --tests 300 --files 30 --dist lognormal \\
        --sigma 1.5 --total 60 --max-test 8 --fixture-files 4 --fixture-seconds 0.2 0.5 \\
        --import-ms 20

or, from Python, ``generate_suite(SuiteSpec(...), out_dir)``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_SUITES_DIR = BENCH_DIR / "_suites"
MANIFEST_NAME = "manifest.json"
GENERATOR_TAG = "aqe-benchmarks-gensuite/1"

DISTRIBUTIONS = ("trivial", "constant", "lognormal", "pareto")
IMPORT_KINDS = ("cpu", "sleep")


@dataclass(frozen=True)
class SuiteSpec:
    """Everything that determines a generated suite; equal specs give identical suites."""

    name: str
    n_tests: int
    n_files: int
    dist: str = "constant"
    total_seconds: float = 10.0
    sigma: float = 1.5
    pareto_alpha: float = 1.5
    max_test_seconds: float | None = None
    fixture_files: int = 0
    fixture_seconds: tuple[float, float] = (0.0, 0.0)
    import_ms: float = 0.0
    import_kind: str = "cpu"
    fail_fraction: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        """Reject specs that cannot be honoured, before anything is written to disk."""
        if self.n_tests < 1 or self.n_files < 1:
            raise ValueError("need at least one test and one file")
        if self.n_files > self.n_tests:
            raise ValueError("more files than tests would leave empty modules")
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(f"dist must be one of {DISTRIBUTIONS}, got {self.dist!r}")
        if self.import_kind not in IMPORT_KINDS:
            raise ValueError(f"import_kind must be one of {IMPORT_KINDS}")
        if not 0.0 <= self.fail_fraction <= 1.0:
            raise ValueError("fail_fraction must be within [0, 1]")
        if not 0 <= self.fixture_files <= self.n_files:
            raise ValueError("fixture_files must be within [0, n_files]")
        low, high = self.fixture_seconds
        if low < 0 or high < low:
            raise ValueError("fixture_seconds must be (low, high) with 0 <= low <= high")
        cap = self.max_test_seconds
        if self.dist != "trivial" and cap is not None and cap * self.n_tests < self.total_seconds:
            raise ValueError("max_test_seconds * n_tests is below total_seconds")


@dataclass
class GeneratedTest:
    """One generated test function and what it is supposed to cost."""

    nodeid: str
    name: str
    duration: float
    fails: bool


@dataclass
class ModuleFile:
    """One generated test module: its tests plus module-level costs."""

    path: str
    fixture_seconds: float
    import_ms: float
    tests: list[GeneratedTest] = field(default_factory=list)


# --------------------------------------------------------------------------- durations


def draw_raw_durations(spec: SuiteSpec, rng: random.Random) -> list[float]:
    """Draw unscaled samples; only the *shape* matters because they are rescaled later."""
    if spec.dist == "trivial":
        return [0.0] * spec.n_tests
    if spec.dist == "constant":
        return [1.0] * spec.n_tests
    if spec.dist == "lognormal":
        return [rng.lognormvariate(0.0, spec.sigma) for _ in range(spec.n_tests)]
    return [rng.paretovariate(spec.pareto_alpha) for _ in range(spec.n_tests)]


def scale_to_total(raw: list[float], total: float, cap: float | None) -> list[float]:
    """Scale ``raw`` so it sums to ``total`` while no value exceeds ``cap``.

    Capping alone would silently shrink the total, so capped values are pinned and the
    remaining budget is spread over the uncapped ones, repeating until nothing new
    crosses the cap.  This keeps the "total test time" knob exact, which the ideal
    bound depends on.
    """
    if not raw or total <= 0:
        return [0.0] * len(raw)
    capped: set[int] = set()
    values = list(raw)
    while True:
        free = [i for i in range(len(raw)) if i not in capped]
        budget = total - (cap or 0.0) * len(capped)
        free_sum = sum(raw[i] for i in free)
        for i in free:
            values[i] = raw[i] * budget / free_sum if free_sum > 0 else budget / len(free)
        if cap is None:
            return values
        newly = {i for i in free if values[i] > cap}
        if not newly:
            return values
        capped |= newly
        for i in newly:
            values[i] = cap


def durations_for(spec: SuiteSpec, rng: random.Random) -> list[float]:
    """Per-test durations in seconds, rounded so the generated source is stable."""
    raw = draw_raw_durations(spec, rng)
    if spec.dist == "trivial":
        return raw
    return [round(d, 6) for d in scale_to_total(raw, spec.total_seconds, spec.max_test_seconds)]


# --------------------------------------------------------------------------- layout


def plan_suite(spec: SuiteSpec) -> list[ModuleFile]:
    """Decide every module, fixture cost, test duration and failure, deterministically."""
    spec.validate()
    rng = random.Random(spec.seed)
    durations = durations_for(spec, rng)
    n_fail = round(spec.fail_fraction * spec.n_tests)
    failing = set(rng.sample(range(spec.n_tests), n_fail))
    fixture_modules = set(rng.sample(range(spec.n_files), spec.fixture_files))
    low, high = spec.fixture_seconds

    modules: list[ModuleFile] = []
    per_file, extra = divmod(spec.n_tests, spec.n_files)
    index = 0
    for file_no in range(spec.n_files):
        path = f"test_mod_{file_no:03d}.py"
        fixture = round(rng.uniform(low, high), 4) if file_no in fixture_modules else 0.0
        module = ModuleFile(path=path, fixture_seconds=fixture, import_ms=spec.import_ms)
        for _ in range(per_file + (1 if file_no < extra else 0)):
            name = f"test_{index:05d}"
            module.tests.append(
                GeneratedTest(f"{path}::{name}", name, durations[index], index in failing)
            )
            index += 1
        modules.append(module)
    return modules


# --------------------------------------------------------------------------- rendering

_HEADER = '''"""Generated by benchmarks/gensuite.py (suite {name!r}); do not edit by hand."""

import time

import pytest

'''

_IMPORT_CPU = '''

def _import_work(seconds: float) -> int:
    """Burn CPU for `seconds`, the way a heavy import builds tables or compiles regexes."""
    deadline = time.perf_counter() + seconds
    acc = 0
    while time.perf_counter() < deadline:
        acc += sum(hash(str(i)) & 0xFF for i in range(200))
    return acc


_IMPORT_RESULT = _import_work({seconds!r})
'''

_IMPORT_SLEEP = """
time.sleep({seconds!r})  # simulated import cost
"""

_FIXTURE = '''

@pytest.fixture(scope="module")
def module_resource():
    """Expensive per-module setup shared by every test in this file."""
    time.sleep({seconds!r})
    return object()
'''


def render_test(test: GeneratedTest, trivial: bool, uses_fixture: bool, index: int) -> str:
    """Source of one test function: a sleep (no CPU burn) or a trivial assertion."""
    arg = "module_resource" if uses_fixture else ""
    if trivial:
        expected = index + 1 + (1 if test.fails else 0)
        body = f"    x = {index}\n    y = {expected}\n    assert x + 1 == y\n"
    else:
        body = f"    time.sleep({test.duration!r})\n"
        if test.fails:
            body += '    assert False, "deliberate failure (gensuite)"\n'
    return f"\n\ndef {test.name}({arg}):\n{body}"


def render_module(spec: SuiteSpec, module: ModuleFile) -> str:
    """Full source of one test module."""
    parts = [_HEADER.format(name=spec.name).rstrip("\n") + "\n"]
    if module.import_ms > 0:
        template = _IMPORT_CPU if spec.import_kind == "cpu" else _IMPORT_SLEEP
        parts.append(template.format(seconds=module.import_ms / 1000.0))
    uses_fixture = module.fixture_seconds > 0
    if uses_fixture:
        parts.append(_FIXTURE.format(seconds=module.fixture_seconds))
    for test in module.tests:
        index = int(test.name.split("_")[1])
        parts.append(render_test(test, spec.dist == "trivial", uses_fixture, index))
    return "".join(parts)


# --------------------------------------------------------------------------- manifest


def build_manifest(spec: SuiteSpec, modules: list[ModuleFile]) -> dict[str, object]:
    """Machine-readable description so benchmarks need not re-derive intended costs."""
    tests = [asdict(t) for m in modules for t in m.tests]
    durations = [t.duration for m in modules for t in m.tests]
    return {
        "generator": GENERATOR_TAG,
        "spec": asdict(spec),
        "totals": {
            "n_tests": len(tests),
            "n_files": len(modules),
            "n_expected_failures": sum(1 for m in modules for t in m.tests if t.fails),
            "test_seconds": round(sum(durations), 6),
            "longest_test_seconds": max(durations, default=0.0),
            "fixture_seconds": round(sum(m.fixture_seconds for m in modules), 6),
            "import_seconds": round(sum(m.import_ms for m in modules) / 1000.0, 6),
        },
        "files": [
            {"path": m.path, "fixture_seconds": m.fixture_seconds, "import_ms": m.import_ms}
            for m in modules
        ],
        "tests": tests,
    }


def ideal_bound(manifest: dict[str, object], workers: int) -> float:
    """Lower bound on wall time for ``workers`` workers: the longest single test, or
    perfect packing of all test time.  Ignores fixture, import and startup costs on
    purpose: it is the number a perfect scheduler with zero overhead would approach."""
    totals = manifest["totals"]
    assert isinstance(totals, dict)
    return max(float(totals["longest_test_seconds"]), float(totals["test_seconds"]) / workers)


def load_manifest(suite_dir: Path) -> dict[str, object]:
    """Read a suite's manifest.json."""
    data = json.loads((suite_dir / MANIFEST_NAME).read_text())
    assert isinstance(data, dict)
    return data


# --------------------------------------------------------------------------- writing


def _clear_previous(out_dir: Path, force: bool) -> None:
    """Remove an earlier generated suite, but never a directory we did not create."""
    if not out_dir.exists():
        return
    manifest = out_dir / MANIFEST_NAME
    ours = manifest.exists() and GENERATOR_TAG in manifest.read_text()
    if not (ours or force or not any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not a generated suite (use --force)")
    shutil.rmtree(out_dir)


def generate_suite(spec: SuiteSpec, out_dir: Path | None = None, force: bool = False) -> Path:
    """Write the suite for ``spec`` to ``out_dir`` (default ``_suites/<name>``) and return it.

    The directory is recreated from scratch so stale modules (and any ``.aqe`` history)
    never leak between different specs.  A ``pytest.ini`` makes the suite dir the rootdir
    so neither pytest nor aqe picks up the enclosing repository's configuration.
    """
    out_dir = (out_dir or DEFAULT_SUITES_DIR / spec.name).resolve()
    modules = plan_suite(spec)
    _clear_previous(out_dir, force)
    out_dir.mkdir(parents=True)
    (out_dir / "pytest.ini").write_text(
        "# Generated by benchmarks/gensuite.py: makes this directory the project root.\n[pytest]\n"
    )
    for module in modules:
        (out_dir / module.path).write_text(render_module(spec, module))
    manifest = build_manifest(spec, modules)
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
    return out_dir


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options mirroring the SuiteSpec fields."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("name", help="suite name (directory name under benchmarks/_suites)")
    p.add_argument("--tests", type=int, default=100, help="number of tests")
    p.add_argument("--files", type=int, default=10, help="number of test modules")
    p.add_argument(
        "--dist",
        choices=DISTRIBUTIONS,
        default="constant",
        help="duration distribution; 'trivial' tests only assert x + 1 == y",
    )
    p.add_argument("--total", type=float, default=10.0, help="total test time, seconds")
    p.add_argument("--sigma", type=float, default=1.5, help="lognormal sigma")
    p.add_argument("--alpha", type=float, default=1.5, help="Pareto shape (smaller = heavier)")
    p.add_argument("--max-test", type=float, default=None, help="cap on one test, seconds")
    p.add_argument(
        "--fixture-files",
        type=int,
        default=0,
        help="how many modules get a module-scoped fixture used by all their tests",
    )
    p.add_argument(
        "--fixture-seconds",
        type=float,
        nargs="+",
        default=[0.0],
        metavar="S",
        help="fixture cost S, or a range LOW HIGH drawn per module",
    )
    p.add_argument("--import-ms", type=float, default=0.0, help="per-module import cost, ms")
    p.add_argument(
        "--import-kind",
        choices=IMPORT_KINDS,
        default="cpu",
        help="'cpu' burns CPU for the import cost, 'sleep' just waits",
    )
    p.add_argument(
        "--fail-fraction", type=float, default=0.0, help="fraction of tests that deliberately fail"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="output dir (default _suites/NAME)")
    p.add_argument("--force", action="store_true", help="overwrite a non-generated directory")
    return p.parse_args(argv)


def spec_from_args(args: argparse.Namespace) -> SuiteSpec:
    """Translate parsed CLI options into a SuiteSpec."""
    fixture = list(args.fixture_seconds)
    if len(fixture) not in (1, 2):
        raise SystemExit("--fixture-seconds takes one value or LOW HIGH")
    low, high = fixture[0], fixture[-1]
    return SuiteSpec(
        name=args.name,
        n_tests=args.tests,
        n_files=args.files,
        dist=args.dist,
        total_seconds=args.total,
        sigma=args.sigma,
        pareto_alpha=args.alpha,
        max_test_seconds=args.max_test,
        fixture_files=args.fixture_files,
        fixture_seconds=(low, high),
        import_ms=args.import_ms,
        import_kind=args.import_kind,
        fail_fraction=args.fail_fraction,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: generate one suite and print where it went and what it costs."""
    args = parse_args(argv)
    try:
        spec = spec_from_args(args)
        out = generate_suite(spec, args.out, force=args.force)
    except (ValueError, FileExistsError) as exc:
        print(f"gensuite: error: {exc}", file=sys.stderr)
        return 2
    totals = load_manifest(out)["totals"]
    print(f"wrote {out}")
    print(json.dumps(totals, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
