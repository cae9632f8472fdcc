"""The typed answers of the knowledge commands, and their one conversion to JSON.

``aqe failures``, ``aqe failures similar``, the MCP server and the Python API all
read these; ``to_json`` is the only place that knows the ``--json`` documents'
shapes (``docs/knowledge.md``), key order included.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FAILURES_SCHEMA",
    "SIMILAR_SCHEMA",
    "Cause",
    "FailureCauses",
    "FailureExample",
    "SimilarFailure",
    "SimilarFailures",
]

#: ``aqe failures --json`` and ``aqe failures similar --json`` schema versions.
FAILURES_SCHEMA = ("aqe-failures", 1)
SIMILAR_SCHEMA = ("aqe-similar-failures", 1)

JSON = dict[str, object]


@dataclass(frozen=True, slots=True)
class FailureExample:
    """One failure of a cause, cleaned for display: its first message line and the
    project's frames of its traceback."""

    nodeid: str
    message: str
    traceback: str

    def to_json(self) -> JSON:
        return {"nodeid": self.nodeid, "message": self.message, "traceback": self.traceback}


@dataclass(frozen=True, slots=True)
class Cause:
    """Failures blamed on one root cause (a project function, or an exception type
    and frame when no project function is on the path)."""

    #: Stable id of the cause, as ``aqe failures`` shows it.
    key: str
    cause: str
    count: int
    error_types: tuple[str, ...]
    tests: tuple[str, ...]
    example: FailureExample
    #: Other causes merged in: their tests started failing together before.
    also: tuple[str, ...] = ()

    def to_json(self) -> JSON:
        return {
            "key": self.key,
            "cause": self.cause,
            "count": self.count,
            "error_types": list(self.error_types),
            "tests": list(self.tests),
            "example": self.example.to_json(),
            "also": list(self.also),
        }


@dataclass(frozen=True, slots=True)
class FailureCauses:
    """A run's failures grouped by cause, largest group first."""

    run_id: str
    #: Tests whose final attempt failed.
    failures: int
    causes: tuple[Cause, ...]

    def to_json(self) -> JSON:
        return {
            "schema": FAILURES_SCHEMA[0],
            "version": FAILURES_SCHEMA[1],
            "run_id": self.run_id,
            "failures": self.failures,
            "clusters": [cause.to_json() for cause in self.causes],
        }


@dataclass(frozen=True, slots=True)
class SimilarFailure:
    """A past failure (another run) near the one asked about."""

    run_id: str
    nodeid: str
    attempt: int
    cause: str
    same_cause: bool
    #: BM25 relevance: higher is closer.
    score: float
    #: When its run started (ISO 8601, UTC).
    start: str | None
    git_commit: str | None

    def to_json(self) -> JSON:
        return {
            "run_id": self.run_id,
            "nodeid": self.nodeid,
            "attempt": self.attempt,
            "cause": self.cause,
            "same_cause": self.same_cause,
            "score": self.score,
            "start": self.start,
            "git_commit": self.git_commit,
        }


@dataclass(frozen=True, slots=True)
class SimilarFailures:
    """The past failures nearest to ``nodeid``'s failure in ``run_id``, best first."""

    run_id: str
    nodeid: str
    cause: str
    similar: tuple[SimilarFailure, ...]

    def to_json(self) -> JSON:
        return {
            "schema": SIMILAR_SCHEMA[0],
            "version": SIMILAR_SCHEMA[1],
            "run_id": self.run_id,
            "nodeid": self.nodeid,
            "cause": self.cause,
            "similar": [row.to_json() for row in self.similar],
        }
