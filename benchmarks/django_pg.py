r"""pytest-django on a real PostgreSQL server: plain pytest, then ``aqe run -w N``.

This starts a private PostgreSQL cluster (``initdb``/``pg_ctl`` as the ``postgres``
user, on a loopback port, in a temporary directory, every statement logged), runs a
real Django project's suite against it with plain pytest and with aqe
(``benchmarks/realworld.py``'s runs and per-test comparison), and then proves from the
server's log and catalog that

* plain pytest created and used ``test_<name>``; aqe's workers created and used
  ``test_<name>_gw0`` ... ``test_<name>_gw<N-1>`` (each got ``INSERT``\ s), as
  pytest-xdist's do (``pytest -n N`` runs third, when the venv has pytest-xdist);
* no test statement ran in the configured database ``<name>``, which still has no
  table, and its row counters in ``pg_stat_database`` did not move;
* every test database was dropped at the end.

It stops the cluster and removes its directory at the end, on failure too. Exit 0 when
every test id has the same outcome under both tools and every check holds, 1 otherwise,
2 when a tool or the server could not run.

The project must read its database from the environment; the variables are the ones
django-model-utils' ``tests/settings.py`` reads (``POSTGRES_HOST``, ``POSTGRES_PORT``,
``POSTGRES_USER``, ``POSTGRES_DB``), and the project directory is put on ``PYTHONPATH``
(its settings module is ``tests.settings``). Set-up used (Debian's PostgreSQL 15)::

    apt-get update && apt-get install -y postgresql     # if /usr/lib/postgresql/15 is missing
    mkdir -p /work/django-pg/sdists && cd /work/django-pg
    pip download -d sdists --no-deps --no-binary :all: django-model-utils==5.0.0
    tar xzf sdists/django_model_utils-5.0.0.tar.gz
    python3 -m venv venv
    venv/bin/pip install -e /work/main                  # aqe
    venv/bin/pip install -e django_model_utils-5.0.0 'Django==5.1.*' pytest-django \
        psycopg2-binary time-machine pytest-xdist
    python3 /work/main/benchmarks/django_pg.py django_model_utils-5.0.0 \
        --python venv/bin/python
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# After the sys.path tweak, so the script runs from any cwd.
from realworld import clip, compare, counts, has_xdist, run_aqe, run_plain

PG_BIN = Path("/usr/lib/postgresql/15/bin")

#: Appended to the cluster's postgresql.conf: loopback only, every statement and
#: connection logged with its database, and no durability (a throw-away cluster).
CONFIG = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{sockets}'
log_statement = 'all'
log_connections = on
log_line_prefix = '%m [%p] db=%d '
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
"""

_LINE = re.compile(r"\[\d+\] db=(?P<db>\S*) LOG:\s+(?:statement|execute [^:]*): (?P<sql>.*)")
_CREATE = re.compile(r'CREATE DATABASE "?(?P<name>[\w-]+)"?', re.IGNORECASE)
_DROP = re.compile(r'DROP DATABASE (?:IF EXISTS )?"?(?P<name>[\w-]+)"?', re.IGNORECASE)


class ServerError(Exception):
    """The cluster could not be made, started or queried."""


@dataclass
class Activity:
    """What the server's log says one run did."""

    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    statements: collections.Counter[str] = field(default_factory=collections.Counter)
    inserts: collections.Counter[str] = field(default_factory=collections.Counter)

    def summary(self) -> str:
        lines = [f"  created {self.created or '-'}, dropped {self.dropped or '-'}"]
        for db, n in sorted(self.statements.items()):
            lines.append(f"  db={db or '-':24} {n:6} statements, {self.inserts[db]:5} INSERTs")
        return "\n".join(lines)


def activity(log: Path, start: int) -> Activity:
    """Parse the server log from byte ``start`` on."""
    found = Activity()
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", errors="replace")
    for line in text.splitlines():
        match = _LINE.search(line)
        if match is None:
            continue
        db, sql = match["db"], match["sql"]
        found.statements[db] += 1
        if sql.lstrip().upper().startswith("INSERT"):
            found.inserts[db] += 1
        if created := _CREATE.search(sql):
            found.created.append(created["name"])
        elif dropped := _DROP.search(sql):
            found.dropped.append(dropped["name"])
    return found


