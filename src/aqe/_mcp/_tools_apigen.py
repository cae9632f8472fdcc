"""The ``generate_api_tests`` tool: ``aqe generate api`` for an agent.

It runs as an ``aqe generate api --json`` child (the generator imports the user's app with
``app``), killed with its group when the call is cancelled. A dry run unless the agent
asks to write, and then only into a folder under the project's ``tests/``. The answer
lists the files, the cases that break the contract now and those dropped; the files'
text stays in the written folder (or in ``.aqe/mcp/generated`` for a dry run).
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from .._reporting.digest import clean
from ._generate import _out_argument, _results, _run

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from ._fleet import Fleet

MAX_BUDGET = 25.0
_APP = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*(\(\))?)?$")
_URL = re.compile(r"^https?://[^\s]+$")


class ApiCase(BaseModel):
    test: str
    why: str


class GeneratedApiTests(BaseModel):
    written: bool = Field(description="True when the files were written (write=true).")
    out: str = Field(description="Root-relative folder of the files (written or would be).")
    files: list[str] = Field(description="File names in that folder.")
    operations: int
    cases: int = Field(description="Parametrized cases kept (same verdict twice).")
    sequences: int = Field(description="Create/read/update/delete and link sequences.")
    failing: list[ApiCase] = Field(description="Cases that break the contract now (bugs).")
    failing_total: int
    dropped: list[ApiCase] = Field(description="Cases dropped: verdicts differed twice.")
    dropped_total: int
    text_file: str = Field(description="Root-relative JSON file holding every file's text.")


async def generate_api_tests(
    fleet: Fleet,
    spec: str,
    base_url: str | None = None,
    app: str | None = None,
    write: bool = False,
    out: str | None = None,
    explore: bool = False,
    budget_seconds: float = 15.0,
) -> tuple[GeneratedApiTests, str]:
    if (base_url is None) == (app is None):
        raise ToolError("pass exactly one of base_url (a running server) or app (module:app)")
    command = [sys.executable, "-m", "aqe", "generate", "api", fleet.guard.path(spec, "spec")]
    if base_url is not None:
        if not _URL.match(base_url):
            raise ToolError(f"base_url {base_url[:80]!r} is not an http(s) URL")
        command += ["--base-url", base_url]
    else:
        assert app is not None
        if not _APP.match(app):
            raise ToolError(f"app {app[:80]!r} is not module:attribute")
        command += ["--app", app]
    command += ["--json", "--budget", str(budget_seconds)]
    if explore:
        command.append("--explore")
    if out is not None:
        command += ["--out", str(Path(_out_argument(fleet, out.rstrip("/") + "/x.py")).parent)]
    if not write:
        command.append("--dry-run")
    limit = budget_seconds * 3 + 120
    try:
        code, stdout, stderr = await _run(command, fleet.root, limit)
    except TimeoutError:
        raise ToolError(f"aqe generate api ran past {limit:.0f} s and was stopped") from None
    if code != 0:
        line = next(
            (ln for ln in reversed(stderr.splitlines()) if ln.startswith("aqe: error:")),
            f"aqe generate api exited {code}",
        )
        raise ToolError(clean(line.removeprefix("aqe: error: "), 400))
    data = json.loads(stdout)
    target = str(data["out"])
    if write and not target.startswith(str((fleet.root / "tests").resolve())):
        raise ToolError("aqe generate api wrote outside tests/: refusing to report it as done")
    keep = _results(fleet.root) / f"api-{uuid.uuid4().hex[:12]}.json"
    keep.write_text(json.dumps(data["text"]))
    try:
        shown = str(Path(target).relative_to(fleet.root.resolve()))
    except ValueError:
        shown = target
    failing = [
        ApiCase(test=clean(f["test"], 200), why=clean(f["why"], 300)) for f in data["failing"]
    ]
    dropped = [
        ApiCase(test=clean(d["test"], 200), why=clean(d["why"], 200)) for d in data["dropped"]
    ]
    answer = GeneratedApiTests(
        written=data["written"],
        out=shown,
        files=list(data["files"]),
        operations=data["operations"],
        cases=data["cases"],
        sequences=data["flows"],
        failing=failing[:10],
        failing_total=len(failing),
        dropped=dropped[:10],
        dropped_total=len(dropped),
        text_file=str(keep.relative_to(fleet.root)),
    )
    verb = "wrote" if answer.written else "generated (dry run)"
    text = (
        f"{verb} {answer.cases} cases and {answer.sequences} sequences for "
        f"{answer.operations} operations; {answer.failing_total} break the contract, "
        f"{answer.dropped_total} dropped"
    )
    return answer, text


def register(server: MCPServer, fleet: Fleet) -> None:
    @server.tool(
        name="generate_api_tests",
        annotations=ToolAnnotations(destructive_hint=False, open_world_hint=True),
    )
    async def generate_api_tests_tool(
        spec: Annotated[
            str, Field(max_length=300, description="The OpenAPI 3.0/3.1 file (YAML or JSON).")
        ],
        base_url: Annotated[
            str | None, Field(max_length=300, description="A running server to test.")
        ] = None,
        app: Annotated[
            str | None, Field(max_length=200, description="Or module:app, called in-process.")
        ] = None,
        write: Annotated[
            bool, Field(description="Write the files (under tests/); default: dry run.")
        ] = False,
        out: Annotated[
            str | None, Field(max_length=300, description="Folder under tests/ to write.")
        ] = None,
        explore: Annotated[bool, Field(description="Also search with Hypothesis.")] = False,
        budget_seconds: Annotated[float, Field(ge=1, le=MAX_BUDGET)] = 15.0,
    ) -> Annotated[CallToolResult, GeneratedApiTests]:
        """Write pytest contract tests for an HTTP API from its OpenAPI description: valid
        and invalid requests, credentials, create/read/update/delete sequences; keeps the
        cases whose verdict is the same twice and lists those that break the contract."""
        return fleet.answer(
            *await generate_api_tests(
                fleet, spec, base_url, app, write, out, explore, budget_seconds
            )
        )
