"""The ``generate_tests`` and ``get_generated_text`` tools.

Generation runs as an ``aqe generate --json`` child in its own session (the server runs
threads; the generator imports and calls the user's code), killed with its group when the
call is cancelled. It is a dry run unless the agent asks to write, and then only under the
project's ``tests/`` folder. The file's text is often longer than one answer, so it is kept
under ``.aqe/mcp/generated`` and read back in pages.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from .._paths import aqe_directory
from .._reporting.digest import clean
from . import _schemas as s

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from ._fleet import Fleet

#: Longest generation budget: the call must end before hosts give up (about 60 s).
MAX_BUDGET = 25.0
_ID = "0123456789abcdef"


def _results(root: Path) -> Path:
    directory = aqe_directory(root) / "mcp" / "generated"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _module_argument(fleet: Fleet, module: str) -> str:
    if module.endswith(".py") or "/" in module:
        return fleet.guard.path(module, "module")
    if module.startswith("-") or not all(part.isidentifier() for part in module.split(".")):
        raise ToolError(f"module {module[:80]!r} is neither a dotted module name nor a path")
    return module


def _out_argument(fleet: Fleet, out: str) -> str:
    if out.startswith("-") or any(ord(ch) < 32 for ch in out):
        raise ToolError(f"out {out[:80]!r} is not a plain path")
    tests = (fleet.root / "tests").resolve()
    full = (fleet.root / out).resolve()
    if tests not in full.parents:
        raise ToolError(f"out {out[:200]!r} is not under the project's tests/ folder")
    return str(full.relative_to(fleet.root))


async def _run(command: list[str], cwd: Path, timeout: float) -> tuple[int, str, str]:
    process = await anyio.open_process(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out: list[bytes] = []
    err: list[bytes] = []

    async def drain(stream: Any, into: list[bytes]) -> None:
        async for chunk in stream:
            into.append(chunk)

    try:
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as group:
                group.start_soon(drain, process.stdout, out)
                group.start_soon(drain, process.stderr, err)
            await process.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with anyio.CancelScope(shield=True):
            await process.wait()
        raise
    code = process.returncode if process.returncode is not None else -1
    return code, b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace")


@dataclass(frozen=True, slots=True)
class Generated:
    """What ``aqe generate --json`` reported, read once (and kept for paging)."""

    module: str
    written: bool
    #: The file (absolute), and relative to the project root.
    out: str
    out_relative: str
    tests: int
    properties: int
    line_percent: float | None
    branch_percent: float | None
    #: (test, why) of each test that was dropped.
    dropped: tuple[tuple[str, str], ...]
    text: str

    @classmethod
    def from_json(cls, data: dict[str, Any], root: Path) -> Generated:
        coverage = data.get("coverage") or {}
        out = str(data["out"])
        relative = data.get("out_relative") or str(Path(out).resolve().relative_to(root))
        return cls(
            module=data["module"],
            written=data["written"],
            out=out,
            out_relative=relative,
            tests=data["tests"],
            properties=data["properties"],
            line_percent=coverage.get("line_percent"),
            branch_percent=coverage.get("branch_percent"),
            dropped=tuple((str(d["test"]), str(d["why"])) for d in data["dropped"]),
            text=data["text"],
        )

    def to_json(self) -> dict[str, object]:
        """The shape ``from_json`` reads (``aqe generate --json``'s, plus ``out_relative``)."""
        return {
            "module": self.module,
            "written": self.written,
            "out": self.out,
            "out_relative": self.out_relative,
            "tests": self.tests,
            "properties": self.properties,
            "coverage": {"line_percent": self.line_percent, "branch_percent": self.branch_percent},
            "dropped": [{"test": test, "why": why} for test, why in self.dropped],
            "text": self.text,
        }


def _page(result_id: str, found: Generated, offset: int, budget: int) -> s.GeneratedTests:
    text = found.text
    if offset > len(text):
        raise ToolError(f"text_offset {offset} is past the end ({len(text)} characters)")
    answer = s.GeneratedTests(
        result_id=result_id,
        module=found.module,
        written=found.written,
        out=found.out_relative,
        tests=found.tests,
        properties=found.properties,
        line_percent=found.line_percent,
        branch_percent=found.branch_percent,
        dropped=[s.DroppedTest(test=clean(t, 200), why=why) for t, why in found.dropped[:10]],
        dropped_total=len(found.dropped),
        text="",
        text_offset=offset,
        text_total=len(text),
        next_offset=None,
    )
    room = budget - len(answer.model_dump_json().encode()) - 400
    end = offset
    used = 0
    while end < len(text) and used < room:
        used += len(json.dumps(text[end]).encode()) - 2
        end += 1
    answer.text = text[offset:end]
    answer.next_offset = end if end < len(text) else None
    return answer


async def generate_tests(
    fleet: Fleet,
    module: str,
    function: str | None = None,
    write: bool = False,
    out: str | None = None,
    overwrite: bool = False,
    budget_seconds: float = 15.0,
) -> tuple[s.GeneratedTests, str]:
    command = [sys.executable, "-m", "aqe", "generate", _module_argument(fleet, module)]
    command += ["--json", "--budget", str(budget_seconds)]
    if function is not None:
        if not all(part.isidentifier() for part in function.split(".")):
            raise ToolError(f"function {function[:80]!r} is not a name or Class.method")
        command += ["--function", function]
    if write:
        if out is not None:
            command += ["--out", _out_argument(fleet, out)]
        if overwrite:
            command.append("--force")
    else:
        command.append("--dry-run")
        if out is not None:
            command += ["--out", _out_argument(fleet, out)]
    from .._generate._process import WALL_FACTOR  # the package loads only when used

    # The search counts CPU time and ends itself at WALL_FACTOR x its budget in wall
    # time; this is the last resort past that and the two verification runs.
    limit = budget_seconds * WALL_FACTOR + 60
    try:
        code, stdout, stderr = await _run(command, fleet.root, limit)
    except TimeoutError:
        raise ToolError(f"aqe generate ran past {limit:.0f} s and was stopped") from None
    if code != 0:
        line = next(
            (ln for ln in reversed(stderr.splitlines()) if ln.startswith("aqe: error:")),
            f"aqe generate exited {code}",
        )
        raise ToolError(clean(line.removeprefix("aqe: error: "), 400))
    data = json.loads(stdout)
    if write and not str(data["out"]).startswith(str((fleet.root / "tests").resolve())):
        raise ToolError("aqe generate wrote outside tests/: refusing to report it as done")
    found = Generated.from_json(data, fleet.root)
    result_id = uuid.uuid4().hex[:12]
    (_results(fleet.root) / f"{result_id}.json").write_text(json.dumps(found.to_json()))
    answer = _page(result_id, found, 0, fleet.budget)
    cov = f", {answer.branch_percent:.0f}% branches" if answer.branch_percent is not None else ""
    verb = "wrote" if answer.written else "generated (dry run)"
    text = f"{verb} {answer.tests} tests for {answer.module}{cov}, {answer.dropped_total} dropped"
    return answer, text


def get_generated_text(
    fleet: Fleet, result_id: str, text_offset: int = 0
) -> tuple[s.GeneratedTests, str]:
    if any(ch not in _ID for ch in result_id):
        raise ToolError(f"result_id {result_id!r} is not one this server returned")
    path = _results(fleet.root) / f"{result_id}.json"
    if not path.exists():
        raise ToolError(f"no generate_tests result {result_id!r} (expired or unknown)")
    found = Generated.from_json(json.loads(path.read_text()), fleet.root)
    answer = _page(result_id, found, text_offset, fleet.budget)
    text = f"characters {text_offset}-{text_offset + len(answer.text)} of {answer.text_total}"
    return answer, text


def register(server: MCPServer, fleet: Fleet) -> None:
    """Publish the generation tools on ``server`` (under the plain functions' names)."""

    @server.tool(
        name="generate_tests",
        annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False),
    )
    async def generate_tests_tool(
        module: Annotated[
            str, Field(max_length=300, description="Dotted module name or a .py path.")
        ],
        function: Annotated[
            str | None, Field(max_length=200, description="Only this function or Class.method.")
        ] = None,
        write: Annotated[
            bool, Field(description="Write the file (under tests/); default: dry run.")
        ] = False,
        out: Annotated[
            str | None, Field(max_length=300, description="File under tests/ to write.")
        ] = None,
        overwrite: Annotated[bool, Field(description="Replace an existing file.")] = False,
        budget_seconds: Annotated[float, Field(ge=1, le=MAX_BUDGET)] = 15.0,
    ) -> Annotated[CallToolResult, s.GeneratedTests]:
        """Write pytest unit tests for a module of this project; keep only tests that pass
        in fresh processes under four hash seeds. Returns the file's text (paged), coverage
        and what was dropped."""
        answer = await generate_tests(
            fleet, module, function, write, out, overwrite, budget_seconds
        )
        return fleet.answer(*answer)

    @server.tool(
        name="get_generated_text",
        annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def get_generated_text_tool(
        result_id: Annotated[str, Field(min_length=12, max_length=12)],
        text_offset: Annotated[int, Field(ge=0, le=10_000_000)] = 0,
    ) -> Annotated[CallToolResult, s.GeneratedTests]:
        """The next page of a generate_tests result's file text."""
        return fleet.answer(*get_generated_text(fleet, result_id, text_offset))
