"""``aqe generate``: input domains, oracles as source text, and the command end to end.

The end-to-end tests run the real ``aqe generate`` in a subprocess on a copy of
``tests/fixtures/generate_project`` (``shapes.core``: a project exception, a ``Literal``
parameter, a module constant, a function that changes module state, outputs that differ
between processes, a class with a ``from_string`` classmethod; ``shapes.text``: a round
trip, an idempotent function and one that is not; ``shapes.broken``: fails on import).
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import decimal
import enum
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import time
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import HANG_GUARD, aqe_process, clean_env

from aqe._generate._domain import Domain, ModuleFacts, domain_for, hints_of, module_facts
from aqe._generate._regex import matching_strings
from aqe._generate._values import stdlib_namespace, to_source

FIXTURE = Path(__file__).parent / "fixtures" / "generate_project"

# --- input domains --------------------------------------------------------------------

SAMPLE = """
import enum
import re
from dataclasses import dataclass
from typing import Literal, Optional, TypedDict

VERSION = re.compile(r"(\\d+)\\.(\\d+)\\.(\\d+)")


class Color(enum.Enum):
    RED = 1
    GREEN = 2
    BLUE = 3


@dataclass
class Point:
    x: int
    y: int = 0


class Movie(TypedDict):
    title: str
    year: int


def style(kind: Literal["legacy", "modern"]): ...
def paint(color: Color): ...
def maybe(n: Optional[int]): ...
def move(p: Point): ...
def show(m: Movie): ...
def total(xs: list[int]): ...


def bump(x):
    if isinstance(x, int):
        return x + 1
    return None


def speed(mode):
    if mode == "fast":
        return 2
    return 1


def check(text: str):
    return VERSION.fullmatch(text) is not None
"""


@dataclass
class Sample:
    namespace: dict[str, Any]
    facts: ModuleFacts
    defs: dict[str, ast.FunctionDef]

    def domain(self, function: str) -> Domain:
        """The domain of ``function``'s only parameter, as the explorer builds it."""
        func = self.namespace[function]
        (param,) = inspect.signature(func).parameters.values()
        hint = hints_of(func, self.namespace).get(param.name)
        return domain_for(param, hint, self.defs[function], self.facts)

    def values(self, domain: Domain) -> list[Any]:
        return [eval(source, dict(self.namespace)) for source in domain.candidates]


@pytest.fixture(scope="module")
def sample() -> Sample:
    module: dict[str, Any] = {"__name__": "generate_sample"}
    exec(compile(SAMPLE, "generate_sample.py", "exec", dont_inherit=True), module)
    namespace = {**stdlib_namespace(), **module}
    tree = ast.parse(SAMPLE)
    defs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    return Sample(namespace, module_facts(tree, namespace), defs)


def test_literal_hint_yields_each_of_its_values(sample: Sample) -> None:
    assert sample.values(sample.domain("style")) == ["legacy", "modern"]


def test_enum_hint_yields_every_member_by_name(sample: Sample) -> None:
    domain = sample.domain("paint")
    assert domain.candidates == ["Color.RED", "Color.GREEN", "Color.BLUE"]
    assert sample.values(domain) == list(sample.namespace["Color"])


def test_optional_hint_yields_ints_and_none(sample: Sample) -> None:
    values = sample.values(sample.domain("maybe"))
    assert None in values
    assert {0, 1, -1} <= {v for v in values if v is not None}
    assert all(v is None or type(v) is int for v in values)


def test_dataclass_hint_yields_constructor_calls_that_evaluate(sample: Sample) -> None:
    domain = sample.domain("move")
    assert domain.candidates and all(c.startswith("Point(") for c in domain.candidates)
    values = sample.values(domain)
    assert all(type(v) is sample.namespace["Point"] for v in values)
    assert len(set(map(repr, values))) == len(values) >= 2


def test_typeddict_hint_yields_dicts_with_its_keys(sample: Sample) -> None:
    values = sample.values(sample.domain("show"))
    assert values
    for value in values:
        assert set(value) == {"title", "year"}
        assert isinstance(value["title"], str) and isinstance(value["year"], int)


def test_list_hint_yields_empty_and_non_empty_lists_of_its_items(sample: Sample) -> None:
    values = sample.values(sample.domain("total"))
    assert [] in values
    full = [v for v in values if v]
    assert full and all(type(item) is int for v in full for item in v)


