"""The lines the coordinator writes when a run's loop ended: what ran, what ran alone,
what was quarantined. Pure text from the run's record, so they are tested alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._model import TestResult, tier_figures
from .._verdicts import memory_figures


def accounting(ids: int, deselected: int, ran: int, stopped: bool) -> str:
    """How many ids pytest's collection gave and how many ran, always: a run never
    covers fewer tests than it says without saying so."""
    text = f"aqe: collected {ids} tests"
    if deselected:
        text += f" ({deselected} deselected)"
    text += f", ran {ran}"
    if missing := ids - ran:
        why = "the run stopped early" if stopped else "see the errors above"
        text += f"; {missing} did not run ({why})"
    return text


def ran_ids(results: Sequence[TestResult]) -> set[str]:
    """Tests that had an attempt that ran (not one recorded as "not run")."""
    return {r.nodeid for r in results if not (r.message or "").startswith("not run")}


def quarantine(failures: Sequence[str]) -> list[str]:
    if not failures:
        return []
    shown = ", ".join(failures[:10])
    more = len(failures) - 10
    return [
        f"aqe: {len(failures)} quarantined tests failed (recorded; "
        f"they do not fail the run): {shown}" + (f" and {more} more" if more > 0 else "")
    ]


def _lost_with_machine(results: Sequence[TestResult], nodeid: str) -> str:
    """Why every failed attempt of ``nodeid`` was lost with its worker's machine (a
    remote backend's ``cause``: "was lost with its Ray node ..."), else ''."""
    failed = [r for r in results if r.nodeid == nodeid and r.outcome not in ("passed", "flaky")]
    why = [(r.message or "").partition(" was lost with its ")[2] for r in failed]
    if not failed or not all(why):
        return ""
    node = why[0].split("): ", 1)[0] + ")" if "): " in why[0] else "machine"
    return f"its first worker was lost with its {node}, not failed by the test"


def isolation(
    results: list[TestResult],
    passed_alone: Sequence[tuple[str, str]],
    memory_breaches: Mapping[str, Sequence[tuple[str, float]]],
) -> list[str]:
    """Tier figures, and tests that passed only alone (they likely depend on state
    other tests leave behind) or went past the memory limit only among others."""
    if all(result.tier == "hot" for result in results):
        return []  # the common case: no figures of every attempt (sorts, scans)
    tiers = tier_figures(results)
    parts = [
        f"{tier} {fig['tests']:g} tests, {fig['failures']:g} failed, "
        f"{fig['fallbacks']:g} sent on, median {fig['median_seconds']:.2f}s, "
        f"{fig['workers']:g} workers"
        for tier, fig in tiers.items()
    ]
    lines = ["aqe: tiers: " + "; ".join(parts)]
    for nodeid, tier in passed_alone:
        if lost := _lost_with_machine(results, nodeid):
            # Its worker's machine went away under it: no sign of shared state.
            lines.append(f"aqe: {nodeid} ran again ({tier} tier) and passed: {lost}")
            continue
        lines.append(
            f"aqe: {nodeid} passed only alone ({tier} tier): it may depend on state "
            "other tests leave behind"
        )
    last_tier = {result.nodeid: result.tier for result in results}
    for nodeid, breaches in memory_breaches.items():
        if last_tier.get(nodeid) in {tier for tier, _ in breaches}:
            continue  # the verdict already says it, or it never ran alone
        figures = memory_figures(breaches)
        if len(breaches) == 1:
            lines.append(
                f"aqe: {nodeid} went past the memory limit only among other tests "
                f"({figures}); alone it stayed under: memory other tests kept was "
                "still in its worker"
            )
        else:
            lines.append(
                f"aqe: {nodeid} went past the memory limit on forked workers ({figures}) "
                f"but not in a fresh interpreter ({last_tier[nodeid]} tier)"
            )
    return lines
