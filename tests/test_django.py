"""pytest-django under aqe's workers: each worker creates and uses its own test
databases (``<TEST NAME>_gw<n>``, as under pytest-xdist) and the project's configured
databases are left alone, with several workers and with one, and when a test reaches a
worker after that worker has set its databases up."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import RunAqe

#: Every test here starts processes (see conftest: the fast loop is -m "not e2e").
pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).parent / "fixtures" / "django_project"
TESTS = 13
#: The configured databases (settings NAME) of the fixture project.
CONFIGURED = ("configured.sqlite3", "other.sqlite3")

Records = list[tuple[str, str, str]]


def _configured_database(path: Path) -> bytes:
    """A project's own database as a developer has it, with the model's table and a
    row: tests run on it by mistake would pass and change it. Returns its bytes."""
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TABLE shop_order (id INTEGER PRIMARY KEY, code TEXT UNIQUE)")
        db.execute("INSERT INTO shop_order (code) VALUES ('real customer')")
    db.close()
    return path.read_bytes()


def _records(records: Path, kind: str) -> Records:
    """(test id or '-', database NAME, worker_id) of each attempt, from ``kind-<pid>``."""
    found: Records = []
    for path in records.glob(f"{kind}-*"):
        for line in path.read_text(encoding="utf-8").splitlines():
            fields = line.split()
            found.append((fields[0], fields[1], fields[2]) if kind == "db" else ("-", *fields))
    return found


def _run(tmp_path: Path, run_aqe: RunAqe, *args: str, **env: str) -> tuple[Path, str, str]:
    """Run the fixture project with its configured databases in place; check they
    are unchanged and every test database is gone afterwards. Returns the records
    directory, the TEST NAMEs and the output."""
    project = tmp_path / "django_project"
    shutil.copytree(FIXTURE, project)
    databases, records = tmp_path / "db", tmp_path / "records"
    databases.mkdir()
    records.mkdir()
    before = {name: _configured_database(databases / name) for name in CONFIGURED}

    env = {"SHOP_DB_DIR": str(databases), "SHOP_RECORDS": str(records), **env}
    result = run_aqe("run", "--no-history", *args, cwd=project, env=env, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    # pytest-django destroyed each worker's test databases at its session's end, and
    # no test opened a configured one: they are the same to the byte.
    assert sorted(path.name for path in databases.iterdir()) == sorted(CONFIGURED)
    assert {name: (databases / name).read_bytes() for name in CONFIGURED} == before
    return records, str(databases / "test.sqlite3"), result.stdout


@pytest.mark.parametrize("workers", [2, 1])
def test_each_worker_has_its_own_test_database_and_the_configured_one_is_untouched(
    tmp_path: Path, run_aqe: RunAqe, workers: int
) -> None:
    records, test_name, out = _run(tmp_path, run_aqe, "-w", str(workers))
    assert f"{TESTS} passed" in out, out
    seen = _records(records, "db")
    assert sorted(nodeid for nodeid, _, _ in seen) == sorted({nodeid for nodeid, _, _ in seen})
    assert len(seen) == TESTS
    used = {(database, worker) for _, database, worker in seen}
    assert sorted(used) == [(f"{test_name}_gw{n}", f"gw{n}") for n in range(workers)]


def test_a_test_on_another_database_retried_on_a_set_up_worker_gets_its_test_database(
    tmp_path: Path, run_aqe: RunAqe
) -> None:
    """The retry goes to the other worker (when it is still up: aqe's choice), whose
    databases were set up for its own tests, none of which used the second database:
    pytest-django must still give the test that worker's test copy of it, never the
    configured one (``_run`` checks both configured files are unchanged)."""
    records, test_name, out = _run(
        tmp_path, run_aqe, "-w", "2", "--retries", "1", SHOP_FAIL_ONCE="1"
    )
    assert f"{TESTS - 1} passed, 1 flaky" in out, out
    other = _records(records, "other")
    other_name = test_name.replace("test.sqlite3", "test_other.sqlite3")
    assert len(other) == 2
    assert all(database == f"{other_name}_{worker}" for _, database, worker in other)
    default = {(database, worker) for _, database, worker in _records(records, "db")}
    assert sorted(default) == [(f"{test_name}_gw{n}", f"gw{n}") for n in range(2)]
