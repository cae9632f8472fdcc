"""``aqe mcp`` through the MCP SDK's own client, against the server in memory.

The server is real: each run is a real ``aqe run`` child with real workers, on a
copy of ``tests/fixtures/mcp_project`` (passing, failing, slow, crashing and
one minute-long test).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import HANG_GUARD
from mcp import Client
from mcp.types import CallToolResult

from aqe._mcp._runs import group_alive
from aqe._mcp._server import build_server

FIXTURE = Path(__file__).parent / "fixtures" / "mcp_project"
BUDGET = 8 * 1024

Call = Callable[..., Awaitable[CallToolResult]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns(".aqe", "__pycache__"))
    return root


def _with_client(root: Path, body: Callable[[Client], Awaitable[Any]], **options: Any) -> Any:
    server, _ = build_server(root, **options)

    async def main() -> Any:
        async with Client(server) as client:
            return await body(client)

    return anyio.run(main)


def _ok(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    size = len(json.dumps(result.structured_content).encode())
    assert size <= BUDGET, f"answer of {size} bytes"
    return result.structured_content


async def _finished(client: Client, info: dict[str, Any]) -> dict[str, Any]:
    """``info`` once its run has finished. The server answers within ``wait_seconds``
    (at most 45), and a run can take longer than that on a loaded machine."""
    deadline = time.monotonic() + HANG_GUARD
    while info["state"] in ("running", "queued"):
        assert time.monotonic() < deadline, info
        answer = await client.call_tool("get_run", {"run_id": info["run_id"], "wait_seconds": 40})
        info = _ok(answer)
    return info


def _error(result: CallToolResult) -> str:
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    assert "Traceback" not in text
    return text


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it is dead)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def _wait_for_workers(client: Client, run_id: str, count: int) -> list[int]:
    """The pids of the run's workers once ``count`` of them run a test."""
    deadline = time.monotonic() + HANG_GUARD  # only against a hang: start-up may be slow
    while time.monotonic() < deadline:
        status = _ok(await client.call_tool("fleet_status", {}))
        running = [w for w in status["workers"] if w["run_id"] == run_id and w["test"]]
        # A snapshot can name a worker that has just ended (no RSS to read in /proc):
        # ask again rather than judge a stale one.
        if len(running) >= count and all(w["rss_mb"] and w["rss_mb"] > 1 for w in running):
            return [w["pid"] for w in status["workers"]]
        await anyio.sleep(0.1)
    raise AssertionError(f"no {count} busy workers with their memory shown: {status}")


def test_tools_are_listed_with_bounded_input_and_structured_output_schemas(project: Path) -> None:
    async def body(client: Client) -> None:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) >= {
            "list_tests",
            "run_tests",
            "get_run",
            "cancel_run",
            "list_failures",
            "get_failure",
            "test_history",
            "flaky_tests",
            "similar_failures",
            "fleet_status",
        }
        for tool in tools.values():
            assert tool.description, tool.name
            assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        run = tools["run_tests"].input_schema["properties"]
        assert run["wait_seconds"]["maximum"] == 45
        assert run["workers"]["anyOf"][0]["maximum"] == 64
        assert run["paths"]["anyOf"][0]["maxItems"] == 200
        assert "node_ids" in run and "last_failed" in run and "timeout_seconds" in run

    _with_client(project, body)


