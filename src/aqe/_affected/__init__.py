"""Run what a change affects: per-test dependency maps, ``--affected`` and ``--changed``.

Why a package of its own: selection sits between the command line and the engine.
It reads git and the history, decides which tests run and why, and hands the engine
only a pytest plugin (``_filter``, loaded with ``-p``) and, when recording, a second
one (``_recorder``) that workers load: the engine itself knows nothing of it.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The JSON file holding the run's selection (``_select.Choice``), set by ``aqe run``.
CHOICE_ENV = "_AQE_SELECTION"


def left_out() -> dict[str, str]:
    """The tests this run's selection left out, with why (empty without one): the
    reports name them, so a deselected test is never silently absent."""
    path = os.environ.get(CHOICE_ENV)
    if not path:
        return {}
    from ._select import Choice

    try:
        return dict(Choice.from_json(Path(path).read_text(encoding="utf-8")).left_out)
    except (OSError, ValueError, KeyError):
        return {}
