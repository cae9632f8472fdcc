"""``aqe generate api`` end to end: the real command on examples/api-demo, the suite it
writes run by the real ``aqe run`` (green twice), and bad input (one line, exit 4)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import RunAqe

pytestmark = pytest.mark.e2e

DEMO = Path(__file__).resolve().parent.parent / "examples" / "api-demo"
ENV = {"API_KEY": "demo-key", "DEMO_API_KEY": "demo-key"}


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the demo (app, description, its settings), with the committed suite."""
    root = tmp_path / "api-demo"
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns(".aqe", "__pycache__"))
    return root


def test_the_written_suite_is_the_committed_one_and_green_twice(
    demo: Path, run_aqe: RunAqe
) -> None:
    committed = {p.name: p.read_text(encoding="utf-8") for p in (demo / "tests").glob("*.py")}
    shutil.rmtree(demo / "tests")
    done = run_aqe(
        "generate",
        "api",
        "openapi.yaml",
        "--app",
        "app:app",
        "--out",
        "tests",
        cwd=demo,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    assert "break the contract" not in done.stdout
    written = {p.name: p.read_text(encoding="utf-8") for p in (demo / "tests").glob("*.py")}
    assert written == committed  # examples/api-demo/tests is what the generator writes
    for _ in range(2):
        run = run_aqe("run", "-w", "2", "-q", "--no-history", cwd=demo, env=ENV)
        assert run.returncode == 0, run.stdout[-3000:]
        assert " passed" in run.stdout and "failed" not in run.stdout


def test_json_output_and_dry_run_write_nothing(demo: Path, run_aqe: RunAqe) -> None:
    done = run_aqe(
        "generate",
        "api",
        "openapi.yaml",
        "--app",
        "app:app",
        "--out",
        "elsewhere",
        "--dry-run",
        "--json",
        cwd=demo,
        env=ENV,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["written"], data["operations"], data["failing"]) == (False, 10, [])
    assert data["files"] == [
        "conftest.py",
        "test_api_items.py",
        "test_api_meta.py",
        "test_api_orders.py",
    ]
    assert not (demo / "elsewhere").exists()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("swagger", "is Swagger 2.0 (OpenAPI 2.0): only OpenAPI 3.0 and 3.1 are read"),
        ("invalid", "is not a valid OpenAPI description: at /paths/~1health/get/responses"),
        ("unreachable", "cannot reach the API at http://127.0.0.1:9: ConnectError"),
        ("import", "cannot import the app 'missing_module:app': ModuleNotFoundError"),
        ("neither", "aqe generate api needs one of --base-url URL or --app MODULE:APP"),
    ],
)
def test_bad_input_is_one_line_and_exit_4(
    demo: Path, run_aqe: RunAqe, case: str, message: str
) -> None:
    spec = demo / "openapi.yaml"
    target = ["--app", "app:app"]
    if case == "swagger":
        (demo / "old.json").write_text(json.dumps({"swagger": "2.0", "paths": {}}))
        spec = demo / "old.json"
    elif case == "invalid":
        text = spec.read_text(encoding="utf-8").replace(
            "description: Successful Response", "describe: Successful Response", 1
        )
        spec = demo / "broken.yaml"
        spec.write_text(text, encoding="utf-8")
    elif case == "unreachable":
        target = ["--base-url", "http://127.0.0.1:9"]
    elif case == "import":
        target = ["--app", "missing_module:app"]
    elif case == "neither":
        target = []
    done = run_aqe("generate", "api", spec.name, *target, cwd=demo, env=ENV)
    assert done.returncode == 4, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("aqe: error: ") and message in line, line


def test_the_mcp_tool_is_a_dry_run_unless_asked_and_writes_only_under_tests(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools

    import anyio
    from mcp.server.mcpserver.exceptions import ToolError

    from aqe._mcp._fleet import Fleet
    from aqe._mcp._tools_apigen import generate_api_tests

    fleet = Fleet(demo, budget=20_000, session_idle=60.0)
    shutil.rmtree(demo / "tests")
    for name, value in ENV.items():  # the child inherits the server's environment
        monkeypatch.setenv(name, value)
    call = functools.partial(generate_api_tests, fleet, "openapi.yaml", app="app:app")
    answer, text = anyio.run(call)
    assert not answer.written and not (demo / "tests").exists()
    assert (answer.operations, answer.failing_total) == (10, 0)
    assert text.startswith("generated (dry run) ")
    kept = json.loads((demo / answer.text_file).read_text())
    assert "def test_items_lifecycle(api, check):" in kept["test_api_items.py"]
    answer, _ = anyio.run(functools.partial(call, write=True, out="tests/api"))
    assert answer.written and (demo / "tests" / "api" / "conftest.py").exists()
    with pytest.raises(ToolError, match="not under the project's tests/ folder"):
        anyio.run(functools.partial(call, write=True, out="../elsewhere"))
    with pytest.raises(ToolError, match="exactly one of base_url"):
        anyio.run(functools.partial(generate_api_tests, fleet, "openapi.yaml"))
