"""Shared fixtures: tiny projects under tmp_path and the real ``aqe`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

PYPROJECT = "[tool.pytest.ini_options]\n"

RunAqe = Callable[..., "subprocess.CompletedProcess[str]"]
StartAqe = Callable[..., "subprocess.Popen[str]"]
MakeProject = Callable[..., Path]

#: Seconds after which a child aqe is taken to hang. Only a guard: a small run on a
#: busy shared 2-core machine took over 30 s, so no test may rely on a run being fast.
HANG_GUARD = 120.0


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without AQE_*/PYTEST_* leaks, and CI=true (no live view)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AQE_", "PYTEST_"))}
    env["CI"] = "true"
    env.update(extra or {})
    return env


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

    def run(
        *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = HANG_GUARD
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aqe", *args],
            cwd=cwd,
            env=_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture
def start_aqe() -> StartAqe:
    """Start ``python -m aqe *args`` without waiting; the caller must ``communicate()``."""

    def start(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "aqe", *args],
            cwd=cwd,
            env=_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start
