"""Merging shards' JSON reports: one run, and every conflict refused before anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aqe._exceptions import UsageError
from aqe._model import JunitOptions, RunRecord, TestResult
from aqe._reporting.json_report import ShardInfo, write_json_report
from aqe._sharding._merge import merge, merged_exit, read_output


def _write(
    tmp_path: Path, index: int, ids: list[str], *, count: int = 2, commit: str = "c0ffee",
    outcome: str = "passed", digest: str = "d1",
) -> Path:  # fmt: skip
    run = RunRecord(f"run{index}", 100.0 + index, ["aqe", "run"], "/proj", 2, end=110.0 + index,
                    git_commit=commit, exit_code=1 if outcome == "failed" else 0,
                    collected=len(ids), ran=len(ids),
                    junit=JunitOptions(suite_name="mine", family="xunit1"))  # fmt: skip
    run.tail_idle = {0: 0.5, 1: 0.25}
    for position, nodeid in enumerate(ids):
        run.results.append(TestResult(
            nodeid, nodeid.split("::")[0], 3, outcome, {"call": 0.5}, position % 2,  # type: ignore[arg-type]
            properties=(("answer", "42"),), xml_attributes=(("a", "b"),),
        ))  # fmt: skip
    info = ShardInfo(index, count, len(ids), 1.0, (1.0,) * count, (len(ids),) * count,
                     len(ids) * count, digest)  # fmt: skip
    path = tmp_path / f"shard{index}.json"
    write_json_report(run, path, info)
    return path


def test_shards_become_one_run(tmp_path: Path) -> None:
    one = _write(tmp_path, 1, ["t/a.py::test_1", "t/a.py::test_2"])
    two = _write(tmp_path, 2, ["t/b.py::test_3"], outcome="failed")
    merged = merge([read_output(two), read_output(one)], ["shard2.json", "shard1.json"])
    run = merged.run
    assert [r.nodeid for r in run.results] == ["t/a.py::test_1", "t/a.py::test_2", "t/b.py::test_3"]
    # The second shard's workers come after the first's: one lane per worker of every job.
    assert [r.worker for r in run.results] == [0, 1, 2]
    assert run.workers == 4 and run.tail_idle == {0: 0.5, 1: 0.25, 2: 0.5, 3: 0.25}
    assert (run.start, run.end) == (101.0, 112.0)
    assert run.git_commit == "c0ffee" and run.exit_code == 1
    assert run.collected == 3 and run.ran == 3
    assert run.junit == JunitOptions(suite_name="mine", family="xunit1")
    assert run.results[0].properties == (("answer", "42"),)
    assert run.results[0].xml_attributes == (("a", "b"),)
    assert merged.shard_of == {"t/a.py::test_1": 1, "t/a.py::test_2": 1, "t/b.py::test_3": 2}
    assert [s.shard.index for s in merged.shards] == [1, 2]
    assert merged.shards[0].actual == 1.0 and merged.shards[0].wall == 10.0


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"commit": "deadbeef"}, "shard1.json ran commit c0ffee but shard2.json ran commit "
                                 "deadbeef: shard outputs of different commits"),
        ({"count": 3}, "shard1.json is shard 1/2 but shard2.json is shard 2/3"),
        ({"digest": "d2"}, "shard1.json ran plan d1 but shard2.json ran plan d2: the "
                           "shards planned differently"),
        ({"ids": ["t/a.py::test_1"]}, "t/a.py::test_1 ran in shard1.json (shard 1) and in "
                                      "shard2.json (shard 2): overlapping shards"),
    ],
)  # fmt: skip
def test_conflicts_are_refused(tmp_path: Path, second: dict[str, object], message: str) -> None:
    one = _write(tmp_path, 1, ["t/a.py::test_1"])
    ids = second.pop("ids", ["t/b.py::test_2"])
    two = _write(tmp_path, 2, ids, **second)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as caught:
        merge([read_output(one), read_output(two)])
    assert str(caught.value).replace(str(tmp_path) + "/", "").startswith(message)


def test_the_same_shard_twice_or_one_missing(tmp_path: Path) -> None:
    one = _write(tmp_path, 1, ["t/a.py::test_1"])
    with pytest.raises(UsageError, match="are both shard 1/2"):
        merge([read_output(one), read_output(one)])
    with pytest.raises(UsageError, match="shard 2/2 missing"):
        merge([read_output(one)])


def test_what_is_no_shard_output(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    write_json_report(RunRecord("r", 1.0, [], "/", 1), plain)
    with pytest.raises(UsageError, match="is no shard's report"):
        read_output(plain)
    other = tmp_path / "other.json"
    other.write_text('{"schema": "something"}')
    with pytest.raises(UsageError, match="is not an aqe JSON report"):
        read_output(other)
    with pytest.raises(UsageError, match="cannot read shard output"):
        read_output(tmp_path / "missing.json")


def test_a_module_skipped_at_collection_is_kept_once(tmp_path: Path) -> None:
    paths = [_write(tmp_path, index, [f"t/x{index}.py::test"]) for index in (1, 2)]
    # Both shards collected (and skipped) t/skipped.py: not an overlap, one result.
    for path in paths:
        data = json.loads(path.read_text())
        data["tests"].append(dict(data["tests"][0], nodeid="t/skipped.py", file="t/skipped.py",
                                  outcome="skipped", when="collect"))  # fmt: skip
        path.write_text(json.dumps(data))
    merged = merge([read_output(p) for p in paths])
    assert [r.nodeid for r in merged.run.results].count("t/skipped.py") == 1


def test_the_suite_exit_code() -> None:
    assert merged_exit([0, 0]) == 0
    assert merged_exit([0, 1]) == 1
    assert merged_exit([1, 2]) == 2
    assert merged_exit([0, None]) == 3
    assert merged_exit([5, 5]) == 5


def test_a_shard_jobs_summary_shows_its_balance() -> None:
    from aqe._reporting.github import summary

    run = RunRecord("r", 1.0, [], "/", 2, end=3.0, exit_code=0)
    run.results.append(TestResult("t/a.py::test", "t/a.py", 1, "passed", {"call": 1.25}, 0))
    info = ShardInfo(2, 3, 1, 1.5, (1.5, 1.5, 1.0), (1, 1, 1), 3, "abc")
    text = summary(run, info)
    assert "#### Shard 2/3" in text
    assert "1 of 3 tests; predicted 1.50s, took 1.25s" in text
    assert "1.50 / 1.50 / 1.00 s, the slowest 1.12x the mean (plan abc)" in text
    assert "#### Shard" not in summary(run)
