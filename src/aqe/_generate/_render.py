"""The pytest file: one parametrized test per target and behaviour, then properties.

Readability is part of the job: imports at the top, names taken from the target's own
parameters, ids that show the inputs, one case per line, and a header that says how the
file was made and how to make it again.
"""

from __future__ import annotations

import ast
import builtins
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._model import SELF, Case, Property, snake, state_parts
from ._values import STDLIB_NAMES

_RESERVED = {"pytest", "re", "st", "given", "settings", "string", "expected", "match", "self"}


@dataclass
class Group:
    """Cases that share one test function."""

    name: str
    cases: list[Case]
    scenario: bool = False  # one case with setup steps, written as statements


def group_cases(cases: Iterable[Case]) -> list[Group]:
    buckets: dict[tuple[Any, ...], list[Case]] = {}
    scenarios: list[Case] = []
    for case in cases:
        if case.setup:
            scenarios.append(case)
            continue
        key = (case.target, case.form, case.behaviour(), case.consume, tuple(sorted(case.state)))
        buckets.setdefault(key, []).append(case)
    groups: list[Group] = []
    used: set[str] = set()
    for case in scenarios:
        steps = [step.split("(", 1)[0].rsplit(".", 1)[-1] for step in case.setup]
        name = _test_name(case.target, case.behaviour(), case) + "_after_" + "_".join(steps)
        base, n = name, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        groups.append(Group(name=name, cases=[case], scenario=True))
    for (target, _form, behaviour, _consume, _state), members in buckets.items():
        for part in _same_columns(members):
            name = _test_name(target, behaviour, part[0])
            base, n = name, 2
            while name in used:
                name, n = f"{base}_{n}", n + 1
            used.add(name)
            groups.append(Group(name=name, cases=part))
    return groups


def _same_columns(members: list[Case]) -> list[list[Case]]:
    """Pad shorter calls with their defaults so one test takes them all; split otherwise."""
    widest = max(members, key=lambda c: len(c.params))
    out: dict[tuple[Any, ...], list[Case]] = {}
    for case in members:
        missing = len(widest.params) - len(case.params)
        if 0 < missing <= len(case.pad) and all(
            src is not None for _, src, _ in case.pad[:missing]
        ):
            pad = case.pad[:missing]
            case.params = [*case.params, *(name for name, _, _ in pad)]
            case.args = [*case.args, *(src or "None" for _, src, _ in pad)]
            case.keywords = [*case.keywords, *(kw for _, _, kw in pad)]
            case.pad = case.pad[missing:]
        out.setdefault((tuple(case.params), tuple(case.keywords)), []).append(case)
    return list(out.values())


def _test_name(target: str, behaviour: str, case: Case) -> str:
    subject = snake(target.replace(".", "_").replace("__", "_").strip("_"))
    if behaviour.startswith("raises:"):
        exc = behaviour.split(":", 1)[1].rsplit(".", 1)[-1]
        tail = f"raises_{snake(exc)}"
    elif behaviour == "mutates":
        changed = sorted({state_parts(k)[2] or state_parts(k)[0] for k in case.state})
        tail = "changes_" + "_and_".join(changed[:3])
    else:
        tail = "returns"
    return f"test_{subject}_{tail}".replace("__", "_")


def case_id(case: Case) -> str:
    parts = []
    for source in case.args:
        try:
            value = ast.literal_eval(source)
        except Exception:
            value = source
        if isinstance(value, str):
            text = value if value.strip() else repr(value)
        else:
            text = source
        parts.append(text)
    raw = "-".join(parts) if parts else "no-args"
    # Escaped, never replaced: 'ünï' and '\n' stay told apart ('\xfcn\xef', '\n'), and
    # brackets, which end a pytest id, become parentheses.
    raw = raw.translate({ord("["): "(", ord("]"): ")"})
    raw = raw.encode("unicode_escape").decode("ascii")
    if len(raw) > 40:
        raw = raw[:37].rstrip() + "..."  # cut, and saying so
    return raw.strip() or "empty"


