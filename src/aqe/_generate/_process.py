"""Child processes of the generator: the search, the hash-seed replay, the pytest runs.

Each runs the user's code, so each gets a session of its own (killed as a group), no
stdin, a hash seed chosen by the caller and aqe itself importable beside the project.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .._signals import die_with_parent

#: The folder that holds the ``aqe`` package, for children of a non-installed checkout.
_SOURCE = str(Path(__file__).resolve().parents[2])


#: A search past this many times its budget in wall time is ended (a call blocked
#: outside Python, using no CPU); busy loops are ended by its CPU limit first.
WALL_FACTOR = 8


def child_env(seed: str, paths: list[str] | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    if paths is not None:
        parts = [*paths, _SOURCE, env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in parts if p)
    return env


def start(
    command: list[str],
    cwd: Path,
    env: dict[str, str],
    stdout: int = subprocess.DEVNULL,
    stderr: int = subprocess.DEVNULL,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        text=True,
        start_new_session=True,
        # Killed with the generator, however it ends: an MCP cancel kills its group only.
        preexec_fn=die_with_parent,
    )
