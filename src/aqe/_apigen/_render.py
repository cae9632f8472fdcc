"""The written suite: a conftest (client, credentials, checks) and one file per group.

Tests are what an engineer would write by hand: a parametrize table per operation and
kind of request, ids that say what each case is, one plain function per sequence.
"""

from __future__ import annotations

import json
import keyword
import re
import textwrap
from pathlib import Path
from typing import Any

from ._cases import Case, Flow, Step

_KIND_DOC = {
    "unknown": "an id that names nothing gets a documented answer (a 404), never a 5xx",
    "accepts": "valid requests get a 2xx (or a documented 404, 409...), never a 400/422",
    "rejects": "invalid requests get a 4xx, never a 2xx or a 5xx",
    "credentials": "without a valid credential the call is refused with a 4xx",
    "explored": "what Hypothesis found breaking the contract, shrunk",
}


WIDTH = 96
#: The ``aqe run`` options that retry a written test's network faults, and only those.
RETRY_ON = "ConnectError|ConnectTimeout|ReadTimeout|RemoteProtocolError"
_RUN_HINT = f"--retries 2 --retry-on '{RETRY_ON}'"


def _flat(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flat(k)}: {_flat(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_flat(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def literal(value: Any, indent: int, prefix: int = 0) -> str:
    """A JSON-like value as Python source, black's way: one line if it fits (after
    ``prefix`` characters), else one item a line, the lines indented by ``indent``."""
    text = _flat(value)
    if len(text) + indent + prefix <= WIDTH or not isinstance(value, (dict, list)) or not value:
        return text
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        items = [
            f"{pad}{_flat(k)}: {literal(v, indent + 4, len(_flat(k)) + 3)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + ",\n" + " " * indent + "}"
    items = [f"{pad}{literal(v, indent + 4, 1)}" for v in value]
    return "[\n" + ",\n".join(items) + ",\n" + " " * indent + "]"


def identifier(text: str) -> str:
    name = re.sub(r"\W+", "_", text).strip("_").lower() or "operation"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = "op_" + name
    return name


def _header(title: str, command: str, spec_name: str) -> str:
    return (
        f'"""{title}\n\n'
        f"Written by `aqe generate api` from {spec_name}; regenerate with:\n\n"
        f"    {command}\n\n"
        "Every call is checked by the `check` fixture (conftest.py): a documented status, a\n"
        "body valid against its schema, the declared content type and headers, never a 5xx.\n"
        '"""\n'
    )


def test_file(
    group: str,
    api_title: str,
    command: str,
    spec_name: str,
    tables: list[tuple[str, str, str, list[Case]]],
    flows: list[Flow],
    dropped: list[tuple[str, str]],
) -> str:
    """``tables``: (operation name, operation id, kind, cases) in the order written."""
    parts = [
        _header(f"Contract tests for the {group!r} operations of {api_title}.", command, spec_name)
    ]
    parts.append("import pytest\n" if tables else "")
    made: dict[str, tuple[Step, ...]] = {}
    for _op, _id, _kind, cases in tables:
        for case in cases:
            if case.setup:
                made.setdefault(_made(case)[-1], case.setup)
    parts += [_fixture(name, steps) for name, steps in made.items()]
    used: set[str] = set()
    with_setup = {(op, kind) for op, _id, kind, cases in tables if cases[0].setup}
    for op_name, op_id, kind, cases in tables:
        name = f"test_{identifier(op_id)}_{kind}"
        if kind == "unknown":
            name = f"test_{identifier(op_id)}_unknown_id"
        elif not cases[0].setup and (op_name, kind) in with_setup:
            name += "_bad_ids"
        base, count = name, 1
        while name in used:
            count += 1
            name = f"{base}_{count}"
        used.add(name)
        parts.append(_table(name, op_name, kind, cases))
    for flow in flows:
        parts.append(_flow(flow))
    if dropped:
        lines = [
            "",
            "# Dropped: answers differed between two identical requests (not reproducible):",
        ]
        lines += [f"#   {what}: {why}" for what, why in dropped]
        parts.append("\n".join(lines) + "\n")
    header, *rest = [p for p in parts if p]
    return (header + "\n" + "\n\n".join(rest)).rstrip() + "\n"


def _table(name: str, op_name: str, kind: str, cases: list[Case]) -> str:
    rows = []
    for case in cases:
        url, label = _flat(case.url), _flat(case.label)
        one = f"        pytest.param({url}, {_flat(case.options)}, id={label}),"
        if len(one) <= WIDTH:
            rows.append(one)
            continue
        rows.append(
            f"        pytest.param(\n            {_flat(case.url)},\n"
            f"            {literal(case.options, 12)},\n"
            f"            id={_flat(case.label)},\n        ),"
        )
    client = "anonymous" if kind == "credentials" else "api"
    method = op_name.split(" ", 1)[0]
    names = sorted({n for case in cases for n in _made(case)})
    fixtures = "".join(f"{n}, " for n in names)
    fill = ""
    if names:
        given = ", ".join(f"{n}={n}" for n in names)
        fill = f"    url, options = check.fill((url, options), {given})\n"
    expect = {
        "rejects": ', expect="rejected"',
        "credentials": ', expect="rejected"',
        "explored": ', expect="any"',
    }.get(kind, "")
    return (
        "@pytest.mark.parametrize(\n"
        '    ("url", "options"),\n'
        "    [\n" + "\n".join(rows) + "\n    ],\n)\n"
        f"def {name}({client}, check, {fixtures}url, options):\n"
        + _docstring(f"{op_name}: {_KIND_DOC[kind]}.")
        + fill
        + f"    response = {client}.request({_flat(method)}, url, **options)\n"
        + f"    check(response, {_flat(op_name)}{expect})\n"
    )


def _docstring(text: str) -> str:
    if len(text) + 10 <= WIDTH:
        return f'    """{text}"""\n'
    body = textwrap.fill(text, WIDTH - 4, initial_indent="    ", subsequent_indent="    ")
    return f'    """\n{body}\n    """\n'


def _made(case: Case) -> list[str]:
    """The names the case's setup saves (the last one is what the case is about)."""
    return [name for step in case.setup for name in step.save]


def _fixture(name: str, steps: tuple[Step, ...]) -> str:
    last = steps[-1]
    lines = [
        "@pytest.fixture",
        f"def {name}(api, check):",
        f'    """Made for the test with {last.op}: the {name} it answers."""',
    ]
    saved: set[str] = set()
    for step in steps:
        lines += _step(step, saved, {})
    lines.append(f"    return {name}")
    return "\n".join(lines) + "\n"


def _placeholders(value: Any, saved: set[str]) -> bool:
    if isinstance(value, str):
        return any("{" + name + "}" in value for name in saved)
    if isinstance(value, dict):
        return any(_placeholders(v, saved) for v in value.values())
    if isinstance(value, list):
        return any(_placeholders(v, saved) for v in value)
    return False


def _code_value(value: Any, saved: set[str], indent: int, prefix: int = 0) -> str:
    """A literal, with ``"{name}"`` placeholders of saved values written as the names."""
    if not _placeholders(value, saved):
        return literal(value, indent, prefix)
    if isinstance(value, str):
        whole = re.fullmatch(r"\{(\w+)\}", value)
        if whole and whole.group(1) in saved:
            return whole.group(1)
        return "f" + _flat(value)
    if isinstance(value, dict):
        items = [
            f"{_flat(k)}: {_code_value(v, saved, indent + 4, len(_flat(k)) + 3)}"
            for k, v in value.items()
        ]
        one = "{" + ", ".join(items) + "}"
        if len(one) + indent + prefix <= WIDTH:
            return one
        pad = " " * (indent + 4)
        return "{\n" + "".join(f"{pad}{item},\n" for item in items) + " " * indent + "}"
    items = [_code_value(v, saved, indent + 4) for v in value]
    return "[" + ", ".join(items) + "]"


def _flow(flow: Flow) -> str:
    saved: set[str] = set()
    lines = [
        f"def {flow.name}(api, anonymous, check):"
        if any(s.anonymous for s in flow.steps)
        else f"def {flow.name}(api, check):",
        _docstring(flow.doc).rstrip("\n"),
    ]
    sent: dict[int, str] = {}
    for step in flow.steps:
        lines += _step(step, saved, sent)
    return "\n".join(lines) + "\n"


def _step(step: Step, saved: set[str], sent: dict[int, str]) -> list[str]:
    client = "anonymous" if step.anonymous else "api"
    method = step.op.split(" ", 1)[0].lower()
    args = [_code_value(step.url, saved, 8)]
    lines = []
    for key, value in step.options.items():
        if key == "json" and isinstance(value, (dict, list)) and len(repr(value)) > 40:
            var = f"{step.var}_body"
            lines.append(f"    {var} = {_code_value(value, saved, 4, len(var) + 3)}")
            sent[id(value)] = var
            args.append(f"json={var}")
        else:
            args.append(f"{key}={_code_value(value, saved, 4, len(key) + 1)}")
    call = (
        f"{client}.{method}({', '.join(args)})"
        if method in ("get", "post", "put", "patch", "delete", "head", "options")
        else f"{client}.request({_flat(method.upper())}, {', '.join(args)})"
    )
    lines.append(f"    {step.var} = {call}")
    if step.expect == "gone":
        lines.append(f"    check.gone({step.var}, {_flat(step.op)})")
    else:
        lines.append(f'    check({step.var}, {_flat(step.op)}, expect="2xx")')
    if step.same_as is not None:
        reference = sent.get(id(step.same_as)) or _code_value(step.same_as, saved, 20)
        lines.append(f"    check.read_back({reference}, {step.var})")
    for name, (where, keys) in step.save.items():
        if where == "header":
            lines.append(f"    {name} = {step.var}.headers[{_flat(keys[0])}]")
        else:
            path = "".join(f"[{int(k)}]" if k.isdigit() else f"[{_flat(k)}]" for k in keys)
            lines.append(f"    {name} = {step.var}.json(){path}")
        saved.add(name)
    return lines


def conftest(
    *,
    api_title: str,
    command: str,
    spec_relative: str,
    base_url: str,
    app: str | None,
    app_dir: str,
    schemes: dict[str, tuple[str, str, str, str]],
) -> str:
    contract = (Path(__file__).with_name("_contract.py")).read_text(encoding="utf-8")
    body = contract.split("# --- contract checks (copied into the generated conftest.py) ---\n", 1)[
        1
    ]
    body = body.replace("from __future__ import annotations\n\n", "", 1)
    imports, _, rest = body.partition("\nSPEC_URI")
    rest = "SPEC_URI" + rest
    modules = [line for line in imports.splitlines() if line.startswith(("import ", "from "))]
    standard = sorted(
        {"import os", "from collections.abc import Iterator"}
        | {m for m in modules if m.split()[1].split(".")[0] in ("json", "pathlib", "typing")},
        key=lambda line: line.split()[1],
    )
    third = sorted({"import pytest", *modules} - set(standard), key=lambda line: line.split()[1])
    variables = (
        "\n".join(
            f"    {variable:14} {kind} {name!r} ({where}) of scheme {scheme!r}"
            for scheme, (kind, where, name, variable) in schemes.items()
        )
        or "    (the description declares no credentials)"
    )
    return (
        f'"""Client, credentials and contract checks of the {api_title} tests here.\n\n'
        f"Written by `aqe generate api`; regenerate with:\n\n    {command}\n\n"
        "Run it on aqe's workers; network faults run again with backoff and jitter (the\n"
        "client also retries them), a broken contract never does:\n\n"
        f"    aqe run {_RUN_HINT}\n\n"
        "Settings come from the environment, never from this file:\n\n"
        f"    API_BASE_URL   the server to test (default {base_url})\n"
        f"    API_APP        or an app to test in-process, module:attribute (default "
        f"{app or 'none'})\n"
        f"{variables}\n"
        '"""\n\n'
        "from __future__ import annotations\n\n"
        + "\n".join(standard)
        + "\n\n"
        + "\n".join(third)
        + "\n\n"
        f"SPEC = Path(__file__).parent / {_flat(spec_relative)}\n"
        f"APP_DIR = Path(__file__).parent / {_flat(app_dir)}\n"
        f"DEFAULT_BASE_URL = {_flat(base_url)}\n"
        f"DEFAULT_APP = {_flat(app)}\n"
        "#: Security scheme -> (kind, where, name, environment variable with the credential).\n"
        f"SCHEMES: dict[str, tuple[str, str, str, str]] = {literal(schemes, 0)}\n\n\n"
        "def _client(with_credentials: bool) -> httpx.Client:\n"
        "    # API_BASE_URL alone points the suite at a server, even one written for an app.\n"
        '    default = "" if "API_BASE_URL" in os.environ else DEFAULT_APP or ""\n'
        '    target = os.environ.get("API_APP", default)\n'
        "    app = load_app(target, APP_DIR) if target else None\n"
        '    base_url = os.environ.get("API_BASE_URL", DEFAULT_BASE_URL)\n'
        "    found = credentials(SCHEMES, os.environ if with_credentials else {})\n"
        "    return make_client(base_url, app, *found)\n\n\n"
        "@pytest.fixture\n"
        "def api() -> Iterator[httpx.Client]:\n"
        '    """A client with the credentials the environment holds."""\n'
        "    with _client(True) as client:\n"
        "        yield client\n\n\n"
        "@pytest.fixture\n"
        "def anonymous() -> Iterator[httpx.Client]:\n"
        '    """A client without credentials."""\n'
        "    with _client(False) as client:\n"
        "        yield client\n\n\n"
        '@pytest.fixture(scope="session")\n'
        "def contract() -> Contract:\n"
        "    return Contract(load_spec(SPEC))\n\n\n"
        "@pytest.fixture\n"
        "def check(contract: Contract) -> Checks:\n"
        "    return Checks(contract)\n\n\n"
        "# What follows is aqe's contract checker, as aqe generate api wrote it.\n\n" + rest
    )
