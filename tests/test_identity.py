"""Worker identity as pytest-xdist gives it (env, fixtures, ``workerinput``) and a
``session.items`` that holds the worker's items: per-worker resources are distinct."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import RunAqe

#: Every test here starts processes (see conftest: the fast loop is -m "not e2e").
pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).parent / "fixtures" / "identity"
#: The last run's output (``_claims`` returns what the workers claimed).
_LAST: list[str] = [""]


def _claims(tmp_path: Path, run_aqe: RunAqe, *args: str, **env: str) -> dict[str, list[str]]:
    project = tmp_path / "identity"
    shutil.copytree(FIXTURE, project)
    claims = tmp_path / "claims"
    claims.mkdir()
    report = tmp_path / "report.json"
    result = run_aqe(
        "run",
        "-w",
        "2",
        "--no-history",
        "--json",
        str(report),
        *args,
        cwd=project,
        env={"CLAIMS": str(claims), **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "20 passed" in result.stdout
    assert "aqe: collected 20 tests, ran 20" in result.stdout
    assert json.loads(report.read_text())["collected"] == {"tests": 20, "ran": 20}
    _LAST[:] = [result.stdout]
    return {path.name: path.read_text().split() for path in claims.iterdir()}


def _check(claims: dict[str, list[str]], database: str | None) -> None:
    assert sorted(claims) == ["gw0", "gw1"]
    pids = {fields[0] for fields in claims.values()}
    uids = {fields[1] for fields in claims.values()}
    assert len(pids) == 2 and len(uids) == 1
    for name, (_, uid, env_id, env_count, env_uid, input_id, db, items, count) in claims.items():
        assert (env_id, input_id, env_count, env_uid) == (name, name, "2", uid)
        assert db == (database or "db_") + (name if database is None else "")
        assert int(items) > 0 and items == count  # the worker's own items, as under xdist


def test_each_worker_is_an_xdist_worker_with_its_own_resource(
    tmp_path: Path, run_aqe: RunAqe
) -> None:
    _check(_claims(tmp_path, run_aqe), database="main")


def test_a_plugin_that_decides_per_worker_in_configure_gets_its_decision(
    tmp_path: Path, run_aqe: RunAqe
) -> None:
    pytest.importorskip("xdist")
    _check(_claims(tmp_path, run_aqe, PER_WORKER_PLUGIN="1"), database=None)
    assert "plugins give each worker its own database (pytest_configure_node)" in _LAST[0]


def test_the_identity_fixtures_exist_without_pytest_xdist(
    tmp_path: Path, run_aqe: RunAqe
) -> None:
    _check(_claims(tmp_path, run_aqe, "--", "-p", "no:xdist"), database="main")


def test_a_conftest_that_names_its_resource_after_the_worker_at_import_gets_its_own(
    tmp_path: Path, run_aqe: RunAqe
) -> None:
    _check(_claims(tmp_path, run_aqe, PER_WORKER_ENV="1"), database=None)
    assert "aqe: conftest asked which xdist worker it runs in" in _LAST[0]