def test_isinstance_check_in_the_body_gives_an_untyped_parameter_ints(sample: Sample) -> None:
    domain = sample.domain("bump")
    assert int in domain.kinds
    assert {0, 1, -1} <= set(sample.values(domain))


def test_constant_compared_in_the_body_is_tried_early(sample: Sample) -> None:
    candidates = sample.domain("speed").candidates
    assert "'fast'" in candidates[:2], candidates[:5]


def test_strings_matching_a_module_regex_reach_str_parameters(sample: Sample) -> None:
    values = sample.values(sample.domain("check"))
    matching = [v for v in values if re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", v)]
    assert len(matching) >= 2, values[:12]
    assert all(sample.namespace["check"](v) for v in matching)


@pytest.mark.parametrize(
    "pattern",
    [
        r"(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?",
        r"[a-z]{2,4}_\d+",
        r"(cat|dog|bird)s?",
        r"^v?\d+(\.\d+)*$",
        r"(?i)[A-F0-9]{2}(:[a-f0-9]{2}){5}",
        r"[^aeiou ]+",
        r"\w+@\w+\.(com|org)",
        r"(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])",
        r"(\w)\1",
        r"(a)?(?(1)b|c)",
        r"[-+]?\d*\.?\d+([eE][-+]?\d+)?",
    ],
)
def test_matching_strings_all_fullmatch_their_pattern(pattern: str) -> None:
    found = matching_strings(pattern)
    assert len(found) >= 1 and len(set(found)) == len(found)
    assert [s for s in found if not re.fullmatch(pattern, s)] == []


def test_matching_strings_take_the_first_and_last_alternative() -> None:
    found = matching_strings(r"(cat|dog|bird)s?")
    assert {s.removesuffix("s") for s in found} >= {"cat", "bird"}
    assert matching_strings(r"(cat|dog|bird)s?") == found  # deterministic
    assert matching_strings(r"[unclosed") == []


# --- oracles as source text ------------------------------------------------------------


class Color(enum.Enum):
    RED = 1


@dataclass
class Point:
    x: int
    y: int = 0


class Money:
    """Reads back equal from its repr."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and other.cents == self.cents

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Money({self.cents})"


class Plain:
    """A readable repr but identity equality: no oracle can be written for it."""

    def __init__(self, x: int) -> None:
        self.x = x

    def __repr__(self) -> str:
        return f"Plain({self.x})"


class Mirage(Money):
    """A repr that does not read back equal."""

    def __repr__(self) -> str:
        return f"Money({self.cents + 1})"


@dataclass(eq=False)
class Handle:
    name: str


@dataclass
class Tally:
    start: int
    count: int = dataclasses.field(init=False, default=0)


NAMESPACE: dict[str, Any] = {
    **stdlib_namespace(),
    "Color": Color,
    "Point": Point,
    "Money": Money,
    "Plain": Plain,
    "Mirage": Mirage,
    "Handle": Handle,
    "Tally": Tally,
}


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(object(), id="object"),
        pytest.param(float("nan"), id="nan"),
        pytest.param([1, (2, float("nan"))], id="nan-nested"),
        pytest.param({1, "a"}, id="unsortable-set"),
        pytest.param(Plain(3), id="no-eq"),
        pytest.param(Mirage(3), id="repr-reads-back-different"),
        pytest.param(1 + 2j, id="complex"),
        pytest.param(len, id="builtin"),
        pytest.param(Point, id="class"),
        pytest.param(datetime, id="module"),
        pytest.param({"k": object()}, id="address-in-dict"),
        pytest.param(enum.Enum("Shade", "DARK").DARK, id="enum-not-in-namespace"),
    ],
)
def test_values_without_a_faithful_source_are_refused(value: Any) -> None:
    assert to_source(value, NAMESPACE) is None


@pytest.mark.parametrize(
    ("value", "source"),
    [
        ({"pear", "apple", "fig"}, "{'apple', 'fig', 'pear'}"),
        (frozenset({3, 1, 2}), "frozenset({1, 2, 3})"),
        (set(), "set()"),
        ({"a": [1, (2, 3)], "b": {"c": None}}, "{'a': [1, (2, 3)], 'b': {'c': None}}"),
        ((1,), "(1,)"),
        (float("inf"), "float('inf')"),
        (-float("inf"), "-float('inf')"),
        (Color.RED, "Color.RED"),
        (Point(1, 2), "Point(x=1, y=2)"),
        ([Point(3)], "[Point(x=3, y=0)]"),
        (Money(5), "Money(5)"),
        (datetime.date(2024, 2, 29), "datetime.date(2024, 2, 29)"),
        (decimal.Decimal("1.50"), "Decimal('1.50')"),
    ],
)
def test_values_are_written_as_source_that_reads_back_equal(value: Any, source: str) -> None:
    assert to_source(value, NAMESPACE) == source
    assert eval(source, dict(NAMESPACE)) == value


@pytest.mark.parametrize(
    "make", [lambda: Handle("a"), lambda: _tally(5)], ids=["eq-false", "init-false"]
)
def test_dataclasses_that_cannot_read_back_equal_are_refused(
    make: typing.Callable[[], Any],
) -> None:
    value = make()
    source = to_source(value, NAMESPACE)
    assert source is None or eval(source, dict(NAMESPACE)) == value


def _tally(count: int) -> Tally:
    tally = Tally(1)
    tally.count = count
    return tally


# --- the command, end to end -------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    return clean_env(extra, drop=("PYTHONHASHSEED",))


def _aqe(*args: str, cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return aqe_process(*args, cwd=cwd, drop=("PYTHONHASHSEED",), timeout=timeout)


def _copy(dest: Path) -> Path:
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns(".aqe", "__pycache__"))
    return dest


@dataclass
class Generated:
    root: Path
    core: str  # tests/test_shapes_core_generated.py
    text: str  # tests/test_text.py
    document: dict[str, Any]  # --json of the core run
    report: str  # stdout of the text run (--report)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """Both modules generated once, side by side, in one copy of the fixture project."""
    root = _copy(tmp_path_factory.mktemp("generate") / "project")
    (root / "tests" / "test_text.py").write_text("def test_old():\n    pass\n", encoding="utf-8")
    runs = [
        "generate shapes.core --budget 3 --json".split(),
        "generate src/shapes/text.py --out tests/test_text.py --force --budget 8 --report".split(),
    ]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "aqe", *args],
            cwd=root,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in runs
    ]
    try:
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, (out, err)
        assert err == "", err
    tests = root / "tests"
    return Generated(
        root=root,
        core=(tests / "test_shapes_core_generated.py").read_text(encoding="utf-8"),
        text=(tests / "test_text.py").read_text(encoding="utf-8"),
        document=json.loads(outputs[0][0]),
        report=outputs[1][0],
    )


def _parametrized(text: str, test: str) -> list[list[str]]:
    """The rows of ``test``'s ``pytest.param(...)`` list, as source strings ([] if none)."""
    for node in ast.walk(ast.parse(text)):
        if not (isinstance(node, ast.FunctionDef) and node.name == test):
            continue
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Call)
                and ast.unparse(decorator.func) == "pytest.mark.parametrize"
                and isinstance(decorator.args[1], ast.List)
            ):
                rows = [row for row in decorator.args[1].elts if isinstance(row, ast.Call)]
                return [[ast.unparse(arg) for arg in row.args] for row in rows]
    return []


