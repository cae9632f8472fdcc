"""aqe: agentic quality engineering for Python test suites."""

from __future__ import annotations

__version__ = "0.1.0"
