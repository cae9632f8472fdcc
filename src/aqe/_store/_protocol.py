"""The history store's protocol: what the runner, the knowledge commands and MCP call.

SQLite (``_sqlite.HistoryStore``) is the one built in; another database plugs in
under the ``aqe.stores`` entry-point group, found by its URL's scheme
(``postgresql://...``; ``_postgres.PostgresStore`` is aqe's own). A store is made with
the URL (or path) given; ``_select.open_existing`` is how read-only commands open a
history without creating one. Public as :class:`aqe.plugins.HistoryStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Protocol, runtime_checkable

from aqe._model import RunRecord, TestResult
from aqe._store._dump import RunDump
from aqe._store._sqlite import DurationEstimate, HistoryRow, RunRow, SimilarRow


@runtime_checkable
class Store(Protocol):
    """The run history: what the runner, the knowledge commands and MCP call on it.
    Registered under ``aqe.stores`` by URL scheme; made with the URL (or path) given."""

    def close(self) -> None: ...

    def __enter__(self) -> Store: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    # writing: one run's lifecycle
    def begin_run(self, run: RunRecord) -> None: ...

    def add_results(self, run_id: str, results: Sequence[TestResult]) -> None: ...

    def add_failure_texts(
        self, run_id: str, rows: Sequence[tuple[str, int, str, str, str]]
    ) -> None:
        """(test id, attempt, cause key, cause, text) of failures, for similarity search."""

    def add_collect_times(self, run_id: str, times: Mapping[str, float]) -> None: ...

    def finish_run(self, run: RunRecord) -> None: ...

    # reading
    def estimates(
        self, nodeids: Iterable[str] | None = None, window: int = 5
    ) -> dict[str, DurationEstimate]: ...

    def collect_estimates(self, window: int = 5) -> dict[str, float]: ...

    def recent_runs(self, limit: int = 20) -> list[RunRow]: ...

    def results_for_run(self, run_id: str) -> list[TestResult]: ...

    def test_history(
        self, nodeid: str, limit: int = 20, offset: int = 0
    ) -> tuple[list[HistoryRow], int, dict[str, int]]: ...

    def known_nodeids(self) -> set[str]: ...

    def attempts_by_run(
        self, window: int
    ) -> tuple[list[RunRow], dict[str, dict[str, list[str]]]]: ...

    def has_failure_index(self) -> bool: ...

    def similar_failures(
        self, words: Sequence[str], exclude_run: str | None, limit: int
    ) -> list[SimilarRow]: ...

    # moving a history between stores (aqe history export/import)
    def export_runs(self) -> Iterator[RunDump]:
        """Every run, oldest first, with its results, collection times and failures."""

    def import_run(self, dump: RunDump) -> bool:
        """Add one run in one transaction; False (and no change) if its id is present."""
