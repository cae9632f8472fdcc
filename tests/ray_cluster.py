"""A private two-node Ray cluster for the tests: ``ray start --head`` on 127.0.0.1
and a second node joining it with ``ray start --address``, each with one CPU, in a
temporary directory; stopped and removed at the end, even when a test failed.

Why a real cluster: what the Ray backend must survive (a node that joins late, an
actor that dies, Ray's own start-up time) only shows against Ray itself. Both nodes
run on this machine, so each one is a raylet of its own with its own temporary
directory; a test can kill the second node's processes to play a lost machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ray() -> str:
    """The ``ray`` script of this interpreter (the ray extra installs it)."""
    script = Path(sys.executable).with_name("ray")
    if not script.exists():
        raise RuntimeError("ray is not installed here (pip install -e '.[ray]')")
    return str(script)


@dataclass
class Cluster:
    root: Path
    port: int
    env: dict[str, str]
    #: Each node's temporary directory (head first); ``ray stop`` needs no list.
    nodes: list[Path] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ray(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_ray(), *args], capture_output=True, text=True, check=check, timeout=120,
            env=self.env, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def start_head(self) -> None:
        folder = self.root / "head"
        folder.mkdir()
        self.nodes.append(folder)
        self.ray(
            "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
            "--num-cpus", "1", "--num-gpus", "0", "--include-dashboard", "false",
            "--disable-usage-stats", "--temp-dir", str(folder),
        )  # fmt: skip

    def join(self) -> None:
        """One more node of one CPU (a raylet of its own on this machine)."""
        self.ray(
            "start", "--address", self.address, "--node-ip-address", "127.0.0.1",
            "--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats",
        )  # fmt: skip
        self.wait_for_nodes(len(self.nodes) + 1)
        self.nodes.append(self.root / f"node{len(self.nodes)}")

    def wait_for_nodes(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.ray("status", "--address", self.address, check=False).stdout
            if status.count("node_") >= count:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the Ray cluster did not reach {count} nodes in {timeout:g}s")

    def raylets(self) -> list[int]:
        """Process ids of the raylets, in start order (the head's first)."""
        found = subprocess.run(
            ["pgrep", "-f", "raylet/raylet"], capture_output=True, text=True, check=False
        ).stdout.split()
        mine = []
        for pid in map(int, found):
            with contextlib.suppress(OSError):
                env = Path(f"/proc/{pid}/cmdline").read_bytes()
                if f":{self.port}".encode() in env or str(self.root).encode() in env:
                    mine.append(pid)
        return sorted(mine)

    def stop(self) -> None:
        self.ray("stop", "--force", check=False)


@contextmanager
def cluster(nodes: int = 2) -> Iterator[Cluster]:
    """Start a head and ``nodes - 1`` more nodes of one CPU each; always stop them."""
    root = Path(tempfile.mkdtemp(prefix="aqe-ray-"))
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    made = Cluster(root=root, port=_free_port(), env=env)
    try:
        made.start_head()
        for _ in range(nodes - 1):
            made.join()
        yield made
    finally:
        made.stop()
        # ``ray stop`` signals what it knows of; a raylet it missed must not outlive us.
        for pid in made.raylets():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