def _tests(text: str) -> set[str]:
    return {
        node.name
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


@pytest.mark.e2e
def test_generated_files_pass_twice_in_fresh_processes(generated: Generated) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"],
            cwd=generated.root,
            env=_env(PYTHONHASHSEED=seed, PYTHONDONTWRITEBYTECODE="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed in ("1", "2")
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=HANG_GUARD)
        assert proc.returncode == 0, out
        summary = out.strip().splitlines()[-1]
        assert "passed" in summary and "failed" not in summary and "error" not in summary


@pytest.mark.e2e
def test_project_exception_is_expected_with_its_message(generated: Generated) -> None:
    imported = {
        alias.name
        for node in ast.walk(ast.parse(generated.core))
        if isinstance(node, ast.ImportFrom) and node.module == "shapes.core"
        for alias in node.names
    }
    assert "ShapeError" in imported  # from the module, however the import line wraps
    assert "with pytest.raises(ShapeError, match=match):\n        sides_of(name)" in generated.core
    rows = _parametrized(generated.core, "test_sides_of_raises_shape_error")
    messages = [ast.literal_eval(row[-1]) for row in rows]
    assert messages and all(m.startswith("unknown shape '") for m in messages), rows
    assert [["'triangle'", "3"]] <= _parametrized(generated.core, "test_sides_of_returns")


@pytest.mark.e2e
def test_every_literal_value_is_a_case(generated: Generated) -> None:
    rows = _parametrized(generated.core, "test_corner_style_returns")
    assert ["'modern'", "'rounded'"] in rows and ["'legacy'", "'square'"] in rows


@pytest.mark.e2e
def test_module_constants_are_read_through_functions_never_asserted(generated: Generated) -> None:
    assert "DEFAULTS" not in generated.core
    assert "_SIDES" not in generated.core and "REGISTRY" not in generated.core
    rows = _parametrized(generated.core, "test_default_for_returns")
    assert ["'unit'", "'unit=cm'"] in rows


@pytest.mark.e2e
def test_function_that_changes_module_state_gets_no_tests(generated: Generated) -> None:
    assert "register" not in generated.core
    functions = {f["target"]: f for f in generated.document["functions"]}
    assert functions["register"]["skipped"] == "changes module state (REGISTRY)"
    assert functions["register"]["kept"] == 0
    assert functions["sides_of"]["skipped"] is None


@pytest.mark.e2e
def test_outputs_that_differ_between_processes_are_not_asserted(generated: Generated) -> None:
    tests = _tests(generated.core)
    # No value is asserted; a property that holds in every process (a length bound) may be.
    assert not {t for t in tests if t.startswith(("test_stamp_returns", "test_token_returns"))}
    dropped = [d["test"] for d in generated.document["dropped"]]
    for name in ("stamp", "token"):  # by the hash-seed replay or by a pytest run
        assert any(d.startswith((f"test_{name}_returns", f"{name}(")) for d in dropped), dropped
    # A set of words comes out in the hash seed's order: only one-word cases may stay.
    for row in _parametrized(generated.core, "test_unique_words_returns"):
        assert len(ast.literal_eval(row[-1])) <= 1, row


@pytest.mark.e2e
def test_class_is_built_by_constructor_and_from_string_and_its_methods_run(
    generated: Generated,
) -> None:
    tests = _tests(generated.core)
    assert {"test_rect_returns", "test_rect_from_string_returns"} <= tests
    assert "test_rect_from_string_raises_shape_error" in tests
    assert {
        "test_rect_area_returns",
        "test_rect_scaled_returns",
        "test_rect_is_square_returns",
    } <= tests
    # from_string was fed a string its regex accepts, found from the module's pattern.
    texts = [
        ast.literal_eval(r[0])
        for r in _parametrized(generated.core, "test_rect_from_string_returns")
    ]
    assert any(re.fullmatch(r"\d+x\d+", t) for t in texts), texts
    assert "rect.area() == expected" in generated.core
    assert "Rect.from_string(text) == expected" in generated.core
    receivers = [r[0] for r in _parametrized(generated.core, "test_rect_area_returns")]
    assert receivers and all(r.startswith("Rect(") for r in receivers)


@pytest.mark.e2e
def test_properties_are_written_only_when_they_hold(generated: Generated) -> None:
    assert "test_old" not in generated.text  # --force replaced the file
    assert "from hypothesis import given, settings" in generated.text
    assert "def test_encode_decode_round_trip(value):" in generated.text
    assert "assert decode(encode(value)) == value" in generated.text
    assert "def test_normalize_idempotent(value):" in generated.text
    assert "assert normalize(normalize(value)) == normalize(value)" in generated.text
    assert "add_suffix(add_suffix" not in generated.text
    properties = {t for t in _tests(generated.text) if t.endswith(("_round_trip", "_idempotent"))}
    assert {"test_encode_decode_round_trip", "test_normalize_idempotent"} <= properties
    assert not [t for t in properties if "add_suffix" in t]
    assert "test_add_suffix_returns" in generated.text  # plain cases still written


@pytest.mark.e2e
def test_report_lists_each_function_and_the_module(generated: Generated) -> None:
    lines = generated.report.splitlines()
    assert lines[0].split()[:5] == ["target", "lines", "branches", "calls", "kept"]
    for name in ("encode", "decode", "normalize", "add_suffix"):
        assert any(line.split()[0] == name for line in lines[1:]), generated.report
    assert re.search(r"^module: 100\.0% lines \(\d+/\d+\)", generated.report, re.M)
    # the file's mutation score, from aqe's own mutator in fresh processes
    assert re.search(
        r"^mutation score: \d+\.\d% \(\d+ of \d+ mutants killed", generated.report, re.M
    )
    assert re.search(
        r"^aqe: wrote \S+test_text\.py with \d+ tests \(\d+ cases, \d+ properties", lines[-1]
    )


@pytest.mark.e2e
def test_json_document_has_the_file_its_tests_and_coverage(generated: Generated) -> None:
    document = generated.document
    assert document["module"] == "shapes.core"
    assert document["written"] is True
    assert Path(document["out"]) == generated.root / "tests" / "test_shapes_core_generated.py"
    assert document["text"] == generated.core
    items = sum(len(_parametrized(generated.core, t)) or 1 for t in _tests(generated.core))
    assert document["tests"] == items >= 15
    coverage = document["coverage"]
    assert 50 < coverage["line_percent"] <= 100 and 50 < coverage["branch_percent"] <= 100
    assert {"target", "calls", "kept", "skipped", "dropped"} <= set(document["functions"][0])


@pytest.mark.e2e
def test_dry_run_prints_the_file_and_writes_nothing(tmp_path: Path) -> None:
    root = _copy(tmp_path / "project")
    args = "generate shapes.core --function corner_style --dry-run --budget 1".split()
    done = _aqe(*args, cwd=root, timeout=HANG_GUARD)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Generated by aqe generate from shapes.core")
    assert "def test_corner_style_returns(style, expected):" in done.stdout
    assert "sides_of" not in done.stdout  # --function: only that function
    assert done.stderr.startswith("aqe: would write ")
    assert [p.name for p in (root / "tests").iterdir()] == [".gitkeep"]


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aqe: error: "), done.stderr
    return lines[0]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["shapes.core", "--out", "tests/test_old.py"],
            "--out tests/test_old.py exists; pass --force",
        ),
        (["shapes.core", "--out", "{outside}/x.py"], "is outside the project root"),
        (["shapes.core", "--out", "../x.py"], "--out ../x.py is outside the project root"),
        (["shapes.core", "--out", "tests/cases.txt"], "--out tests/cases.txt must name a .py file"),
        (["shapes.core", "--out", ".aqe/x.py"], "inside aqe's own .aqe folder"),
        (["{outside}/outside.py"], "outside.py' is outside the project root"),
        (["../outside.py"], "MODULE_OR_PATH '../outside.py' is outside the project root"),
        (["src/shapes/nope.py"], "MODULE_OR_PATH 'src/shapes/nope.py' does not exist"),
        (["pyproject.toml"], "MODULE_OR_PATH 'pyproject.toml' is not a Python file"),
        (["1abc"], "MODULE_OR_PATH '1abc' is neither a file nor a dotted module name"),
        (["shapes.nope"], "MODULE_OR_PATH 'shapes.nope': no module named 'shapes.nope'"),
        (["shapes.core", "--out", "tests/.gitkeep/x.py"], "is not a writable folder"),
        (["shapes.core", "--budget", "0"], "Invalid value for '--budget': must be seconds"),
        (["shapes.core", "--budget", "abc"], "Invalid value for '--budget': must be seconds"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_refusals_name_the_culprit_in_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    root = _copy(tmp_path / "project")
    (tmp_path / "outside.py").write_text("def f(x):\n    return x\n", encoding="utf-8")
    (root / "tests" / "test_old.py").write_text("# mine\n", encoding="utf-8")
    args = [a.replace("{outside}", str(tmp_path)) for a in args]
    done = _aqe("generate", *args, cwd=root)
    assert done.returncode == 4, done.stderr
    assert message in _one_line_error(done)
    assert sorted(p.name for p in (root / "tests").iterdir()) == [".gitkeep", "test_old.py"]
    assert (root / "tests" / "test_old.py").read_text(encoding="utf-8") == "# mine\n"
    assert not (tmp_path / "x.py").exists()


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["nope", "Rect.nope"])
def test_unknown_function_is_a_usage_error_that_names_it(tmp_path: Path, name: str) -> None:
    root = _copy(tmp_path / "project")
    done = _aqe("generate", "shapes.core", "--function", name, "--budget", "1", cwd=root)
    assert done.returncode == 4
    assert _one_line_error(done) == (
        f"aqe: error: --function {name!r}: no function, class or method of that name in shapes.core"
    )
    assert [p.name for p in (root / "tests").iterdir()] == [".gitkeep"]


