"""aqe: agentic quality engineering for Python test suites.

The public Python API (``docs/api.md``): run a suite and get a typed result, and
read what the project's history knows (past runs, one test's past, flaky verdicts,
failure causes). Every name in ``__all__`` is stable within a major version;
everything else (``aqe._*``) may change in any release.

Names load on first use (``__getattr__``), so ``import aqe`` imports neither
pytest, click nor sqlite3: a script that only reads a report pays for nothing else.
"""

from importlib import import_module as _import_module

from ._version import __version__ as __version__

# ``typing`` itself costs more than the rest of ``import aqe``; type checkers read
# a module-level ``TYPE_CHECKING`` as typing's.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from ._api._read import PastAttempt as PastAttempt
    from ._api._read import failure_causes as failure_causes
    from ._api._read import flaky_tests as flaky_tests
    from ._api._read import history as history
    from ._api._read import test_history as test_history
    from ._api._run import run as run
    from ._api._types import CollectionError as CollectionError
    from ._api._types import RunResult as RunResult
    from ._api._types import RunSummary as RunSummary
    from ._api._types import TestAttempt as TestAttempt
    from ._exceptions import AqeError as AqeError
    from ._knowledge._flaky import FlakyVerdict as FlakyVerdict
    from ._knowledge._reports import Cause as Cause
    from ._knowledge._reports import FailureCauses as FailureCauses
    from ._knowledge._reports import FailureExample as FailureExample

__all__ = [
    "AqeError",
    "Cause",
    "CollectionError",
    "FailureCauses",
    "FailureExample",
    "FlakyVerdict",
    "PastAttempt",
    "RunResult",
    "RunSummary",
    "TestAttempt",
    "__version__",
    "failure_causes",
    "flaky_tests",
    "history",
    "run",
    "test_history",
]

#: Where each public name lives (private modules; only this mapping is public).
_HOMES = {
    "AqeError": "._exceptions",
    "Cause": "._knowledge._reports",
    "CollectionError": "._api._types",
    "FailureCauses": "._knowledge._reports",
    "FailureExample": "._knowledge._reports",
    "FlakyVerdict": "._knowledge._flaky",
    "PastAttempt": "._api._read",
    "RunResult": "._api._types",
    "RunSummary": "._api._types",
    "TestAttempt": "._api._types",
    "failure_causes": "._api._read",
    "flaky_tests": "._api._read",
    "history": "._api._read",
    "run": "._api._run",
    "test_history": "._api._read",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'aqe' has no attribute {name!r}")
    value: object = getattr(_import_module(home, __name__), name)
    globals()[name] = value  # the next look-up is a plain one
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
