"""A private PostgreSQL cluster for the tests: ``initdb`` in a temporary directory,
``pg_ctl start`` on a free loopback port, stopped and removed at the end.

Why a real server: the history's PostgreSQL dialect, its transactions under many
writers and libpq's error wording can only be checked against PostgreSQL itself. The
server refuses to run as root, so when we are root the cluster belongs to the
``postgres`` user (``runuser``). A missing ``initdb`` fails loudly (CI has it), never
skips: a silently skipped store is an untested store.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Where Debian's and a source build's binaries live.
_BIN_DIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin")

#: A throw-away cluster: loopback only, no durability, room for many writers.
_CONF = """
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 60
"""

PASSWORD = "s3cret-pw"


def binary(name: str) -> str:
    for folder in _BIN_DIRS:
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed (apt-get install postgresql): "
            "the postgres tests need a real server"
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    root: Path
    port: int
    owner: str | None  # None: we run as ourselves

    def as_owner(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.owner, "--"] if self.owner else []
        return subprocess.run(
            [*prefix, *command], capture_output=True, text=True, check=check, timeout=60
        )

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement as the superuser over the private socket."""
        done = self.as_owner(
            binary("psql"), "-h", str(self.root), "-p", str(self.port), "-d", database,
            "-U", "postgres", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", statement,
        )  # fmt: skip
        return done.stdout.strip()

    def start(self) -> None:
        self.as_owner(
            binary("pg_ctl"), "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
            "-w", "-t", "60", "-o", f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1",
            "start",
        )  # fmt: skip

    def stop(self, check: bool = True) -> None:
        self.as_owner(
            binary("pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop",
            check=check,
        )  # fmt: skip

    def url(self, database: str, password: str = PASSWORD, user: str = "aqe") -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database owned by the ``aqe`` user; its URL."""
        self.sql(f'CREATE DATABASE "{name}" OWNER aqe')
        return self.url(name)


@contextmanager
def cluster() -> Iterator[Cluster]:
    """Start a private cluster with a password-protected ``aqe`` user; always clean up."""
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="aqe-pg-"))
    started = False
    made = Cluster(root=root, port=_free_port(), owner=owner)
    try:
        if owner is not None:
            user = pwd.getpwnam(owner)
            os.chown(root, user.pw_uid, user.pw_gid)
        data = root / "data"
        made.as_owner(
            binary("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
            "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(_CONF)
        made.start()
        started = True
        made.sql(f"CREATE ROLE aqe LOGIN PASSWORD '{PASSWORD}'")
        yield made
    finally:
        if started:
            made.stop(check=False)
        shutil.rmtree(root, ignore_errors=True)
