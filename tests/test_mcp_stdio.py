"""``aqe mcp`` as a real stdio subprocess, as an agent's host starts it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import HANG_GUARD
from mcp import Client, StdioServerParameters

#: Every test here starts processes (see conftest: the fast loop is -m "not e2e").
pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).parent / "fixtures" / "mcp_project"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns(".aqe", "__pycache__"))
    return root


def _params(root: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "aqe", "mcp", "--root", str(root)],
        cwd=str(root.parent),
    )


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stream:
            return stream.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    return result.structured_content


def test_stdout_carries_only_protocol_messages_while_a_run_prints(project: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "aqe", "mcp", "--root", str(project)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "run_tests",
                "arguments": {"marker": "not long", "wait_seconds": 40},
            },
        },
    ]
    lines: list[str] = []
    try:
        for message in messages:
            server.stdin.write(json.dumps(message) + "\n")
            server.stdin.flush()
        while True:
            line = server.stdout.readline()
            assert line, "the server closed stdout before answering"
            lines.append(line)
            if json.loads(line).get("id") == 2:
                break
    finally:
        server.communicate(timeout=HANG_GUARD)  # closes stdin: the server ends
    for line in lines:
        assert json.loads(line)["jsonrpc"] == "2.0", line
    answer = json.loads(lines[-1])["result"]
    assert answer["structuredContent"]["outcomes"]["passed"] == 10
    # The run's own output (pytest's terminal, the crashing test) went elsewhere.
    assert "passed" not in "".join(lines[:-1])
    assert server.returncode == 0


def test_a_run_through_the_stdio_server_and_no_worker_outlives_it(project: Path) -> None:
    seen: dict[str, Any] = {}

    async def main() -> None:
        async with Client(_params(project)) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"run_tests", "get_run", "cancel_run", "fleet_status"} <= names
            info = _data(
                await client.call_tool("run_tests", {"marker": "not long", "wait_seconds": 40})
            )
            assert info["state"] == "finished" and info["outcomes"]["failed"] == 1
            failure = _data(
                await client.call_tool(
                    "get_failure", {"node_id": "tests/test_basic.py::test_crashes"}
                )
            )
            assert failure["failure_class"] == "crash"
            # Leave a run going: closing the client must end it with the server.
            _data(await client.call_tool("run_tests", {"marker": "long", "wait_seconds": 0}))
            for _ in range(200):
                status = _data(await client.call_tool("fleet_status", {}))
                if any(w["test"] for w in status["workers"]):
                    break
                await anyio.sleep(0.1)
            seen["status"] = status

    anyio.run(main)
    status = seen["status"]
    assert status["workers"], status
    deadline = time.monotonic() + 10
    pids = [w["pid"] for w in status["workers"]] + [status["server_pid"]]
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(pid) for pid in pids), pids


def test_a_call_the_client_cancels_cancels_its_run_over_stdio(project: Path) -> None:
    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        async with Client(_params(project)) as client:
            with anyio.move_on_after(4):  # the client gives up: notifications/cancelled
                await client.call_tool("run_tests", {"marker": "long", "wait_seconds": 40})
            for _ in range(100):
                after = _data(await client.call_tool("fleet_status", {}))
                if after["active_run"] is None:
                    break
                await anyio.sleep(0.1)
            run = _data(await client.call_tool("get_run", {"run_id": after["runs"][-1]["run_id"]}))
            return after, run

    after, run = anyio.run(main)
    assert after["active_run"] is None, after
    assert run["state"] == "cancelled" and run["outcomes"] == {}, run


@pytest.mark.slow
def test_server_memory_stays_flat_over_1000_calls(project: Path) -> None:
    async def main() -> tuple[float, float]:
        async with Client(_params(project)) as client:
            _data(await client.call_tool("run_tests", {"marker": "not long", "wait_seconds": 40}))
            calls = [
                ("fleet_status", {}),
                ("get_run", {}),
                ("list_failures", {}),
                ("get_failure", {"node_id": "tests/test_basic.py::test_fails_with_escapes"}),
                ("test_history", {"node_id": "tests/test_basic.py::test_passes[1]"}),
            ]

            async def batch(count: int) -> float:
                for i in range(count):
                    name, args = calls[i % len(calls)]
                    _data(await client.call_tool(name, args))
                return float(_data(await client.call_tool("fleet_status", {}))["server_rss_mb"])

            warm = await batch(200)
            end = await batch(1000)
            return warm, end

    warm, end = anyio.run(main)
    print(f"server RSS {warm} MB -> {end} MB")
    assert end - warm < 8.0, f"server RSS grew from {warm} MB to {end} MB over 1,000 calls"


def test_aqe_mcp_refuses_a_root_that_does_not_exist(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aqe", "mcp", "--root", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "CI": "true"},
    )
    assert result.returncode == 4
    assert "--root" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