def render(
    module: str,
    cases: list[Case],
    properties: list[Property],
    namespace_names: dict[str, str],
    command: str,
    seeds: int = 4,
) -> tuple[str, dict[str, Case | Property]]:
    """The file's text and, per test id, the case it runs (to drop what fails)."""
    groups = group_cases(cases)
    body: list[str] = []
    by_id: dict[str, Case | Property] = {}
    names_used: set[str] = set()
    for group in groups:
        if group.scenario:
            body.append(_render_scenario(group, names_used))
            by_id[group.name] = group.cases[0]
            continue
        text, ids = _render_group(group, names_used)
        body.append(text)
        for test_id, case in ids.items():
            by_id[f"{group.name}[{test_id}]"] = case
    for prop in properties:
        text, name = _render_property(prop, names_used)
        body.append(text)
        by_id[name] = prop
    header = [
        f"# Generated by aqe generate from {module}; do not edit by hand, regenerate with:",
        f"#   {command}",
        f"# Each test passed in fresh processes under PYTHONHASHSEED 1 to {seeds} when written.",
        "",
    ]
    imports = _imports(
        module,
        names_used,
        namespace_names,
        bool(properties),
    )
    text = "\n".join(header + imports + ["", ""] + ["\n\n".join(body)]) + "\n"
    return _format(text), by_id


def _render_group(group: Group, names_used: set[str]) -> tuple[str, dict[str, Case]]:
    first = group.cases[0]
    columns = [_column_name(c) for c in first.params]
    extra: list[str] = []
    returns_none = all(c.expected in (None, "None") for c in group.cases)
    if first.outcome in ("returns", "mutates") and not returns_none:
        extra.append("expected")
    if first.outcome == "raises":
        extra.append("match")
    state_cols = {
        name: "expected_" + re.sub(r"\W+", "_", _state_expr(name)).strip("_")
        for name in sorted(first.state)
    }
    extra.extend(state_cols.values())
    all_columns = columns + extra
    rows: list[str] = []
    ids: dict[str, Case] = {}
    for case in group.cases:
        values = list(case.args)
        if case.outcome in ("returns", "mutates") and not returns_none:
            values.append(case.expected or "None")
        if case.outcome == "raises":
            values.append(repr(_escape(case.match)) if case.match else "None")
        values.extend(case.state[name] for name in sorted(first.state))
        test_id = case_id(case)
        base, n = test_id, 2
        while test_id in ids:
            test_id, n = f"{base}-{n}", n + 1
        ids[test_id] = case
        for source in values:
            names_used |= _free_names(source)
        row = f"        pytest.param({', '.join(values)}, id={test_id!r}),"
        if len(row) > 99:  # one argument a line, as black would (when it is not installed)
            inner = "".join(f"            {v},\n" for v in [*values, f"id={test_id!r}"])
            row = f"        pytest.param(\n{inner}        ),"
        rows.append(row)
    call = first.call(columns)
    names_used |= _free_names(call) - set(columns)
    signature = ", ".join(all_columns)
    lines = [
        "@pytest.mark.parametrize(",
        f"    {_names_tuple(all_columns)},",
        "    [",
        *rows,
        "    ],",
        ")",
        f"def {group.name}({signature}):",
    ]
    if first.outcome == "raises":
        exc = _exception(first, names_used)
        lines += [f"    with pytest.raises({exc}, match=match):", f"        {call}"]
    elif first.outcome == "mutates":
        lines += [
            f"    assert {call} is None" if returns_none else f"    assert {call} == expected"
        ]
        for name, col in state_cols.items():
            lines.append(f"    assert {_state_expr(name)} == {col}")
    else:
        lines += [
            f"    assert {call} is None" if returns_none else f"    assert {call} == expected"
        ]
    return "\n".join(lines) + "\n", ids


def _exception(case: Case, names_used: set[str]) -> str:
    """The exception's name as the file refers to it, noting what to import."""
    exc = case.exc_type or "Exception"
    if "." in exc:
        names_used.add("import:" + exc.rsplit(".", 1)[0])
    else:
        names_used |= _free_names(exc)
    return exc


def _render_scenario(group: Group, names_used: set[str]) -> str:
    """A receiver built, changed by earlier calls, then the call under test."""
    case = group.cases[0]
    receiver = _column_name(case.params[0])
    lines = [f"def {group.name}():", f"    {receiver} = {case.args[0]}"]
    for step in case.setup:
        lines.append("    " + step.replace(SELF, receiver))
    columns = [receiver, *case.args[1:]]
    call = case.call(columns)
    for source in [*case.args, *case.setup, call]:
        names_used |= _free_names(source.replace(SELF, "x")) - {receiver}
    if case.outcome == "raises":
        exc = _exception(case, names_used)
        match = f", match={_escape(case.match)!r}" if case.match else ""
        lines += [f"    with pytest.raises({exc}{match}):", f"        {call}"]
    else:
        if case.expected in (None, "None"):
            lines.append(f"    assert {call} is None")
        else:
            lines.append(f"    assert {call} == {case.expected}")
            names_used |= _free_names(case.expected)
        for key, source in sorted(case.state.items()):
            lines.append(f"    assert {_state_expr(key)} == {source}")
            names_used |= _free_names(source)
    return "\n".join(lines) + "\n"