@pytest.mark.e2e
def test_a_run_of_passing_failing_slow_and_crashing_tests_is_reported_in_full(
    project: Path,
) -> None:
    async def body(client: Client) -> None:
        progress: list[float] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(value)

        started = _ok(
            await client.call_tool(
                "run_tests",
                {"marker": "not long", "workers": 1, "wait_seconds": 0},
            )
        )
        assert started["state"] in ("running", "queued")
        assert "get_run" in started["hint"]
        run_id = started["run_id"]
        info = _ok(
            await client.call_tool(
                "get_run", {"run_id": run_id, "wait_seconds": 40}, progress_callback=on_progress
            )
        )
        info = await _finished(client, info)
        assert info["state"] == "finished" and info["exit_code"] == 1
        assert info["outcomes"] == {"passed": 10, "failed": 1, "crashed": 1}
        assert info["done"] == info["known"] == 12 and info["attempts"] == 14
        assert info["eta_estimate_seconds"] is None
        # Progress notifications arrived while the run went on, each one higher.
        assert len(progress) >= 2, progress
        assert progress == sorted(set(progress)), progress

        failures = _ok(await client.call_tool("list_failures", {}))
        assert failures["run_id"] == run_id and failures["total"] == 2
        classes = {f["nodeid"].split("::")[1]: f["failure_class"] for f in failures["failures"]}
        assert classes == {"test_fails_with_escapes": "assertion", "test_crashes": "crash"}
        crash = next(f for f in failures["failures"] if f["failure_class"] == "crash")
        assert crash["attempts"] == 3  # hot, then alone in a fresh fork and a fresh interpreter

        detail = _ok(
            await client.call_tool(
                "get_failure", {"node_id": "tests/test_basic.py::test_fails_with_escapes"}
            )
        )
        text = detail["untrusted"]
        assert detail["failure_class"] == "assertion" and detail["when"] == "call"
        assert "assert" in (text["assertion"] or "")
        assert "red output" in text["stdout_tail"]
        dump = json.dumps(detail)
        assert "\\u001b" not in dump and "\\u0007" not in dump  # escapes stripped
        assert "site-packages" not in (text["traceback"] or "")

        crashed = _ok(
            await client.call_tool("get_failure", {"node_id": "tests/test_basic.py::test_crashes"})
        )
        assert crashed["outcome"] == "crashed" and crashed["failure_class"] == "crash"
        assert [a["tier"] for a in crashed["attempts"]] == ["hot", "warm", "cold"]

        history = _ok(
            await client.call_tool(
                "test_history", {"node_id": "tests/test_basic.py::test_fails_with_escapes"}
            )
        )
        assert history["runs_seen"] == 1 and history["entries"][0]["run_id"] == run_id

    _with_client(project, body)


@pytest.mark.e2e
def test_cancel_mid_run_kills_every_worker_and_keeps_finished_results(project: Path) -> None:
    async def body(client: Client) -> None:
        started = _ok(
            await client.call_tool(
                "run_tests", {"paths": ["tests"], "workers": 2, "wait_seconds": 0}
            )
        )
        run_id = started["run_id"]
        pids = await _wait_for_workers(client, run_id, 1)
        cancelled = _ok(await client.call_tool("cancel_run", {"run_id": run_id}))
        assert cancelled["state"] == "cancelled"
        assert cancelled["exit_code"] is not None
        for pid in pids:
            assert not _alive(pid), f"worker {pid} outlived the cancelled run"

    _with_client(project, body)


@pytest.mark.e2e
def test_a_cancelled_call_cancels_the_run_it_started(project: Path) -> None:
    seen: dict[str, Any] = {}

    async def body(client: Client) -> None:
        async def call() -> None:
            await client.call_tool("run_tests", {"marker": "long", "wait_seconds": 40})

        with anyio.move_on_after(HANG_GUARD):  # only against a hang
            async with anyio.create_task_group() as group:
                group.start_soon(call)
                while True:
                    status = _ok(await client.call_tool("fleet_status", {}))
                    if status["active_run"] and any(w["test"] for w in status["workers"]):
                        break
                    await anyio.sleep(0.1)
                seen["status"] = status
                group.cancel_scope.cancel()
        deadline = time.monotonic() + HANG_GUARD
        while time.monotonic() < deadline:
            after = _ok(await client.call_tool("fleet_status", {}))
            if after["active_run"] is None:
                break
            await anyio.sleep(0.1)
        seen["after"] = after

    _with_client(project, body)
    status, after = seen["status"], seen["after"]
    assert status["workers"], status
    assert after["active_run"] is None and after["runs"][-1]["state"] == "cancelled", after
    for worker in status["workers"]:
        assert not _alive(worker["pid"])


