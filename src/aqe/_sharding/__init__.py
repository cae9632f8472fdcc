"""Shards: one suite split over N CI jobs by predicted time, and their outputs merged.

``_partition`` is the pure partition (every job computes the same one on its own);
``_estimate`` feeds it the planner's predictions; ``_pytest`` applies it where pytest
chooses the run's tests and plans ``aqe shards N``; ``_merge`` joins the shards' JSON
reports into one run (``aqe merge``).
"""

from __future__ import annotations

from ._partition import Constraints, Partition, ShardLoad, ShardTest, partition

__all__ = ["Constraints", "Partition", "ShardLoad", "ShardTest", "partition"]
