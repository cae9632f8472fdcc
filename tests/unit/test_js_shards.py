"""``--shard I/N`` for file-based adapters (Vitest, Jest) and mixed runs: the pure
parts. Every job must compute the same split, each file in exactly one shard."""

from __future__ import annotations

from aqe._adapters._mixed import merged_shard
from aqe._adapters._shards import shard_files
from aqe.plugins import ShardInfo

FILES = {f"src/f{i}.test.ts": None for i in range(10)}
SIZES = {file: 1000 * (i + 1) for i, file in enumerate(FILES)}


def test_every_file_is_in_exactly_one_shard_and_every_job_agrees() -> None:
    shards = [shard_files(FILES, SIZES, (index, 3)) for index in (1, 2, 3)]
    kept = [file for shard in shards for file in shard.files]
    assert sorted(kept) == sorted(FILES)
    assert len({shard.info.digest for shard in shards}) == 1
    again = shard_files(dict(reversed(list(FILES.items()))), SIZES, (2, 3))
    assert again == shards[1]  # not the order the files came in
    info = shards[0].info
    assert (info.index, info.count, info.total) == (1, 3, 10)
    assert sum(info.planned_tests) == 10 and len(info.planned) == 3


def test_timed_files_weigh_their_seconds_untimed_ones_their_size_at_the_timed_rate() -> None:
    # One slow file the history knows outweighs the rest together: it is a shard alone.
    seconds: dict[str, float | None] = dict.fromkeys(FILES, 1.0)
    seconds["src/f0.test.ts"] = 100.0
    first, second = (shard_files(seconds, SIZES, (i, 2), {"src/f0.test.ts": 40}) for i in (1, 2))
    alone = first if "src/f0.test.ts" in first.files else second
    assert alone.files == ("src/f0.test.ts",)
    assert alone.info.tests == 40  # the history's count of its tests
    assert (first.info.tests + second.info.tests, alone.info.predicted) == (49, 100.0)
    # An untimed file: its bytes at the timed files' rate (2 s for 1,000 bytes).
    whole = shard_files(
        {"a.test.ts": 2.0, "b.test.ts": None}, {"a.test.ts": 1000, "b.test.ts": 3000}, (1, 1)
    )
    assert whole.info.predicted == 8.0


def test_an_empty_selection_is_an_empty_shard() -> None:
    shard = shard_files({}, {}, (1, 2))
    assert shard.files == () and shard.info.total == 0


def test_a_mixed_runs_shard_adds_up_its_parts() -> None:
    python = ShardInfo(1, 2, 5, 3.0, (3.0, 2.0), (5, 4), 9, "aaa")
    script = ShardInfo(1, 2, 7, 1.5, (1.5, 2.5), (7, 6), 13, "bbb")
    both = merged_shard([python, script])
    assert both is not None
    assert (both.tests, both.predicted, both.planned, both.planned_tests, both.total) == (
        12,
        4.5,
        (4.5, 4.5),
        (12, 10),
        22,
    )
    assert both.digest not in ("aaa", "bbb")
    assert merged_shard([python]) == python
    assert merged_shard([]) is None