@pytest.mark.e2e
def test_one_run_holds_the_project_and_a_second_is_refused_or_queued(project: Path) -> None:
    async def body(client: Client) -> None:
        first = _ok(await client.call_tool("run_tests", {"marker": "long", "wait_seconds": 0}))
        refused = _error(await client.call_tool("run_tests", {"wait_seconds": 0}))
        assert first["run_id"] in refused and "queue=true" in refused
        queued = _ok(
            await client.call_tool(
                "run_tests", {"wait_seconds": 0, "queue": True, "paths": ["tests"]}
            )
        )
        assert queued["state"] == "queued" and queued["queued_behind"] == first["run_id"]
        _ok(await client.call_tool("cancel_run", {"run_id": queued["run_id"]}))
        cancelled = _ok(await client.call_tool("cancel_run", {"run_id": first["run_id"]}))
        assert cancelled["state"] == "cancelled"
        # The queued one was cancelled before it started: it never runs.
        again = _ok(await client.call_tool("get_run", {"run_id": queued["run_id"]}))
        assert again["state"] == "cancelled" and again["done"] == 0

    _with_client(project, body)


@pytest.mark.e2e
def test_paths_that_leave_the_root_and_option_injection_are_refused(
    project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "test_evil.py").write_text("def test_evil(): pass\n")
    (project / "tests" / "escape").symlink_to(outside)

    async def body(client: Client) -> None:
        refusals = {
            "../": {"paths": ["../"]},
            "absolute": {"paths": [str(outside)]},
            "symlink": {"paths": ["tests/escape/test_evil.py"]},
            "-p": {"paths": ["-p", "evil"]},
            "--basetemp": {"paths": ["--basetemp=/"]},
            "keyword": {"keyword": "-p evil"},
            "node id": {"node_ids": ["tests/test_basic.py::test_nope"]},
            "node id outside": {"node_ids": ["../outside/test_evil.py::test_evil"]},
        }
        for name, arguments in refusals.items():
            text = _error(await client.call_tool("run_tests", {**arguments, "wait_seconds": 0}))
            assert "outside" in text or "'-'" in text or "not a collected test" in text, (
                name,
                text,
            )
        for arguments in ({"workers": 0}, {"wait_seconds": 46}, {"retries": 11}, {"limit": 0}):
            tool = "list_tests" if "limit" in arguments else "run_tests"
            assert "validation error" in _error(await client.call_tool(tool, arguments))
        # Nothing ran: every refusal happened before a run was started.
        status = _ok(await client.call_tool("fleet_status", {}))
        assert status["runs"] == []

    _with_client(project, body)


@pytest.mark.e2e
def test_long_listings_come_in_pages_that_fit_the_budget(project: Path) -> None:
    many = "\n".join(
        f"def test_{'x' * 150}_{i}(): pass" for i in range(400)
    )  # long node ids: 400 of them are far past 8 KB
    (project / "tests" / "test_many.py").write_text(many + "\n")

    async def body(client: Client) -> None:
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            args: dict[str, Any] = {"paths": ["tests/test_many.py"], "limit": 500}
            if cursor:
                args["cursor"] = cursor
            listing = _ok(await client.call_tool("list_tests", args))
            pages += 1
            seen += [t["nodeid"] for t in listing["tests"]]
            cursor = listing["next_cursor"]
            assert listing["truncated"] == (cursor is not None)
            if cursor is None:
                break
        assert pages > 5
        assert len(seen) == len(set(seen)) == 400
        assert "not one this server returned" in _error(
            await client.call_tool("list_tests", {"cursor": "abc"})
        )

    _with_client(project, body)


@pytest.mark.e2e
def test_a_burst_of_200_concurrent_calls_all_succeed(project: Path) -> None:
    async def body(client: Client) -> None:
        _ok(await client.call_tool("run_tests", {"paths": ["tests"], "keyword": "passes"}))
        results: list[CallToolResult] = []

        async def one(i: int) -> None:
            name = ("fleet_status", "get_run", "list_failures", "test_history")[i % 4]
            args = {"node_id": "tests/test_basic.py::test_passes[0]"} if i % 4 == 3 else {}
            results.append(await client.call_tool(name, args))

        async with anyio.create_task_group() as group:
            for i in range(200):
                group.start_soon(one, i)
        assert len(results) == 200
        for result in results:
            _ok(result)

    _with_client(project, body)


