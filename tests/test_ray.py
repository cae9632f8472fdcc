"""``--backend ray`` on a real two-node Ray cluster (tests/ray_cluster.py), never a mock.

The first tests are unit tests of what needs no cluster (milliseconds); the rest are
end to end (marked ``e2e`` and ``ray``).

One cluster for the session (two nodes of one CPU each on this machine, about 20 s
to start); each test runs the real ``aqe`` against it: per-test outcomes equal plain
pytest's, crashes, hangs and flaky tests are accounted for, a node killed in the
middle of a run loses nothing, and bad input is one line. The last test kills a node
(and starts a new one), so it runs last in this file.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HANG_GUARD, PYPROJECT, MakeProject, clean_env
from parity import pytest_outcomes, run_aqe
from ray_cluster import Cluster, cluster

from aqe._engine._backend import load_backend
from aqe._engine._limits import EngineSettings
from aqe._engine._ray import (
    RayBackend,
    RayError,
    _check_reachable,
    _import_ray,
    not_uploaded,
)
from aqe._engine._ray._driver import Agent, RayExecution, forwarded
from aqe._engine._summary import isolation
from aqe._exceptions import UsageError
from aqe._model import TestResult

FIXTURES = Path(__file__).resolve().parent / "fixtures"

# --- no cluster needed -------------------------------------------------------------


def test_the_ray_backend_is_a_built_in_entry_point() -> None:
    assert isinstance(load_backend("ray"), RayBackend)


def test_without_ray_installed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without it imports
    with pytest.raises(RayError, match=r"pip install 'aqe\[ray\]'"):
        _import_ray()


def test_a_malformed_address_is_a_usage_error() -> None:
    for address in ("localhost", "host:port", ":6379"):
        with pytest.raises(UsageError, match="expected HOST:PORT"):
            _check_reachable(address)


def test_an_address_nobody_answers_is_one_line_at_once() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(RayError, match=f"cannot reach the Ray cluster at 127.0.0.1:{port}"):
        _check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(RayError, match="cannot reach"):  # through the settings too
        RayBackend().configure(EngineSettings(workers=2, ray_address=f"127.0.0.1:{port}"))


def test_the_runs_variables_go_to_the_nodes_the_machines_do_not() -> None:
    env = {
        "CI": "true", "DATABASE_URL": "postgresql://db/x", "PYTHONHASHSEED": "0",
        "PATH": "/usr/bin", "HOME": "/root", "TMPDIR": "/tmp/x", "RAY_ADDRESS": "h:1",
        "XDG_RUNTIME_DIR": "/run/user/0", "_AQE_SPAWNED_WORKER": "1:2:0",
    }  # fmt: skip
    assert forwarded(env) == {
        "CI": "true", "DATABASE_URL": "postgresql://db/x", "PYTHONHASHSEED": "0"
    }  # fmt: skip


def test_placement_spreads_by_cpu_and_sends_an_isolated_test_elsewhere() -> None:
    """Which node a worker starts on (no Ray needed: the agents are plain records)."""
    a, b = Agent(None, "node-a", "10.0.0.1", 1), Agent(None, "node-b", "10.0.0.2", 2)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        execution = RayExecution(None, [a, b], lambda slot: {}, listener, hot=3)
        # Least loaded per CPU first: b has twice a's CPUs.
        a.workers.add(100)
        assert execution._choices(1) == [b, a]
        b.workers.update({200, 201})
        assert execution._choices(2) == [a, b]  # a: 1 of 1, b: 2 of 2 -> a by order
        # A replacement goes back to its slot's node while it lives...
        execution._slots[0] = b
        assert execution._choices(0)[0] is b
        # ...but a test isolated after a death (a slot past the pool) avoids that node.
        execution._last_death = b
        execution.status[100] = 9  # a's worker ended: a is empty now
        assert execution._choices(3) == [a, b]
        execution._last_death = a
        assert execution._choices(4) == [b, a]
        # A lost node is never chosen.
        b.alive = False
        assert execution._choices(0) == [a]



def test_a_node_is_named_by_host_address_and_id() -> None:
    named = Agent(None, "3f2a1b4c99", "10.0.0.7", 1, hostname="build-7")
    assert named.label == "Ray node build-7 (10.0.0.7, 3f2a1b4c)"
    assert Agent(None, "3f2a1b4c99", "10.0.0.7", 1).label == "Ray node 10.0.0.7 (3f2a1b4c)"


def test_a_test_lost_with_its_node_is_not_called_one_that_passes_only_alone() -> None:
    def result(nodeid: str, outcome: str, tier: str, message: str | None = None) -> TestResult:
        return TestResult(nodeid=nodeid, file="t.py", line=1, outcome=outcome,
                          phases={"call": 0.1}, worker=0, message=message, tier=tier)  # fmt: skip

    lost = (
        "worker 1 (pid 77) was lost with its Ray node build-7 (10.0.0.7, 3f2a1b4c): "
        "ActorDiedError: the actor died while running this test"
    )
    results = [
        result("t.py::a", "crashed", "hot", lost),
        result("t.py::a", "flaky", "warm"),
        result("t.py::b", "failed", "hot", "AssertionError"),
        result("t.py::b", "flaky", "warm"),
    ]
    lines = isolation(results, [("t.py::a", "warm"), ("t.py::b", "warm")], {})
    assert lines[1] == (
        "aqe: t.py::a ran again (warm tier) and passed: its first worker was lost with its "
        "Ray node build-7 (10.0.0.7, 3f2a1b4c), not failed by the test"
    )
    assert lines[2].startswith("aqe: t.py::b passed only alone (warm tier)")


def test_a_test_file_the_upload_would_leave_out_is_named(tmp_path: Path) -> None:
    """As Ray's packaging decides it: aqe's excludes, a .gitignore on the way, a
    .rayignore; a file outside the working directory never travels."""
    for rel in ("tests/test_a.py", "tests/gen/test_b.py", "venv/test_c.py", "skip/test_d.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("def test(): pass\n")
    assert not_uploaded(str(tmp_path), ("tests/test_a.py", "tests/gen/test_b.py")) is None
    assert not_uploaded(str(tmp_path), ("tests/test_a.py", "venv/test_c.py")) == "venv/test_c.py"
    (tmp_path / "tests" / ".gitignore").write_text("gen/\n")
    assert not_uploaded(str(tmp_path), ("tests/gen/test_b.py",)) == "tests/gen/test_b.py"
    (tmp_path / ".rayignore").write_text("skip\n")
    assert not_uploaded(str(tmp_path), ("skip/test_d.py::test",)) == "skip/test_d.py::test"
    inner = tmp_path / "tests"
    assert not_uploaded(str(inner), ("../skip/test_d.py",)) == "../skip/test_d.py"

# --- on a real cluster -------------------------------------------------------------


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Cluster]:
    with cluster(nodes=2) as made:
        yield made


def _on(made: Cluster) -> dict[str, str]:
    return {"AQE_BACKEND": "ray", "AQE_RAY_ADDRESS": made.address}


def _report(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _aqe(
    project: Path, *args: str, env: dict[str, str], timeout: float = HANG_GUARD
) -> tuple[int, str, dict[str, Any]]:
    report = project.parent / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "aqe", "run", "--no-history", "--json", str(report), *args],
        cwd=project, env=clean_env(env), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    output = done.stdout + done.stderr
    return done.returncode, output, _report(report) if report.exists() else {}


@pytest.mark.e2e
@pytest.mark.ray
@pytest.mark.parametrize(
    ("project", "args"),
    [
        ("features", []),  # outcomes of every kind, fixtures, xunit, doctests, warnings
        ("process_state", []),  # the environment, cwd and files tests see
        ("collect_error", ["--continue-on-collection-errors"]),
    ],
)
def test_outcomes_equal_plain_pytest_id_by_id(
    ray_cluster: Cluster, monkeypatch: pytest.MonkeyPatch, project: str, args: list[str]
) -> None:
    expected = pytest_outcomes(FIXTURES / project, args)
    for name, value in _on(ray_cluster).items():
        monkeypatch.setenv(name, value)
    run = run_aqe(FIXTURES / project, args, workers=2)
    run.require_report()
    assert expected, "plain pytest ran nothing: parity would prove nothing"
    assert run.outcomes == expected, run.describe()
    assert "INTERNALERROR" not in run.output, run.describe()


CHAOS = {
    "test_chaos.py": """
        import os, sys, time
        from pathlib import Path

        def test_crashes():
            os._exit(7)

        def test_hangs():
            time.sleep(3600)

        def test_flaky():
            marker = Path(os.environ["CHAOS_STATE"], "flaky-ran")
            if not marker.exists():
                marker.write_text("once")
                assert False, "fails the first time only"

        def test_fine_a(): pass
        def test_fine_b(): pass
        """,
    "test_more.py": """
        import pytest

        @pytest.mark.parametrize("n", range(20))
        def test_many(n):
            assert n == n
        """,
}


@pytest.mark.e2e
@pytest.mark.ray
def test_crash_hang_and_flaky_are_accounted_for(
    ray_cluster: Cluster, make_project: MakeProject, tmp_path: Path
) -> None:
    project = make_project(CHAOS)
    state = tmp_path / "state"
    state.mkdir()
    env = {**_on(ray_cluster), "CHAOS_STATE": str(state)}
    code, output, report = _aqe(
        project, "-w", "2", "--timeout", "3", "--retries", "1",
        "--retry-except", "^(Timeout|WorkerCrashed):", env=env,
    )  # fmt: skip
    assert code == 1, output
    attempts: dict[str, list[dict[str, Any]]] = {}
    for test in report["tests"]:
        attempts.setdefault(test["nodeid"], []).append(test)
    assert len(attempts) == 25, output
    crashed = attempts.pop("test_chaos.py::test_crashes")
    assert [t["outcome"] for t in crashed] == ["crashed"] * 3, output
    assert [t["tier"] for t in crashed] == ["hot", "warm", "cold"]
    assert "exited with code 7" in crashed[0]["message"]
    hung = attempts.pop("test_chaos.py::test_hangs")
    assert {t["outcome"] for t in hung} == {"timeout"}, output
    flaky = attempts.pop("test_chaos.py::test_flaky")
    assert [t["outcome"] for t in flaky] == ["failed", "flaky"], output
    for nodeid, runs in attempts.items():  # nothing else ran twice, nothing was lost
        assert [t["outcome"] for t in runs] == ["passed"], (nodeid, output)


@pytest.mark.e2e
@pytest.mark.ray
def test_bad_addresses_are_one_line_within_seconds(make_project: MakeProject) -> None:
    project = make_project({"test_a.py": "def test_a(): pass\n"})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once it is closed
    for address, code in ((f"127.0.0.1:{port}", 3), ("no-port-here", 4)):
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "aqe", "run", "--backend", "ray", "--ray-address", address],
            cwd=project, env=clean_env(), capture_output=True, text=True, timeout=HANG_GUARD,
        )  # fmt: skip
        lines = done.stderr.strip().splitlines()
        assert done.returncode == code, done.stderr
        assert len(lines) == 1 and lines[0].startswith("aqe: error: "), done.stderr
        assert address in lines[0]
        assert "Traceback" not in done.stdout + done.stderr
        assert time.monotonic() - started < 30  # a guard against a hang, not a timing claim


_INTERRUPTIBLE = """
    import os, time
    from pathlib import Path

    def test_waits_to_be_interrupted():
        state = Path(os.environ["INT_STATE"])
        (state / f"started-{os.getpid()}").write_text("")
        try:
            time.sleep(600)
        except KeyboardInterrupt:
            (state / "interrupted").write_text("")
            raise
    """


def _aqe_processes(made: Cluster) -> list[str]:
    """The cluster's processes that are aqe's: agents (Ray names an actor's process
    after it), node hosts and the workers they forked."""
    found = []
    for pid in made.processes():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "NodeAgent" in cmdline or "aqe._engine._ray" in cmdline:
            found.append(f"{pid} {cmdline}")
    return found


@pytest.mark.e2e
@pytest.mark.ray
def test_ctrl_c_reaches_the_running_tests_and_leaves_nothing_running(
    ray_cluster: Cluster, make_project: MakeProject, tmp_path: Path
) -> None:
    """SIGINT to the driver alone (a terminal's Ctrl-C cannot reach the nodes): the
    coordinator passes it on, so the running test gets its KeyboardInterrupt at once
    (not after the shutdown grace), the run ends as pytest's (exit 2), and no agent,
    host or worker is left on the cluster."""
    project = make_project({"test_int.py": _INTERRUPTIBLE})
    state = tmp_path / "state"
    state.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "aqe", "run", "-w", "1", "--no-history"],
        cwd=project, env=clean_env({**_on(ray_cluster), "INT_STATE": str(state)}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # As a shell starts a foreground command: SIGINT not ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + HANG_GUARD
        while not list(state.glob("started-*")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2, output
    assert "SIGINT received" in output, output
    assert (state / "interrupted").exists(), output  # the test itself was interrupted
    assert "Traceback" not in output, output
    deadline = time.monotonic() + 30  # Ray ends a killed actor's process on its own time
    while (left := _aqe_processes(ray_cluster)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, left



_UPLOADED = {
    "tests/test_where.py": """
        import json, os
        from pathlib import Path

        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_records_where_it_runs(n):
            state = Path(os.environ["UPLOAD_STATE"])
            (state / f"ran-{n}").write_text(json.dumps({
                "file": __file__, "cwd": os.getcwd(), "data": Path("tests/data.txt").exists(),
                "ignored": Path("notes/private.txt").exists(),
            }))
        """,
    "tests/data.txt": "travels with the project\n",
    "notes/private.txt": "left out by .gitignore\n",
    ".gitignore": "notes/\n",
}


@pytest.mark.e2e
@pytest.mark.ray
def test_ray_upload_sends_the_project_to_the_nodes(
    ray_cluster: Cluster, make_project: MakeProject, tmp_path: Path
) -> None:
    """``ray_upload = true``: the project (a copy in a temporary directory, which the
    hosts never use) reaches each node as Ray's working_dir; the hosts run in its
    unpacked copy there, without what .gitignore leaves out; a collected test file
    the upload would leave out is one line before any node runs it."""
    project = make_project(_UPLOADED, pyproject=PYPROJECT + "[tool.aqe]\nray_upload = true\n")
    state = tmp_path / "state"
    state.mkdir()
    env = {**_on(ray_cluster), "UPLOAD_STATE": str(state)}
    code, output, report = _aqe(project, "-w", "2", env=env)
    assert code == 0, output
    assert [t["outcome"] for t in report["tests"]] == ["passed"] * 6, output
    seen = [json.loads(path.read_text()) for path in sorted(state.glob("ran-*"))]
    assert len(seen) == 6, output
    for where in seen:
        assert not where["cwd"].startswith(str(project)), where  # Ray's unpacked copy
        assert where["cwd"].startswith(str(ray_cluster.root)), where
        assert Path(where["file"]).parent.parent == Path(where["cwd"]), where
        assert where["data"] and not where["ignored"], where
    # A test file the upload leaves out: one line, exit 3, before the nodes run it.
    (project / "notes" / "test_notes.py").write_text("def test_n(): pass\n")
    code, output, _ = _aqe(project, "-w", "2", env=env)
    assert code == 3, output
    assert "ray_upload: notes/test_notes.py is left out of the upload" in output, output
    assert "Traceback" not in output, output


_COVERED = {
    "pkg/__init__.py": """
        def a(x):
            if x > 0:
                return 1
            return 2
        """,
    "pkg/b.py": """
        def b(x):
            if x:
                return "yes"
            return "no"

        def never():
            return 3
        """,
    "tests/test_a.py": "import pkg\n\ndef test_a():\n    assert pkg.a(1) == 1\n",
    "tests/test_b.py": "from pkg.b import b\n\ndef test_b():\n    assert b(0) == 'no'\n",
}


def _lines(report: Path) -> dict[str, list[int]]:
    files = json.loads(report.read_text())["files"]
    return {name: data["executed_lines"] for name, data in sorted(files.items())}


@pytest.mark.e2e
@pytest.mark.ray
@pytest.mark.parametrize("upload", [False, True], ids=["shared-filesystem", "ray-upload"])
def test_coverage_from_the_nodes_is_combined_as_locally(
    ray_cluster: Cluster, make_project: MakeProject, tmp_path: Path, upload: bool
) -> None:
    """pytest-cov under --backend ray: the data the nodes' workers wrote reaches the
    driver (beside it on a shared filesystem; sent back by the agents from Ray's
    unpacked copy with ray_upload) and the report is the local run's, line by line;
    no data file is left on the nodes."""
    pyproject = PYPROJECT + 'pythonpath = ["."]\n'
    project = make_project(_COVERED, pyproject=pyproject)
    cov = ["--", "--cov=pkg", "--cov-report=json:{}"]
    local = tmp_path / "local.json"
    code, output, _ = _aqe(project, "-w", "2", *cov[:-1], cov[-1].format(local), env={})
    assert code == 0, output
    if upload:
        (project / "pyproject.toml").write_text(pyproject + "[tool.aqe]\nray_upload = true\n")
    remote = tmp_path / "ray.json"
    code, output, _ = _aqe(
        project, "-w", "2", *cov[:-1], cov[-1].format(remote), env=_on(ray_cluster)
    )
    assert code == 0, output
    assert "could not" not in output, output
    assert _lines(remote) == _lines(local), output
    assert _lines(local)["pkg/b.py"] == [2, 3, 5, 7], output  # measured, not all or none
    left = [p for p in ray_cluster.root.rglob(".coverage*") if p.is_file()]
    assert not left, left

_GATE = """
    import os, time
    from pathlib import Path

    import pytest

    @pytest.mark.parametrize("n", range(4))
    def test_waits_for_the_gate(n):
        state = Path(os.environ["KILL_STATE"])
        (state / f"started-{__name__}-{n}-{os.getpid()}").write_text("")
        deadline = time.monotonic() + 90  # a guard: the gate opens once both wait
        while not (state / "gate").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    """
#: Two files, so the pool has two workers (one per node) from the start.
SLOW_SUITE = {"test_gate_a.py": _GATE, "test_gate_b.py": _GATE}


@pytest.mark.e2e
@pytest.mark.ray
def test_a_node_killed_mid_run_loses_nothing(
    ray_cluster: Cluster, make_project: MakeProject, tmp_path: Path
) -> None:
    """Both workers hold a test when the second node dies: its test is recorded as
    lost with the node and runs again alone elsewhere; its queue goes back to the
    plan; every test ends passed exactly once."""
    project = make_project(SLOW_SUITE)
    state = tmp_path / "state"
    state.mkdir()
    report = tmp_path / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aqe", "run", "-w", "2", "--no-history", "--json", str(report)],
        cwd=project, env=clean_env({**_on(ray_cluster), "KILL_STATE": str(state)}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + HANG_GUARD
        while len(list(state.glob("started-*"))) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.05)
        ray_cluster.kill_node(1)
        (state / "gate").write_text("")
        output, _ = proc.communicate(timeout=HANG_GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        ray_cluster.join()  # the session's cluster has two nodes again
    tests = _report(report)["tests"]
    lost = [t for t in tests if t["outcome"] == "crashed"]
    assert len(lost) == 1, output
    assert "was lost with its Ray node" in lost[0]["message"], lost[0]["message"]
    # The lost test ran again alone (warm tier, on the node left): passed there, so
    # "flaky" as any test that passes only alone; every other test ran exactly once.
    ended = Counter(t["nodeid"] for t in tests if t["outcome"] in ("passed", "flaky"))
    assert len(ended) == 8 and set(ended.values()) == {1}, output
    again = [t for t in tests if t["nodeid"] == lost[0]["nodeid"] and t is not lost[0]]
    assert [(t["outcome"], t["tier"]) for t in again] == [("flaky", "warm")], output
    # The summary says the node was lost, not that the test needs to run alone.
    assert f"aqe: {lost[0]['nodeid']} ran again (warm tier) and passed: its first worker was " \
        "lost with its Ray node" in output, output
    assert "passed only alone" not in output, output
    assert proc.returncode == 0, output
