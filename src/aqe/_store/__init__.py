"""The run history: an embedded SQLite database under ``<project>/.aqe/``, or a
PostgreSQL database shared by many machines (``history = "postgresql://..."``).

Kept behind this package so the engine and reports depend on a small API
(the :class:`Store` protocol and its value types) rather than on SQL;
:class:`HistoryStore` is the SQLite store that satisfies it.
"""

from __future__ import annotations

from aqe._store._dump import RunDump as RunDump
from aqe._store._protocol import Store as Store
from aqe._store._select import masked as masked
from aqe._store._select import open_existing as open_existing
from aqe._store._select import open_history as open_history
from aqe._store._sqlite import DurationEstimate as DurationEstimate
from aqe._store._sqlite import HistoryRow as HistoryRow
from aqe._store._sqlite import HistoryStore as HistoryStore
from aqe._store._sqlite import RunRow as RunRow
from aqe._store._sqlite import SimilarRow as SimilarRow

__all__ = [
    "DurationEstimate",
    "HistoryRow",
    "HistoryStore",
    "RunDump",
    "RunRow",
    "SimilarRow",
    "Store",
    "masked",
    "open_existing",
    "open_history",
]