@pytest.mark.e2e
def test_an_idle_session_is_forgotten_with_its_finished_runs(project: Path) -> None:
    async def body(client: Client) -> None:
        info = _ok(await client.call_tool("run_tests", {"keyword": "passes", "wait_seconds": 40}))
        info = await _finished(client, info)
        directory = project / ".aqe" / "mcp" / "runs" / info["run_id"]
        assert (directory / "report.json").is_file()
        await anyio.sleep(1.2)
        text = _error(await client.call_tool("get_run", {}))
        assert "no run yet in this session" in text
        assert not directory.exists()

    _with_client(project, body, session_idle=1.0)


@pytest.mark.e2e
def test_session_defaults_apply_to_later_runs(project: Path) -> None:
    async def body(client: Client) -> None:
        _ok(await client.call_tool("set_defaults", {"workers": 1, "timeout_seconds": 0.5}))
        info = _ok(await client.call_tool("run_tests", {"marker": "long", "wait_seconds": 40}))
        info = await _finished(client, info)
        assert info["request"]["workers"] == 1 and info["request"]["timeout"] == 0.5
        assert info["outcomes"] == {"timeout": 1}
        assert info["attempts"] == 3  # hot, warm and cold tiers all timed out
        failure = _ok(
            await client.call_tool("get_failure", {"node_id": "tests/test_basic.py::test_long"})
        )
        assert failure["failure_class"] == "timeout"

    _with_client(project, body)


@pytest.mark.e2e
def test_no_run_outlives_the_server(project: Path) -> None:
    pids: list[int] = []

    async def body(client: Client) -> None:
        info = _ok(await client.call_tool("run_tests", {"marker": "long", "wait_seconds": 0}))
        pids.extend(await _wait_for_workers(client, info["run_id"], 1))

    server, fleet = build_server(project)

    async def main() -> None:
        async with Client(server) as client:
            await body(client)

    anyio.run(main)
    handle = fleet.runs.runs()[0]
    assert handle.process is not None
    fleet.runs.shutdown()
    deadline = time.monotonic() + 5
    while group_alive(handle.process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(handle.process.pid)
    assert not any(_alive(pid) for pid in pids)
    assert os.getpid() not in pids


@pytest.mark.e2e
def test_a_file_that_fails_to_import_is_a_failure_with_its_error(project: Path) -> None:
    (project / "tests" / "test_broken.py").write_text("import no_such_module_here\n")

    async def body(client: Client) -> None:
        info = _ok(await client.call_tool("run_tests", {"keyword": "passes", "wait_seconds": 40}))
        info = await _finished(client, info)
        assert info["exit_code"] == 1 and info["collection_errors"] == ["tests/test_broken.py"]
        failures = _ok(await client.call_tool("list_failures", {}))
        assert [(f["nodeid"], f["failure_class"]) for f in failures["failures"]] == [
            ("tests/test_broken.py", "import")
        ]
        detail = _ok(await client.call_tool("get_failure", {"node_id": "tests/test_broken.py"}))
        assert detail["error_type"] == "ModuleNotFoundError"
        assert "no_such_module_here" in detail["untrusted"]["message"]
        assert "no_such_module_here" in detail["untrusted"]["traceback"]

    _with_client(project, body)


@pytest.mark.e2e
def test_failures_come_grouped_by_cause_and_similar_ones_are_found(project: Path) -> None:
    async def body(client: Client) -> None:
        for _ in range(2):
            info = _ok(
                await client.call_tool("run_tests", {"keyword": "escapes", "wait_seconds": 40})
            )
            info = await _finished(client, info)
            assert info["outcomes"] == {"failed": 1}
        failures = _ok(await client.call_tool("list_failures", {}))
        cause = failures["causes"][0]
        assert cause["count"] == 1 and failures["failures"][0]["cause_key"] == cause["key"]
        similar = _ok(
            await client.call_tool(
                "similar_failures", {"node_id": "tests/test_basic.py::test_fails_with_escapes"}
            )
        )
        assert similar["similar"][0]["same_cause"] is True
        assert similar["similar"][0]["run_id"] != info["run_id"]  # a past run, not this one
        passed = _error(
            await client.call_tool(
                "similar_failures", {"node_id": "tests/test_basic.py::test_passes[0]"}
            )
        )
        assert "did not fail" in passed

    _with_client(project, body)