@dataclass
class Cluster:
    """A private PostgreSQL cluster: its directory, port, log and owner."""

    root: Path
    port: int
    owner: str

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def as_owner(self, *command: str | Path) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the cluster's owner (``runuser`` when we are root)."""
        argv = [str(part) for part in command]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", self.owner, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise ServerError(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip()}")
        return done

    def sql(self, database: str, query: str) -> list[list[str]]:
        """Rows of ``query`` in ``database`` (as the superuser, over TCP)."""
        argv = [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"]
        argv += ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database]
        done = subprocess.run(
            [*argv, "-c", query], capture_output=True, text=True, check=False, timeout=60
        )
        if done.returncode != 0:
            raise ServerError(f"psql {database}: {done.stderr.strip()}")
        return [row.split("\t") for row in done.stdout.splitlines() if row]

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def cluster(port: int) -> Iterator[Cluster]:
    """Make and start a cluster; stop it and remove its directory however we leave."""
    for binary in ("initdb", "pg_ctl", "psql"):
        if not (PG_BIN / binary).exists():
            raise ServerError(
                f"{PG_BIN / binary} is missing (apt-get update && apt-get install -y postgresql)"
            )
    owner = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    root = Path(tempfile.mkdtemp(prefix="aqe-pg-"))
    made = Cluster(root, port, owner)
    started = False
    try:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(owner)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        made.as_owner(
            PG_BIN / "initdb", "-D", made.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        with (made.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(CONFIG.format(port=port, sockets=root))
        made.as_owner(PG_BIN / "pg_ctl", "-D", made.data, "-l", made.log, "-w", "start")
        started = True
        yield made
    finally:
        if started:
            with contextlib.suppress(ServerError, subprocess.TimeoutExpired):
                made.as_owner(PG_BIN / "pg_ctl", "-D", made.data, "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def row_counters(made: Cluster, database: str) -> tuple[int, ...]:
    """The rows the server counts as inserted, updated and deleted in ``database``."""
    query = (
        "SELECT tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
        f"WHERE datname = '{database}'"
    )
    return tuple(int(value) for value in made.sql("postgres", query)[0])


def tables(made: Cluster, database: str) -> list[str]:
    query = "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname = 'public'"
    return [row[0] for row in made.sql(database, query)]


def check(runs: dict[str, Activity], configured: str, workers: int) -> list[str]:
    """Each broken expectation about the runs' databases, as a line."""
    problems: list[str] = []
    test_name = f"test_{configured}"
    workers_names = [f"{test_name}_gw{n}" for n in range(workers)]
    expected = {"pytest": [test_name], "aqe": workers_names, "xdist": workers_names}
    for tool, names in expected.items():
        if tool not in runs:
            continue
        seen = runs[tool]
        if sorted(seen.created) != names:
            problems.append(f"{tool} created {seen.created}, expected {names}")
        if sorted(seen.dropped) != names:
            problems.append(f"{tool} dropped {seen.dropped}, expected {names}")
        for name in names:
            if seen.inserts[name] == 0:
                problems.append(f"{tool}: no INSERT in {name}")
        if seen.statements[configured]:
            problems.append(f"{tool}: {seen.statements[configured]} statements in {configured}")
        stray = set(seen.statements) - {*names, configured, "postgres", ""}
        if stray:
            problems.append(f"{tool}: statements in other databases {sorted(stray)}")
    return problems


def _stop(signum: int, _frame: object) -> None:
    """Ctrl-C or SIGTERM: kill the run in progress (a session of its own, which no
    terminal signal reaches), then unwind through the finally that stops the server."""
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
            if fields.get("PPid", "").strip() == me and status.parent.name != me:
                os.killpg(int(status.parent.name), signal.SIGKILL)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        description="Run a pytest-django suite on a private PostgreSQL with pytest and aqe.",
        epilog="Arguments after -- go to both pytest and aqe.",
    )
    parser.add_argument("project", type=Path, help="the Django project (where pytest runs)")
    parser.add_argument("--python", type=Path, required=True, help="python of its venv")
    parser.add_argument("--workers", type=int, default=2, help="aqe -w (default 2)")
    parser.add_argument("--database", default="modelutils", help="configured database name")
    parser.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run (900)")
    parser.add_argument("--out-dir", type=Path, help="keep the logs and the aqe JSON here")
    parser.add_argument("-q", "--quiet", action="store_true", help="no failure texts")
    opts = parser.parse_args(argv)
    opts.cwd_on_path = False
    project: Path = opts.project.resolve()
    python = Path(os.path.normpath(opts.python.absolute()))
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    with contextlib.ExitStack() as stack:
        if opts.out_dir:
            work = opts.out_dir.resolve()
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aqe-djpg-")))
        try:
            made = stack.enter_context(cluster(opts.port or free_port()))
            made.sql("postgres", f'CREATE DATABASE "{opts.database}"')
            before = row_counters(made, opts.database)
        except ServerError as error:
            print(f"django_pg: error: {error}")
            return 2
        print(f"project: {project}\npython:  {python}")
        print(f"server:  PostgreSQL 15 on 127.0.0.1:{made.port}, as {made.owner}")
        os.environ.update(
            POSTGRES_HOST="127.0.0.1",
            POSTGRES_PORT=str(made.port),
            POSTGRES_USER="postgres",
            POSTGRES_DB=opts.database,
            PYTHONPATH=os.pathsep.join(filter(None, [str(project), os.environ.get("PYTHONPATH")])),
        )
        runs: dict[str, Activity] = {}
        start = made.log_size()
        plain = run_plain(python, project, extra, work, "pytest-1", opts)
        runs["pytest"] = activity(made.log, start)
        start = made.log_size()
        aqe = run_aqe(python, project, extra, work, "aqe", opts)
        runs["aqe"] = activity(made.log, start)
        tools = [plain, aqe]
        if has_xdist(python):
            start = made.log_size()
            tools.append(
                run_plain(python, project, [*extra, "-n", str(opts.workers)], work, "xdist", opts)
            )
            runs["xdist"] = activity(made.log, start)
        broken = [tool for tool in tools if not tool.ok]
        for tool in broken:
            print(f"{tool.name} wrote no outcomes (exit {tool.exit_code}):")
            print(f"  $ {' '.join(tool.command)}\n{clip(tool.output, 30)}")
        if broken:
            return 2
        print()
        mismatches = compare([plain], aqe, not opts.quiet)
        if len(tools) > 2:
            xdist = tools[2]
            print(
                f"(pytest -n {opts.workers}: exit {xdist.exit_code}, {len(xdist.outcomes)} tests: "
                f"{counts(xdist.outcomes)}  ({xdist.seconds:.1f} s))"
            )
        for tool, seen in runs.items():
            print(f"\nserver log during the {tool} run:\n{seen.summary()}")
        after = row_counters(made, opts.database)
        left = tables(made, opts.database)
        databases = [row[0] for row in made.sql("postgres", "SELECT datname FROM pg_database")]
        print(
            f"\n{opts.database}: tables {left or 'none'}; "
            f"rows inserted/updated/deleted {before} before, {after} after"
        )
        print(f"databases left on the server: {sorted(databases)}")
        problems = check(runs, opts.database, opts.workers)
        if left:
            problems.append(f"{opts.database} has tables {left}")
        if after != before:
            problems.append(f"{opts.database}'s row counters moved: {before} -> {after}")
        leftover = [name for name in databases if name.startswith("test_")]
        if leftover:
            problems.append(f"test databases left: {leftover}")
        for problem in problems:
            print(f"CHECK FAILED: {problem}")
        if not problems:
            print("DATABASES: each run used only its own test databases, and dropped them.")
    return 1 if mismatches or problems else 0


if __name__ == "__main__":
    sys.exit(main())