@pytest.mark.e2e
def test_a_module_with_nothing_to_test_says_so(tmp_path: Path) -> None:
    root = _copy(tmp_path / "project")
    (root / "src" / "shapes" / "consts.py").write_text("X = 1\n")
    done = _aqe("generate", "shapes.consts", "--budget", "1", "--dry-run", cwd=root)
    assert done.returncode == 4
    assert _one_line_error(done) == (
        "aqe: error: shapes.consts defines no functions or classes to test"
    )


@pytest.mark.e2e
def test_module_failing_on_import_is_a_one_line_error(tmp_path: Path) -> None:
    root = _copy(tmp_path / "project")
    done = _aqe("generate", "shapes.broken", "--budget", "1", cwd=root)
    assert done.returncode != 0
    assert _one_line_error(done) == (
        "aqe: error: cannot import shapes.broken: RuntimeError: shapes.broken needs a settings file"
    )
    assert [p.name for p in (root / "tests").iterdir()] == [".gitkeep"]


SET_ORDER = """
def pair_{i}(flag: bool = True) -> list:
    if flag:
        return list({{"{a}", "{b}"}})
    return ["{a}"]
"""

HUGE = """
def repeat(text: str, times: int) -> str:
    return text * times
"""


@pytest.mark.e2e
def test_set_order_results_are_never_written_and_huge_results_do_not_stop_the_search(
    tmp_path: Path,
) -> None:
    root = _copy(tmp_path / "project")
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota"]
    source = "".join(SET_ORDER.format(i=i, a=words[i], b=words[i + 1]) for i in range(8))
    (root / "src" / "shapes" / "setord.py").write_text(source + HUGE, encoding="utf-8")
    done = _aqe("generate", "shapes.setord", "--budget", "3", "--json", cwd=root, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr
    document = json.loads(done.stdout)
    assert "test_repeat_returns" in document["text"]
    # Each pair_i keeps at most its one-word case: a two-word list is in hash-seed order.
    for i in range(8):
        for row in _parametrized(document["text"], f"test_pair_{i}_returns"):
            assert len(ast.literal_eval(row[-1])) == 1, row
    path = root / "tests" / "test_shapes_setord_generated.py"
    for seed in ("11", "12", "13", "14", "15", "16"):
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
            cwd=root,
            env={**_env(), "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-1500:]


@pytest.mark.e2e
def test_a_length_bound_is_written_only_where_it_holds(tmp_path: Path) -> None:
    root = _copy(tmp_path / "project")
    (root / "src" / "shapes" / "cut.py").write_text(
        "def shorten(text: str, width: int = 8) -> str:\n"
        "    return text if len(text) <= width else text[: width - 1] + '~'\n\n"
        "def shout(text: str) -> str:\n"
        "    return text.upper() + '!' if text else text\n",
        encoding="utf-8",
    )
    # The budget is wall-clock seconds: room for a machine that runs the suite on
    # both cores at once (4 s missed the bound there).
    done = _aqe("generate", "shapes.cut", "--budget", "12", "--json", cwd=root, timeout=HANG_GUARD)
    assert done.returncode == 0, done.stderr
    text = json.loads(done.stdout)["text"]
    assert "assert len(shorten(value)) <= len(value)" in text
    assert "assert len(shout(value)) >= len(value)" in text
    assert "len(shout(value)) <=" not in text and "len(shorten(value)) >=" not in text


@pytest.mark.e2e
def test_killing_aqe_generate_leaves_no_search_or_pytest_process(tmp_path: Path) -> None:
    root = _copy(tmp_path / "project")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aqe", "generate", "shapes.core", "--budget", "30", "--dry-run"],
        cwd=root,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def children() -> list[str]:
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if str(root).encode() in cmdline and b"aqe._generate" in cmdline:
                found.append(cmdline.decode(errors="replace"))
        return found

    # Until the search runs (or aqe ended without it); then until its children are
    # gone. The deadlines only guard against a hang, whatever the machine's load.
    deadline = time.monotonic() + HANG_GUARD
    while not children() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert children(), "the search never started"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + HANG_GUARD
    while children() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert children() == []
