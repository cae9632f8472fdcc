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
    #: Each node's temporary directory (head first), and how many are alive.
    nodes: list[Path] = field(default_factory=list)
    alive: int = 0

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
        self.alive += 1
        self.ray(
            "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(self.port),
            "--num-cpus", "1", "--num-gpus", "0", "--include-dashboard", "false",
            "--disable-usage-stats", "--temp-dir", str(folder),
        )  # fmt: skip

    def join(self) -> None:
        """One more node of one CPU (a raylet of its own on this machine)."""
        folder = self.root / f"node{len(self.nodes)}"
        folder.mkdir()
        self.ray(
            "start", "--address", self.address, "--node-ip-address", "127.0.0.1",
            "--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats",
            "--temp-dir", str(folder),
        )  # fmt: skip
        self.nodes.append(folder)
        self.alive += 1
        self.wait_for_nodes(self.alive)

    def wait_for_nodes(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.ray("status", "--address", self.address, check=False).stdout
            active = status.partition("Active:")[2].partition("Pending:")[0]
            if active.count("node_") >= count:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the Ray cluster did not reach {count} nodes in {timeout:g}s")

    def processes(self, folder: Path | None = None) -> list[int]:
        """This cluster's processes (or one node's: its ``folder``) and everything
        they started, read from /proc: Ray's own processes name their session
        directory, which lies under the node's temporary directory."""
        children: dict[int, list[int]] = {}
        seeds = []
        mine = _ancestors()
        mark = str(folder or self.root).encode()
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            pid = int(entry.name)
            children.setdefault(int(stat[1]), []).append(pid)
            if mark in cmdline and pid not in mine and stat[0] != "Z":
                seeds.append(pid)
        found, todo = set(), list(seeds)
        while todo:
            pid = todo.pop()
            if pid not in found:
                found.add(pid)
                todo.extend(children.get(pid, ()))
        return sorted(found)

    def kill_node(self, index: int) -> None:
        """Kill node ``index`` outright (its raylet and everything under it), as a
        lost machine would be: no goodbye to the head."""
        for pid in self.processes(self.nodes[index]):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        self.alive -= 1

    def stop(self) -> None:
        for pid in self.processes():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _ancestors() -> set[int]:
    """This process and those above it (their command lines may name the folder)."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


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
        # Not ``ray stop``: it ends every Ray process of this user on the machine.
        made.stop()
        shutil.rmtree(root, ignore_errors=True)
