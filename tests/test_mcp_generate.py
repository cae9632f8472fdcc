"""``generate_tests`` and ``get_generated_text`` through the MCP SDK's own client.

The generator really runs (an ``aqe generate`` child) on a module written into a copy
of ``tests/fixtures/mcp_project``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from aqe._mcp._server import build_server

#: Every test here starts processes (see conftest: the fast loop is -m "not e2e").
pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).parent / "fixtures" / "mcp_project"
BUDGET = 8 * 1024

MODULE = '''
"""Small text helpers, long enough that the generated file needs several pages."""

from typing import Literal


class BadWidth(ValueError):
    pass


def pad(text: str, width: int, side: Literal["left", "right"] = "left") -> str:
    if width < 0:
        raise BadWidth(f"width {width} is negative")
    if side == "left":
        return text.rjust(width)
    return text.ljust(width)


def initials(name: str) -> str:
    return "".join(part[0].upper() for part in name.split() if part)


def clamp(value: int, low: int = 0, high: int = 100) -> int:
    if value < low:
        return low
    if value > high:
        return high
    return value
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns(".aqe", "__pycache__"))
    (root / "textkit.py").write_text(MODULE)
    return root


def _call(root: Path, calls: list[tuple[str, dict[str, Any]]]) -> list[CallToolResult]:
    server, _ = build_server(root, budget=BUDGET)

    async def main() -> list[CallToolResult]:
        async with Client(server) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    return anyio.run(main)


def _ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert len(json.dumps(result.structured_content).encode()) <= BUDGET
    return result.structured_content


def _error(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "Traceback" not in text
    return text


def test_a_dry_run_returns_the_file_in_pages_and_writes_nothing(project: Path) -> None:
    (first,) = _call(project, [("generate_tests", {"module": "textkit", "budget_seconds": 4})])
    answer = _ok(first)
    assert answer["written"] is False
    assert answer["tests"] > 0 and answer["branch_percent"] > 50
    assert list((project / "tests").iterdir()) == [project / "tests" / "test_basic.py"]
    text = answer["text"]
    calls = []
    offset = answer["next_offset"]
    while offset is not None:
        calls.append(offset)
        (page,) = _call(
            project,
            [("get_generated_text", {"result_id": answer["result_id"], "text_offset": offset})],
        )
        data = _ok(page)
        text += data["text"]
        offset = data["next_offset"]
    assert len(text) == answer["text_total"]
    assert "pytest.raises(BadWidth" in text and "'right'" in text.replace('"', "'")
    # The text is the whole file: written out, it passes.
    (project / "tests" / "test_textkit_check.py").write_text(text)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_textkit_check.py",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]


def test_writing_happens_only_under_tests_and_bad_arguments_are_refused(project: Path) -> None:
    results = _call(
        project,
        [
            ("generate_tests", {"module": "textkit", "write": True, "budget_seconds": 3}),
            ("generate_tests", {"module": "textkit", "write": True, "out": "../evil.py"}),
            ("generate_tests", {"module": "textkit", "write": True, "out": "textkit_test.py"}),
            ("generate_tests", {"module": "--help"}),
            ("generate_tests", {"module": "../outside.py"}),
            ("generate_tests", {"module": "textkit", "write": True, "budget_seconds": 3}),
            ("get_generated_text", {"result_id": "../../etc/pa"}),
        ],
    )
    written = _ok(results[0])
    assert written["written"] is True and written["out"].startswith("tests/")
    assert (project / written["out"]).exists()
    assert "not under the project's tests/" in _error(results[1])
    assert "not under the project's tests/" in _error(results[2])
    assert "neither a dotted module name" in _error(results[3])
    assert "outside the project root" in _error(results[4])
    assert "exists; pass --force" in _error(results[5])
    assert "not one this server returned" in _error(results[6])
    assert not (project.parent / "evil.py").exists()
