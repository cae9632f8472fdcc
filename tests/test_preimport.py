"""Which imports a worker repeats for the test modules it does not collect."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from aqe._engine._preimport import imports_by_file, preimport

PATTERNS = ["test_*.py", "*_test.py"]


def _imports(tmp_path: Path, source: str) -> list[tuple[str, tuple[str, ...]]]:
    (tmp_path / "tests").mkdir()
    path = tmp_path / "tests" / "test_x.py"
    path.write_text(textwrap.dedent(source))
    return imports_by_file([path], PATTERNS)[0]


def test_module_level_imports_in_order_without_repeats(tmp_path: Path) -> None:
    found = _imports(
        tmp_path,
        """
        from __future__ import annotations
        import os, json as j  # a comment
        import xml.etree.ElementTree as ET
        from collections import (
            OrderedDict,  # why
            deque as dq,
        )
        from typing import TYPE_CHECKING
        import os
        if TYPE_CHECKING:
            import decimal
        try:
            import fractions
        except ImportError:
            pass
        def helper():
            import statistics
        from . import sibling
        from .pkg import thing
        from tests import test_helpers
        from tests.helpers import make
        from lib import test_data, real
        import conftest
        from helpers_test import x
        \"\"\"
        Docstrings are not code,
        but a line like this one below is rare enough to accept:
        \"\"\"
        """,
    )
    assert found == [
        ("os", ()),
        ("json", ()),
        ("xml.etree.ElementTree", ()),
        ("collections", ("OrderedDict", "deque")),
        ("typing", ("TYPE_CHECKING",)),
        ("lib", ("real",)),
    ]


def test_preimport_imports_submodules_named_in_from_imports(tmp_path: Path) -> None:
    package = tmp_path / "aqe_pre_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sub.py").write_text("X = 1\n")
    (package / "broken.py").write_text("raise RuntimeError('import fails')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        preimport([("aqe_pre_pkg", ("broken",)), ("aqe_pre_pkg", ("sub",)), ("nope_nope", ())])
        assert sys.modules["aqe_pre_pkg"].sub.X == 1  # type: ignore[attr-defined]
        assert "aqe_pre_pkg.broken" not in sys.modules
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("aqe_pre_pkg", "aqe_pre_pkg.sub"):
            sys.modules.pop(name, None)
