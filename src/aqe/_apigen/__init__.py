"""``aqe generate api``: contract tests for an HTTP API, from its OpenAPI description.

The flow: read and validate the description (``_spec``), build each operation's cases and
the sequences between operations (``_cases``), send every case twice against the API
(``_probe``: cases whose verdicts differ are dropped), optionally search for more failures
with Hypothesis (``_explore``), then write a conftest and one pytest file per tag
(``_render``). Cases that fail reproducibly are kept: they are the API's contract bugs.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .._exceptions import UsageError
from ._cases import Builder, Case, Flow, flows
from ._contract import Contract, credentials, load_app, make_client
from ._probe import Outcome, run_flow, send_case
from ._render import conftest, identifier, test_file
from ._spec import Operation, load, operations

MARKER = "Written by `aqe generate api`"
APP_BASE_URL = "http://testserver"


@dataclass(frozen=True)
class Request:
    spec: Path
    root: Path
    base_url: str | None = None
    app: str | None = None
    out: Path | None = None
    budget: float = 30.0
    dry_run: bool = False
    explore: bool = False
    seed: int = 0


@dataclass
class Result:
    out: Path
    written: bool
    #: file name -> text, in the order written.
    files: dict[str, str]
    operations: int
    cases: int
    flows: int
    #: (case, why) of each case dropped as not reproducible.
    dropped: list[tuple[str, str]] = field(default_factory=list)
    #: (case, problems) of each case that breaks the contract now: the bugs found.
    failing: list[tuple[str, str]] = field(default_factory=list)
    explored: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def schemes(contract: Contract) -> dict[str, tuple[str, str, str, str]]:
    """Each security scheme -> (kind, where, name, the environment variable with its value)."""
    declared = (contract.spec.get("components") or {}).get("securitySchemes") or {}
    found: dict[str, tuple[str, str, str, str]] = {}
    taken: set[str] = set()
    for name, ref in declared.items():
        scheme = contract.resolve(ref)
        kind = scheme.get("type")
        if kind == "apiKey":
            entry = ("apiKey", str(scheme.get("in", "header")), str(scheme.get("name")), "API_KEY")
        elif kind == "http" and str(scheme.get("scheme", "")).lower() == "basic":
            entry = ("basic", "header", "Authorization", "API_BASIC_AUTH")
        elif kind in ("http", "oauth2", "openIdConnect"):
            entry = ("bearer", "header", "Authorization", "API_TOKEN")
        else:
            continue
        variable = entry[3]
        if variable in taken:
            variable = "API_" + re.sub(r"\W+", "_", name).upper()
        taken.add(variable)
        found[name] = (*entry[:3], variable)
    return found


def _clients(
    request: Request, schemes_: dict[str, tuple[str, str, str, str]]
) -> tuple[dict[bool, httpx.Client], str]:
    app = None
    base_url = request.base_url or APP_BASE_URL
    if request.app:
        try:
            app = load_app(request.app, request.root)
        except Exception as exc:  # whatever the user's import raises
            first = (str(exc).splitlines() or [""])[0][:200]
            raise UsageError(
                f"cannot import the app {request.app!r}: {type(exc).__name__}: {first}"
            ) from None
    authed = make_client(base_url, app, *credentials(schemes_, os.environ))
    anonymous = make_client(base_url, app, {}, {}, {})
    if app is None:
        try:
            authed.get("/")
        except httpx.HTTPError as exc:
            authed.close()
            anonymous.close()
            raise UsageError(
                f"cannot reach the API at {base_url}: {type(exc).__name__}: {exc}"[:300]
            ) from None
    return {True: authed, False: anonymous}, base_url


def _twice(first: Outcome, second: Outcome) -> bool:
    return first.verdict == second.verdict


def generate(request: Request) -> Result:
    started = time.monotonic()
    contract = load(request.spec)
    found_schemes = schemes(contract)
    ops = operations(contract)
    out = (request.out or request.root / "tests" / "api").resolve()
    _refuse_foreign(out)
    builder = Builder(contract, {k: v for k, v in _declared(contract).items()})
    clients, base_url = _clients(request, found_schemes)
    result = Result(out=out, written=False, files={}, operations=len(ops), cases=0, flows=0)
    if any(op.secured for op in ops) and not any(
        os.environ.get(v[3]) for v in found_schemes.values()
    ):
        names = ", ".join(sorted({v[3] for v in found_schemes.values()})) or "none declared"
        result.warnings.append(f"secured operations were called without credentials (set {names})")
    tables: dict[str, list[tuple[str, str, str, list[Case]]]] = {}
    dropped_by_group: dict[str, list[tuple[str, str]]] = {}
    builder.learn(ops)
    try:
        for op in ops:
            cases = builder.attach(
                op,
                [
                    *builder.valid_cases(op),
                    *builder.invalid_cases(op),
                    *builder.credential_cases(op),
                ],
            )
            kept = _keep(clients, contract, op, cases, result, dropped_by_group)
            for table in _tables(kept):
                tables.setdefault(op.group, []).append((op.name, op.op_id, table[0].kind, table))
        kept_flows: list[Flow] = []
        for flow in flows(builder, ops):
            first = run_flow(clients, contract, flow)
            second = run_flow(clients, contract, flow)
            if not _twice(first, second):
                why = f"verdicts differed: {first.verdict} then {second.verdict}"
                result.dropped.append((flow.name, why))
                dropped_by_group.setdefault(flow.group, []).append((flow.name, why))
                continue
            if flow.name.startswith("test_link_") and _unreached(contract, flow, first):
                why = f"its source answered {first.verdict[-1][0]}: no values to follow it with"
                result.dropped.append((flow.name, why))
                dropped_by_group.setdefault(flow.group, []).append((flow.name, why))
                continue
            kept_flows.append(flow)
            if first.problems:
                result.failing.append((flow.name, "; ".join(first.problems)))
        result.flows = len(kept_flows)
        if request.explore:
            from ._explore import explore

            remaining = max(request.budget - (time.monotonic() - started), 1.0)
            skipped: list[str] = []
            known: dict[str, set[tuple[str, str]]] = {}
            for entries in tables.values():
                for op_name, _op_id, _kind, cases in entries:
                    known.setdefault(op_name, set()).update((c.url, repr(c.options)) for c in cases)
            found = explore(
                clients, contract, builder, ops, remaining, request.seed, skipped, known
            )
            result.warnings += [f"--explore skipped {why}" for why in skipped]
            for op, cases in found:
                tables.setdefault(op.group, []).append((op.name, op.op_id, "explored", cases))
                result.explored += len(cases)
                result.failing += [(f"{c.op} [{c.label}]", "found by --explore") for c in cases]
    finally:
        for client in clients.values():
            client.close()
    command = _regenerate_command(request, out)
    spec_relative = os.path.relpath(request.spec.resolve(), out)
    title = f"{contract.spec.get('info', {}).get('title', 'the API')} " + str(
        contract.spec.get("info", {}).get("version", "")
    )
    title = title.strip()
    result.files["conftest.py"] = conftest(
        api_title=title,
        command=command,
        spec_relative=spec_relative,
        base_url=request.base_url or APP_BASE_URL,
        app=request.app,
        app_dir=os.path.relpath(request.root.resolve(), out),
        schemes=found_schemes,
    )
    groups = list(dict.fromkeys([*tables, *(f.group for f in kept_flows), *dropped_by_group]))
    for group in groups:
        result.files[f"test_api_{identifier(group)}.py"] = test_file(
            group,
            title,
            command,
            request.spec.name,
            tables.get(group, []),
            [f for f in kept_flows if f.group == group],
            dropped_by_group.get(group, []),
        )
    if not request.dry_run:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in result.files.items():
            (out / name).write_text(text, encoding="utf-8")
        result.written = True
    del base_url
    result.seconds = time.monotonic() - started
    return result


def _unreached(contract: Contract, flow: Flow, outcome: Outcome) -> bool:
    """A link whose source call got a documented answer of the server's state (a 404 for
    an id made up), not the response the link starts from: nothing to follow, no finding."""
    source = next(i for i, step in enumerate(flow.steps) if step.var == "source")
    if len(outcome.verdict) != source + 1:
        return False
    status = outcome.verdict[source][0]
    _, op = contract.operation(flow.steps[source].op)
    documented = contract.documented(op.get("responses", {}), status) is not None
    return 400 <= status < 500 and status not in (400, 422) and documented


def _tables(cases: list[Case]) -> list[list[Case]]:
    """One parametrize table per kind and setup, in the order the cases came."""
    tables: dict[tuple[str, tuple[str, ...]], list[Case]] = {}
    for case in cases:
        made = tuple(name for step in case.setup for name in step.save)
        tables.setdefault((case.kind, made), []).append(case)
    return list(tables.values())


def _declared(contract: Contract) -> dict[str, Any]:
    declared = (contract.spec.get("components") or {}).get("securitySchemes") or {}
    return {name: contract.resolve(ref) for name, ref in declared.items()}


def _keep(
    clients: dict[bool, httpx.Client],
    contract: Contract,
    op: Operation,
    cases: list[Case],
    result: Result,
    dropped: dict[str, list[tuple[str, str]]],
) -> list[Case]:
    kept = []
    for case in cases:
        first = send_case(clients, contract, case)
        second = send_case(clients, contract, case)
        if not _twice(first, second):
            why = f"answered {first.verdict[0][0]} then {second.verdict[0][0]}"
            result.dropped.append((f"{case.op} [{case.label}]", why))
            dropped.setdefault(op.group, []).append((f"{case.op} [{case.label}]", why))
            continue
        kept.append(case)
        result.cases += 1
        if first.problems:
            result.failing.append((f"{case.op} [{case.label}]", "; ".join(first.problems)))
    return kept


def _regenerate_command(request: Request, out: Path) -> str:
    def shown(path: Path) -> str:
        try:
            return str(path.resolve().relative_to(request.root.resolve()))
        except ValueError:
            return str(path.resolve())

    words = ["aqe", "generate", "api", shown(request.spec)]
    words += ["--app", request.app] if request.app else ["--base-url", str(request.base_url)]
    words += ["--out", shown(out)]
    if request.explore:
        words += ["--explore", "--budget", f"{request.budget:g}"]
    return " ".join(shlex.quote(w) for w in words)


def _refuse_foreign(out: Path) -> None:
    """Never overwrite a file aqe did not write."""
    for name in ("conftest.py",):
        path = out / name
        if (
            path.exists()
            and MARKER not in path.read_text(encoding="utf-8", errors="replace")[:2000]
        ):
            raise UsageError(
                f"{path} exists and was not written by aqe generate api: choose another --out"
            )
