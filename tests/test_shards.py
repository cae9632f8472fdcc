"""Shards end to end: ``aqe shards``, ``aqe run --shard I/N`` and ``aqe merge`` on a small
project, with the history moved as CI moves it (export, then import in each job)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import HANG_GUARD, MakeProject, RunAqe
from test_html import browser, open_report  # noqa: F401 (a fixture)

PROJECT = {
    "test_slow.py": """
        import time

        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_slow(n):
            time.sleep(0.15)
    """,
    "test_many.py": """
        import pytest

        @pytest.mark.parametrize("n", range(30))
        def test_tiny(n):
            assert n >= 0

        def test_broken():
            assert [1, 2] == [1, 3]
    """,
    "test_classes.py": """
        import pytest

        class TestA:
            def test_one(self):
                pass

            def test_two(self, record_property):
                record_property("answer", "42")

        @pytest.mark.serial(group="db")
        def test_db_one():
            pass

        @pytest.mark.serial(group="db")
        def test_db_two():
            pass

        def test_three():
            pass

        def test_four():
            pass
    """,
}


def _cases(path: Path) -> list[tuple[Any, ...]]:
    """JUnit testcases up to times, worker names and where they ran."""
    found = []
    for case in ET.parse(path).getroot().iter("testcase"):
        attrs = {k: v for k, v in case.attrib.items() if k != "time"}
        props = sorted(
            (p.get("name"), p.get("value"))
            for p in case.iter("property")
            if p.get("name") != "worker"
        )
        kids = [(child.tag, child.get("message")) for child in case if child.tag != "properties"]
        found.append((sorted(attrs.items()), props, kids))
    return sorted(found, key=repr)


def _finals(report: dict[str, Any]) -> dict[str, tuple[str, int]]:
    final: dict[str, tuple[str, int]] = {}
    for test in report["tests"]:
        final[test["nodeid"]] = (test["outcome"], test["attempt"])
    return final


@pytest.mark.e2e
def test_two_shards_and_their_merge_equal_the_unsharded_run(
    make_project: MakeProject,
    run_aqe: RunAqe,
    tmp_path: Path,
    browser: Any,  # noqa: F811 (test_html's fixture)
) -> None:
    root = make_project(PROJECT)
    full = run_aqe("run", "-w", "2", "--json", "full.json", "--junit-xml", "full.xml", cwd=root)
    assert full.returncode == 1, full.stdout + full.stderr
    exported = run_aqe("history", "export", str(tmp_path / "history.jsonl"), cwd=root)
    assert exported.returncode == 0, exported.stderr

    plan = run_aqe("shards", "2", "--json", cwd=root)
    assert plan.returncode == 0, plan.stderr
    planned = json.loads(plan.stdout)
    assert planned["from_history"] and planned["tests"] == 41
    shard_of = {n: s["index"] for s in planned["shards"] for n in s["nodeids"]}
    assert shard_of["test_classes.py::test_db_one"] == shard_of["test_classes.py::test_db_two"]
    assert all(s["tests"] for s in planned["shards"])

    codes = []
    for index in (1, 2):
        # Each CI job: a fresh history from the shared export, then its shard.
        history = tmp_path / f"job{index}.db"
        imported = run_aqe("history", "import", str(tmp_path / "history.jsonl"),
                           "--history", str(history), cwd=root)  # fmt: skip
        assert imported.returncode == 0, imported.stderr
        done = run_aqe(
            "run", "-w", "2", "--shard", f"{index}/2", "--history", str(history),
            "--json", f"shard{index}.json", "--junit-xml", f"shard{index}.xml", cwd=root,
        )  # fmt: skip
        assert f"aqe: shard {index}/2: " in done.stdout, done.stdout + done.stderr
        assert f"(plan {planned['digest']})" in done.stdout
        codes.append(done.returncode)
        report = json.loads((root / f"shard{index}.json").read_text())
        assert report["shard"]["index"] == index and report["shard"]["count"] == 2
        assert report["shard"]["digest"] == planned["digest"]
        assert report["shard"]["predicted"] > 0 and report["shard"]["actual"] > 0
        assert report["run"]["git_commit"] is None or isinstance(report["run"]["git_commit"], str)
        ids = {t["nodeid"] for t in report["tests"]}
        assert ids == {n for n, s in shard_of.items() if s == index}
    assert sorted(codes) == [0, 1]  # the failing test ran in one shard only

    merged = run_aqe(
        "merge", "shard1.json", "shard2.json", "--json", "merged.json", "--junit-xml",
        "merged.xml", "--html", "merged.html", "--history", str(tmp_path / "merged.db"), cwd=root,
    )  # fmt: skip
    assert merged.returncode == 1, merged.stdout + merged.stderr
    assert "shard 1/2:" in merged.stdout and "predicted" in merged.stdout
    assert "aqe: merged 2 shards into run " in merged.stdout
    unsharded = json.loads((root / "full.json").read_text())
    joined = json.loads((root / "merged.json").read_text())
    assert _finals(joined) == _finals(unsharded)
    assert len(joined["tests"]) == len({t["nodeid"] for t in joined["tests"]})
    assert joined["outcomes"] == unsharded["outcomes"]
    assert joined["collected"] == unsharded["collected"]
    assert [s["index"] for s in joined["shards"]] == [1, 2]
    assert _cases(root / "merged.xml") == _cases(root / "full.xml")
    recorded = run_aqe("history", "--history", str(tmp_path / "merged.db"), cwd=root)
    assert "40 passed, 1 failed" in recorded.stdout, recorded.stdout + recorded.stderr
    # The merged page: the shards' balance, and a filter by shard.
    page, errors = open_report(browser, root / "merged.html")
    assert page.locator("#shards-section").is_visible()
    assert page.locator("#shards tbody tr").count() == 2
    assert "Balance: the slowest shard" in page.inner_text("#shards-hint")
    from playwright.sync_api import expect

    count = page.locator("#f-count")
    expect(count).to_have_text("41 matches", timeout=HANG_GUARD * 1000)
    first = sum(1 for s in shard_of.values() if s == 1)
    page.select_option("#f-shard", "1")
    expect(count).to_have_text(f"{first} matches", timeout=HANG_GUARD * 1000)
    assert errors == []


@pytest.mark.e2e
def test_bad_shards_and_bad_merges_are_one_line(
    make_project: MakeProject, run_aqe: RunAqe, tmp_path: Path
) -> None:
    root = make_project({"test_one.py": "def test_a():\n    pass\n\ndef test_b():\n    pass\n"})
    for given in ("0/4", "5/4", "a/b", "1/0"):
        done = run_aqe("run", "--shard", given, cwd=root)
        assert done.returncode == 4
        assert done.stderr == (
            "aqe: error: option --shard: expected I/N with 1 <= I <= N (e.g. 1/4), "
            f"got '{given}'\n"
        )
    # One file of two tests, three shards: one shard has nothing to do, and says so.
    outputs = []
    for index in (1, 2, 3):
        done = run_aqe("run", "-w", "1", "--shard", f"{index}/3", "--no-history",
                       "--json", f"s{index}.json", cwd=root)  # fmt: skip
        outputs.append(done)
    # Planned by files, without history: the file is shared by the three shards
    # (each collects it and keeps its share of the tests, dealt in turn by id).
    ran = [len(json.loads((root / f"s{i}.json").read_text())["tests"]) for i in (1, 2, 3)]
    assert ran == [1, 1, 0], [done.stdout for done in outputs]
    assert sorted(done.returncode for done in outputs) == [0, 0, 0]
    nothing = run_aqe("run", "--shard", "1/2", "-k", "no_such_test", "--no-history", cwd=root)
    assert nothing.returncode == 5
    assert "aqe: shard 1/2: no tests selected" in nothing.stdout

    report = json.loads((root / "s2.json").read_text())
    report["run"]["git_commit"] = "0" * 40
    (root / "other.json").write_text(json.dumps(report))
    (root / "broken.json").write_text("{")
    cases = {
        ("s1.json", "s1.json", "s3.json"): "aqe: error: s1.json and s1.json are both shard 1/3\n",
        ("s1.json", "s2.json"): "aqe: error: shard 3/3 missing: give every shard's JSON report\n",
        ("s1.json", "broken.json"): "aqe: error: shard output broken.json is not JSON: ",
        ("s1.json", "nowhere.json"): "aqe: error: cannot read shard output nowhere.json: ",
        ("s1.json", "other.json", "s3.json"): "aqe: error: s1.json ran ",
    }
    for inputs, message in cases.items():
        done = run_aqe("merge", *inputs, "--json", "merged.json", "--html", "merged.html",
                       "--history", str(tmp_path / "m.db"), cwd=root)  # fmt: skip
        assert done.returncode == 4, done.stderr
        assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
        assert not (root / "merged.json").exists() and not (root / "merged.html").exists()
        assert not (tmp_path / "m.db").exists()
    assert "shard outputs of different commits" in done.stderr


@pytest.mark.e2e
def test_an_import_file_cut_short_imports_nothing(
    make_project: MakeProject, run_aqe: RunAqe, tmp_path: Path
) -> None:
    root = make_project({"test_one.py": "def test_a():\n    pass\n"})
    for _ in range(2):
        assert run_aqe("run", "-w", "1", cwd=root).returncode == 0
    export = tmp_path / "history.jsonl"
    assert run_aqe("history", "export", str(export), cwd=root).returncode == 0
    lines = export.read_text().splitlines(keepends=True)
    assert len(lines) == 3  # the header and two runs
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])
    target = tmp_path / "job.db"
    done = run_aqe("history", "import", str(export), str(cut), "--history", str(target), cwd=root)
    assert done.returncode == 4
    assert done.stderr == f"aqe: error: {cut}:3 is not JSON: not an aqe history export\n"
    assert not target.exists()
    missing = run_aqe("history", "import", str(tmp_path / "nope.jsonl"), "--history",
                      str(target), cwd=root)  # fmt: skip
    assert missing.returncode == 4 and missing.stderr.startswith("aqe: error: cannot read ")
    assert not target.exists()


GENERATED = {
    # Classes made at collection, as SQLAlchemy makes one per database dialect: their
    # ids cannot be given back to pytest, and a shard must still find them.
    "test_gen.py": """
        import time

        def _make(name):
            class Case:
                def test_a(self):
                    time.sleep(0.05)

                def test_b(self):
                    time.sleep(0.05)

            Case.__name__ = Case.__qualname__ = f"Test_{name}"
            return Case

        for _dialect in ("sqlite+pysqlite_3", "postgresql+psycopg_16", "mysql+pymysql_8",
                         "oracle+oracledb_23", "mssql+pyodbc_2022", "duckdb_1"):
            globals()[f"Test_{_dialect}"] = _make(_dialect)
    """,
    "test_serial_a.py": """
        import pytest

        @pytest.mark.serial(group="db")
        def test_writes():
            pass
    """,
    "test_serial_b.py": """
        import pytest

        @pytest.mark.serial(group="db")
        def test_reads():
            pass
    """,
    "test_plain.py": """
        import pytest

        @pytest.mark.parametrize("n", range(10))
        def test_plain(n):
            assert n < 10
    """,
    # Under pytest every test module is imported before the first test, and suites
    # lean on it (click's own): a shard makes the imports of the files it leaves out.
    "helpers/__init__.py": "",
    "helpers/sub.py": "VALUE = 1\n",
    "test_importer.py": """
        import helpers.sub

        def test_imports():
            assert helpers.sub.VALUE == 1
    """,
    "test_relies.py": """
        import helpers

        def test_relies_on_another_file_importing_sub():
            assert helpers.sub.VALUE == 1
    """,
}


@pytest.mark.e2e
def test_shards_planned_by_files_cover_the_suite_once_with_and_without_history(
    make_project: MakeProject, run_aqe: RunAqe, tmp_path: Path
) -> None:
    root = make_project(GENERATED)
    full = run_aqe("run", "-w", "2", "--json", "full.json", cwd=root)
    assert full.returncode == 0, full.stdout + full.stderr
    everything = _finals(json.loads((root / "full.json").read_text()))
    assert len(everything) == 26 and set(everything.values()) == {("passed", 1)}
    export = tmp_path / "history.jsonl"
    assert run_aqe("history", "export", str(export), cwd=root).returncode == 0
    planned = json.loads(run_aqe("shards", "3", "--json", cwd=root).stdout)
    shard_of = {n: s["index"] for s in planned["shards"] for n in s["nodeids"]}
    # The long file is cut between shards (at its generated classes; how many shards
    # share it depends on the history's timings, aqe's per-test cost among them), the
    # files of one serial group share a shard whole.
    assert len({s for n, s in shard_of.items() if n.startswith("test_gen.py")}) >= 2
    assert shard_of["test_serial_a.py::test_writes"] == shard_of["test_serial_b.py::test_reads"]

    for history in (True, False):
        union: list[str] = []
        finals: dict[str, tuple[str, int]] = {}
        for index in (1, 2, 3):
            where = ["--no-history"]
            if history:
                db = tmp_path / f"job{index}.db"
                run_aqe("history", "import", str(export), "--history", str(db), cwd=root)
                where = ["--history", str(db)]
            done = run_aqe("run", "-w", "2", "--shard", f"{index}/3", *where,
                           "--json", f"s{index}.json", cwd=root)  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            assert "test files" in done.stdout, done.stdout  # planned by files
            report = json.loads((root / f"s{index}.json").read_text())
            if history:
                assert report["shard"]["digest"] == planned["digest"]
            union += [t["nodeid"] for t in report["tests"]]
            finals.update(_finals(report))
        assert sorted(union) == sorted(everything), history  # every id once
        assert finals == everything

    # -m deselects where each shard collects its files: still planned by files.
    marked = run_aqe("run", "-w", "1", "--shard", "1/2", "--no-history", "-m", "not slow",
                     "--json", "m.json", cwd=root)  # fmt: skip
    assert marked.returncode == 0, marked.stdout + marked.stderr
    assert "test files" in marked.stdout
    # -k selects inside files: the shard collects the whole suite, and says why.
    picked = run_aqe("run", "-w", "1", "-v", "--shard", "1/2", "--no-history", "-k", "plain",
                     cwd=root)  # fmt: skip
    assert picked.returncode == 0, picked.stdout + picked.stderr
    assert "planned from the whole suite's collection" in picked.stdout
    assert "-k selects tests inside files" in picked.stdout
