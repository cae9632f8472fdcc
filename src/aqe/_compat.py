"""Every pytest internal aqe uses, in one place: the register of what a pytest release
could break.

aqe imports ``_pytest`` only through this module. Each name says which pytest
versions it was checked on and what stops working if it moves; all were checked on
8.0.0 (the oldest pytest ``pyproject.toml`` allows) and 9.2.0. Names imported inside
functions elsewhere are resolved lazily here too (``__getattr__``), so no module is
imported earlier than before; ``_pytest.subtests`` exists from pytest 9.0 on, and
importing its names raises ImportError before that, as it did where it is used.

Private uses that stay where they are (attributes, not imports), so listed here:

- pytest: ``Session._setupstate`` (``_engine/_worker.py``: teardown of the last
  test's fixtures when a worker stops early; 8.0-9.2), ``Session._collect_one_node``
  (``_engine/_plugin.py``: shallow collection down to files; 8.0-9.2),
  ``Config._parser`` and its ``_anonymous``/``_groups`` (``_adapters/pytest.py``: the
  hint for a pytest option given before ``--``; read with getattr, a miss drops the
  hint), ``TerminalReporter._tw``/``_tw._file``/``_session_start``
  (``_reporting/terminal.py``: aqe's terminal reporter is pytest's subclass),
  ``Config._benchmarksession`` (pytest-benchmark, ``_engine/_identity.py``),
  ``LogXML`` under the stash key ``xml_key`` (below).
- coverage.py: ``Coverage._data``, ``_collector``, ``_warn`` (``_engine/_coverage.py``:
  each worker's data file, switched without a restart; checked on 7.18.0).
- pytest-cov: ``CovPlugin._disabled`` (``_engine/_coverage.py``: the coordinator's own
  plugin does not measure the workers' tests; checked on 7.1.0).
- pytest-django: ``pytest_django.fixtures._get_databases_for_setup``
  (``_engine/_django.py``: which databases a test needs; checked on 4.14.0).
- Frames are recognised by path: ``/_pytest/`` in ``_engine/_limits.py``
  (``trim_stacks``), ``_reporting/digest.py`` and ``_knowledge/_triage.py``; a pytest
  whose package is no longer named ``_pytest`` shows its frames in digests and stacks.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Collection tree types: Item, Collector, File, Node. The engine's plugin, worker,
# coordinator, ordering and pre-import annotate and test with them (all public as
# pytest.Item & co. too). Checked on 8.0.0 and 9.2.0.
from _pytest import nodes

# The compat sentinel for "no value" (``_engine/_preimport.py``: a parametrize
# argument left unset). If it moves, pre-import cannot tell unset from None.
# Checked on 8.0.0 and 9.2.0.
from _pytest.compat import NOTSET

# Report classes: TestReport and CollectReport cross the worker socket and are
# replayed through pytest's hooks; CollectErrorRepr is the longrepr of a collection
# error aqe synthesises (a file that killed its worker). CollectErrorRepr is not
# public: if it moves, synthetic collection errors fail to build. Checked on 8.0.0
# and 9.2.0.
from _pytest.reports import CollectErrorRepr, CollectReport, TestReport

# The terminal reporter aqe's live view subclasses (``_reporting/terminal.py``); public
# as pytest.TerminalReporter, but its private attributes are used (see above).
# Checked on 8.0.0 and 9.2.0.
from _pytest.terminal import TerminalReporter

# unittest.TestCase items (``_engine/_order.py``: such a file is never cut between
# workers, its class fixtures are per class). If it moves, unittest files may be
# split. Checked on 8.0.0 and 9.2.0.
from _pytest.unittest import TestCaseFunction

# The warnings capture around one test (``_engine/_worker.py``: a worker records
# warnings as pytest does per item). If it moves, workers stop reporting warnings.
# Checked on 8.0.0 and 9.2.0.
from _pytest.warnings import catch_warnings_for_item

if TYPE_CHECKING:
    import _pytest.assertion.rewrite as assertion_rewrite
    import _pytest.capture as capture
    from _pytest._io import TerminalWriter
    from _pytest.config import get_config
    from _pytest.junitxml import xml_key
    from _pytest.logging import _LiveLoggingNullHandler as LiveLoggingNullHandler
    from _pytest.subtests import SubtestReport, failed_subtests_key

#: Names imported on first use: (module, attribute; None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    # Builds a config with every installed plugin, for the list of pytest's options
    # (``_adapters/pytest.py``, only on the error path). If it moves, the hint for a
    # pytest option given before ``--`` becomes click's plain message. 8.0.0, 9.2.0.
    "get_config": ("_pytest.config", "get_config"),
    # The stash key junitxml keeps its LogXML under (``_engine/_junitxml.py``,
    # ``_engine/_worker.py``, ``_engine/_coordinator.py``): aqe's Recorder sits there
    # and the user's --junitxml is bridged through it. If it moves, record_property &
    # co. stop reaching aqe's reports. 8.0.0, 9.2.0.
    "xml_key": ("_pytest.junitxml", "xml_key"),
    # The assertion-rewriting import hook (``_engine/_bytecode.py`` wraps its
    # exec_module for aqe's bytecode cache). If it moves, the cache is skipped.
    # 8.0.0, 9.2.0.
    "assertion_rewrite": ("_pytest.assertion.rewrite", None),
    # A terminal writer into /dev/null for a worker's stand-in reporter
    # (``_engine/_worker.py``). 8.0.0 (``_pytest._io`` re-exports it), 9.2.0.
    "TerminalWriter": ("_pytest._io", "TerminalWriter"),
    # Silences live logging inside a worker (``_engine/_worker.py``); if it moves,
    # log_cli output from workers would interleave on the terminal. 8.0.0, 9.2.0.
    "LiveLoggingNullHandler": ("_pytest.logging", "_LiveLoggingNullHandler"),
    # Capture's module, whose TemporaryFile aqe swaps for named files so a dead
    # worker's last output can be read (``_engine/_worker.py``; already tolerant of
    # its absence). 8.0.0, 9.2.0.
    "capture": ("_pytest.capture", None),
    # Built-in subtests (pytest 9.0+; ``_engine/_worker.py`` counts failed subtests
    # into the test's outcome). Before 9.0 importing these raises ImportError, which
    # the worker expects. 9.2.0.
    "SubtestReport": ("_pytest.subtests", "SubtestReport"),
    "failed_subtests_key": ("_pytest.subtests", "failed_subtests_key"),
}

__all__ = [
    "NOTSET",
    "CollectErrorRepr",
    "CollectReport",
    "LiveLoggingNullHandler",
    "SubtestReport",
    "TerminalReporter",
    "TerminalWriter",
    "TestCaseFunction",
    "TestReport",
    "assertion_rewrite",
    "capture",
    "catch_warnings_for_item",
    "failed_subtests_key",
    "get_config",
    "nodes",
    "xml_key",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    loaded = importlib.import_module(module)  # ImportError: not in this pytest
    return loaded if attribute is None else getattr(loaded, attribute)
