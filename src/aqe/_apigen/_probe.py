"""Send every case twice; keep a case only when both answers give the same verdict.

A verdict is (status, problems found): a create answers a new id each time, so bodies are
not compared, but whether the written test would pass or fail is. Cases whose verdicts
differ are dropped and reported, as ``aqe generate`` drops tests that are not green twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from ._cases import Case, Flow, Step
from ._contract import Checks, Contract, differing_fields, gone_problems

Verdict = tuple[tuple[int, bool], ...]


@dataclass(frozen=True)
class Outcome:
    """A case's verdict; ``problems`` of the first run say why it fails, if it does."""

    verdict: Verdict
    problems: tuple[str, ...]


def send_case(clients: dict[bool, httpx.Client], contract: Contract, case: Case) -> Outcome:
    """The case as its test runs it: its setup's calls first, then the request."""
    saved: dict[str, Any] = {}
    if case.setup:
        made = run_flow(clients, contract, Flow("setup", "", "", case.setup), saved)
        if made.problems:
            return Outcome(made.verdict, tuple(f"setup: {p}" for p in made.problems))
    client = clients[case.kind != "credentials"]
    try:
        response = client.request(
            case.op.split(" ", 1)[0],
            _substitute(case.url, saved),
            **_substitute(case.options, saved),
        )
    except Exception as exc:  # a network fault, or an in-process app that raised
        return Outcome(((0, True),), (f"{type(exc).__name__}: {exc}",))
    found = contract.problems(response, case.op, case.expect)
    return Outcome(((response.status_code, bool(found)),), tuple(found))


def _substitute(value: Any, saved: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = re.fullmatch(r"\{(\w+)\}", value)
        if whole and whole.group(1) in saved:
            return saved[whole.group(1)]
        return re.sub(r"\{(\w+)\}", lambda m: str(saved.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: _substitute(v, saved) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, saved) for v in value]
    return value


def _save(step: Step, response: httpx.Response, saved: dict[str, Any]) -> str | None:
    for name, (where, keys) in step.save.items():
        try:
            if where == "header":
                saved[name] = response.headers[keys[0]]
                continue
            value: Any = response.json()
            for key in keys:
                value = value[int(key)] if isinstance(value, list) else value[key]
            saved[name] = value
        except (KeyError, IndexError, ValueError, TypeError):
            return f"{step.op} answered no {'/'.join(keys)} to go on with"
    return None


def run_flow(
    clients: dict[bool, httpx.Client],
    contract: Contract,
    flow: Flow,
    saved: dict[str, Any] | None = None,
) -> Outcome:
    """The steps in order, as the written test runs them; stops at the first failure."""
    saved = {} if saved is None else saved
    verdict: list[tuple[int, bool]] = []
    for step in flow.steps:
        client = clients[not step.anonymous]
        try:
            response = client.request(
                step.op.split(" ", 1)[0],
                _substitute(step.url, saved),
                **_substitute(step.options, saved),
            )
        except Exception as exc:  # a network fault, or an in-process app that raised
            return Outcome((*verdict, (0, True)), (f"{type(exc).__name__}: {exc}",))
        if step.expect == "gone":
            found = gone_problems(contract, response, step.op)
        else:
            found = contract.problems(response, step.op, step.expect)
        if not found and step.same_as is not None:
            try:
                found = differing_fields(_substitute(step.same_as, saved), response.json())
            except ValueError:
                found = ["the read is not JSON"]
        if not found:
            missing = _save(step, response, saved)
            found = [missing] if missing else []
        verdict.append((response.status_code, bool(found)))
        if found:
            return Outcome(tuple(verdict), (f"{step.var}: " + "; ".join(found),))
    return Outcome(tuple(verdict), ())


def twice(first: Outcome, second: Outcome) -> bool:
    return first.verdict == second.verdict


__all__ = ["Checks", "Outcome", "run_flow", "send_case", "twice"]
