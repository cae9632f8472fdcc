"""Shared fixtures: tiny projects under tmp_path and the real ``aqe`` in a subprocess.

End-to-end tests (any test that starts a process: the real ``aqe``, plain pytest,
git, a fork) carry the ``e2e`` marker, so ``-m "not e2e"`` is the fast loop. A test
gets it from its file's ``pytestmark``, its own decorator, or by using ``run_aqe`` /
``start_aqe``; one that starts a process without it fails (see ``_no_processes``), so
the fast loop cannot quietly grow slow again.
"""

from __future__ import annotations

import _posixsubprocess
import contextlib
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

PYPROJECT = "[tool.pytest.ini_options]\n"

RunAqe = Callable[..., "subprocess.CompletedProcess[str]"]
StartAqe = Callable[..., "subprocess.Popen[str]"]
MakeProject = Callable[..., Path]

#: Seconds after which a child aqe is taken to hang. Only a guard: a small run on a
#: busy shared 2-core machine took over 30 s, so no test may rely on a run being fast.
HANG_GUARD = 120.0

#: Variables that change what aqe prints: an AI coding agent's (the agent reporter) and
#: GitHub Actions' (annotations, job summary). Tests pin the plain output, so neither
#: the tests nor the aqe runs they start see them; tests of those outputs set them.
OUTPUT_VARIABLES = (
    "CLAUDECODE",
    "CODEX_THREAD_ID",
    "AI_AGENT",
    "GITHUB_ACTIONS",
    "GITHUB_STEP_SUMMARY",
)
for _name in OUTPUT_VARIABLES:
    os.environ.pop(_name, None)

#: Fixtures that start the real aqe: a test using one is end to end.
E2E_FIXTURES = frozenset({"run_aqe", "start_aqe"})


def clean_env(extra: Mapping[str, str] | None = None, drop: Sequence[str] = ()) -> dict[str, str]:
    """The caller's environment without AQE_*/PYTEST_* leaks (nor names starting with
    one of ``drop``), and CI=true (no live view); ``extra`` added last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_", *drop))}
    env["CI"] = "true"
    env.update(extra or {})
    return env


def run_python(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    drop: Sequence[str] = (),
    timeout: float = HANG_GUARD,
    **popen: Any,
) -> subprocess.CompletedProcess[str]:
    """``python *args`` (this interpreter) in ``cwd``, with the cleaned environment,
    output captured as text; ``popen`` passes on (``preexec_fn``, ``input``...)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=clean_env(env, drop),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **popen,
    )


def aqe_process(*args: str, cwd: Path, **options: Any) -> subprocess.CompletedProcess[str]:
    """``python -m aqe *args`` in ``cwd``: the one way tests run the real aqe."""
    return run_python("-m", "aqe", *args, cwd=cwd, **options)


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Write ``{relative path: source}`` into a fresh directory; dedents each source."""

    def make(files: Mapping[str, str], name: str = "proj", pyproject: str = PYPROJECT) -> Path:
        root = tmp_path / name
        root.mkdir()
        (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
        for rel, source in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source), encoding="utf-8")
        return root

    return make


@pytest.fixture
def run_aqe() -> RunAqe:
    """Run ``python -m aqe *args`` in ``cwd``; ``env`` adds to the cleaned environment."""
    return aqe_process


@pytest.fixture
def start_aqe() -> StartAqe:
    """Start ``python -m aqe *args`` without waiting; the caller must ``communicate()``."""

    def start(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "aqe", *args],
            cwd=cwd,
            env=clean_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start


# --- the e2e marker and the fast loop -------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Before ``-m`` selects: a test that uses the real aqe's fixtures is end to end."""
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


#: Every way a test can start a process (subprocess, multiprocessing, pty, os.*).
_STARTERS: list[tuple[Any, str]] = [
    (subprocess.Popen, "_execute_child"),
    (_posixsubprocess, "fork_exec"),
    (os, "fork"),
    (os, "forkpty"),
    (os, "posix_spawn"),
    (os, "posix_spawnp"),
    (os, "system"),
]


@contextlib.contextmanager
def _no_processes(item: pytest.Item) -> Iterator[None]:
    """While a test not marked ``e2e`` runs, starting a process from its thread fails
    it: the fast loop (``-m "not e2e"``) stays free of subprocesses and forks."""
    if item.get_closest_marker("e2e") is not None:
        yield
        return
    started: list[str] = []
    # Only the test's own thread is checked: a thread an earlier (e2e) test left
    # behind may still start or reap a process, and must neither break nor be blamed.
    test_thread = threading.get_ident()

    def refuse(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def starter(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != test_thread:
                return original(*args, **kwargs)
            started.append(name)
            pytest.fail(
                f"{item.nodeid} starts a process ({name}) but is not marked e2e: add "
                "@pytest.mark.e2e (or the file's pytestmark) so the fast loop "
                "(-m 'not e2e') leaves it out",
                pytrace=False,
            )

        return starter

    saved = [
        (owner, name, getattr(owner, name)) for owner, name in _STARTERS if hasattr(owner, name)
    ]
    for owner, name, original in saved:
        setattr(owner, name, refuse(f"{owner.__name__}.{name}", original))
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
    if started:  # also when the test caught the failure
        pytest.fail(
            f"{item.nodeid} starts a process ({started[0]}) but is not marked e2e",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _no_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _no_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    with _no_processes(item):
        return (yield)