def _state_expr(key: str) -> str:
    """``"cart.items"`` -> ``cart.items``, ``"cache:dict"`` -> ``dict(cache)``, with the
    column renamed as in the signature."""
    column, kind, name = state_parts(key)
    if kind == "view":
        return f"{name}({_column_name(column)})"
    return _column_name(column) + (f".{name}" if kind == "attr" else "")


def _escape(message: str) -> str:
    """``re.escape`` that leaves spaces and quotes alone, so the pattern stays readable."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", message)


def _names_tuple(columns: list[str]) -> str:
    if len(columns) == 1:
        return repr(columns[0])
    return "(" + ", ".join(repr(c) for c in columns) + ")"


def _column_name(name: str) -> str:
    return f"{name}_value" if name in _RESERVED or hasattr(builtins, name) else name


def _render_property(prop: Property, names_used: set[str]) -> tuple[str, str]:
    subject = "_".join(snake(t) for t in prop.targets)
    name = f"test_{subject}_{prop.kind}"
    for target in prop.targets:
        names_used.add(target)
    for strategy in prop.strategies:
        names_used |= _free_names(strategy) - {"st"}
    strategies = ", ".join(prop.strategies)
    text = (
        "\n".join(
            [
                f"# {prop.description}.",
                f"# Held on {prop.examples} explored inputs before Hypothesis tried its own.",
                "@settings(derandomize=True, database=None, deadline=None)",
                f"@given({strategies})",
                f"def {name}({', '.join(prop.names)}):",
                f"    assert {prop.check}",
            ]
        )
        + "\n"
    )
    return text, name


def _free_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        return set()
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            root: ast.AST = node
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name):
                names.add(root.id)
    return names


def _imports(
    module: str, names: set[str], namespace_names: dict[str, str], properties: bool
) -> list[str]:
    stdlib: set[str] = set()
    third: list[str] = ["import pytest"]
    if properties:
        third.append("from hypothesis import given, settings")
        third.append("from hypothesis import strategies as st")
    own: list[str] = []
    for name in sorted(names):
        if name.startswith("import:"):
            stdlib.add(f"import {name.split(':', 1)[1]}")
        elif name in namespace_names:
            kind = namespace_names[name]
            if kind.startswith("module:"):
                real = kind.split(":", 1)[1]
                stdlib.add(f"import {real}" if real == name else f"import {real} as {name}")
            elif kind.startswith("from:"):
                stdlib.add(f"from {kind.split(':', 1)[1]} import {name}")
            else:
                own.append(name)
        elif name in STDLIB_NAMES:
            stdlib.add(STDLIB_NAMES[name])
    if "string" in names:
        stdlib.add("import string")
    lines = sorted(stdlib, key=lambda line: (line.startswith("from "), line))
    lines += ([""] if lines else []) + third
    if own:
        joined = ", ".join(own)
        line = f"from {module} import {joined}"
        if len(line) > 99:
            inner = "".join(f"    {n},\n" for n in own)
            line = f"from {module} import (\n{inner})"
        lines += ["", line]
    return lines


def _format(text: str) -> str:
    """Black-style formatting through ruff or black when the environment has one."""
    ruff = shutil.which("ruff")
    commands = []
    if ruff:
        commands.append([ruff, "format", "--quiet", "--line-length", "99", "-"])
    commands.append([sys.executable, "-m", "ruff", "format", "--quiet", "--line-length", "99", "-"])
    commands.append([sys.executable, "-m", "black", "--quiet", "--line-length", "99", "-"])
    for command in commands:
        try:
            done = subprocess.run(
                command, input=text, capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout
    return text


def namespace_kinds(namespace: dict[str, Any]) -> dict[str, str]:
    """How each module-level name is imported into the test file."""
    kinds = {}
    for name, value in namespace.items():
        if name.startswith("__"):
            continue
        home = getattr(value, "__module__", None)
        if isinstance(value, types.ModuleType):
            kinds[name] = f"module:{value.__name__}"
        elif (
            isinstance(home, str)
            and home.split(".")[0] in sys.stdlib_module_names
            and getattr(sys.modules.get(home), name, None) is value
        ):
            kinds[name] = f"from:{home}"  # Decimal from decimal, not from the module under test
        else:
            kinds[name] = "attr"
    return kinds
