"""pytest-django under aqe's workers: each worker creates and uses its own test
database (``<TEST NAME>_gw<n>``, as under pytest-xdist) and the project's configured
database is left alone, with several workers and with one."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import RunAqe

FIXTURE = Path(__file__).parent / "fixtures" / "django_project"
TESTS = 12


def _configured_database(path: Path) -> bytes:
    """The project's own database as a developer has it, with the model's table and
    a row: tests run on it by mistake would pass and change it. Returns its bytes."""
    db = sqlite3.connect(path)
    with db:
        db.execute("CREATE TABLE shop_order (id INTEGER PRIMARY KEY, code TEXT UNIQUE)")
        db.execute("INSERT INTO shop_order (code) VALUES ('real customer')")
    db.close()
    return path.read_bytes()


def _records(records: Path) -> dict[str, tuple[str, str]]:
    """Per test id, the (database NAME, worker_id) the test recorded."""
    seen: dict[str, tuple[str, str]] = {}
    for path in records.iterdir():
        for line in path.read_text(encoding="utf-8").splitlines():
            nodeid, database, worker = line.split()
            assert nodeid not in seen, f"{nodeid} ran twice"
            seen[nodeid] = (database, worker)
    return seen


@pytest.mark.parametrize("workers", [2, 1])
def test_each_worker_has_its_own_test_database_and_the_configured_one_is_untouched(
    tmp_path: Path, run_aqe: RunAqe, workers: int
) -> None:
    project = tmp_path / "django_project"
    shutil.copytree(FIXTURE, project)
    databases, records = tmp_path / "db", tmp_path / "records"
    databases.mkdir()
    records.mkdir()
    configured = databases / "configured.sqlite3"
    before = _configured_database(configured)

    env = {"SHOP_DB_DIR": str(databases), "SHOP_RECORDS": str(records)}
    result = run_aqe("run", "-w", str(workers), "--no-history", cwd=project, env=env, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{TESTS} passed" in result.stdout, result.stdout
    seen = _records(records)
    assert len(seen) == TESTS
    used = {(database, worker) for database, worker in seen.values()}
    test_name = databases / "test.sqlite3"
    assert sorted(used) == [(f"{test_name}_gw{n}", f"gw{n}") for n in range(workers)]
    # pytest-django destroyed each worker's test database at its session's end, and no
    # test opened the configured one: it is the same to the byte.
    assert [path.name for path in databases.iterdir()] == [configured.name]
    assert configured.read_bytes() == before
