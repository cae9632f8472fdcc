"""A pytest plugin for ``aqe detect-flaky``: each test's outcome, written as JSON.

Loaded with ``-p aqe._knowledge._record`` in the plain pytest processes that
detect-flaky starts (it needs tests to run in exactly the order it gives, which
pytest does for node ids on its command line). The file to write is named by the
``_AQE_RECORD_TO`` environment variable.
"""

from __future__ import annotations

import json
import os
from typing import Any

ENV = "_AQE_RECORD_TO"

_outcomes: dict[str, str] = {}


def pytest_runtest_logreport(report: Any) -> None:
    known = _outcomes.get(report.nodeid)
    if report.failed:
        outcome = "failed" if report.when == "call" else "error"
        if known not in ("failed", "error"):
            _outcomes[report.nodeid] = outcome
    elif report.skipped and known is None:
        _outcomes[report.nodeid] = "xfailed" if hasattr(report, "wasxfail") else "skipped"
    elif report.when == "call" and known is None:
        _outcomes[report.nodeid] = "passed"


def pytest_sessionfinish() -> None:
    path = os.environ.get(ENV)
    if path:
        with open(path, "w", encoding="utf-8") as stream:
            json.dump(_outcomes, stream)
