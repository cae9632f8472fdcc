"""A test module parametrized over a registry that other test modules fill when
imported: aqe's workers collect the same ids as pytest's single process.

``tests/fixtures/registry``: ``test_a_shapes.py`` defines subclasses of
``shapes.Shape`` and ``shapes.Animal`` (an ``__init_subclass__`` registry) at
import; ``test_b_registry.py``, imported after it under pytest, parametrizes over
``Shape.__subclasses__()`` (including its own ``Hexagon``) and over the registry's
names. With two workers the two files go to different workers.
"""

from __future__ import annotations

from pathlib import Path

try:
    from parity import run_aqe, run_pytest
except ImportError:  # tests/ turned into a package
    from tests.parity import run_aqe, run_pytest

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "registry"

REGISTRY_IDS = {
    "test_b_registry.py::test_every_shape[Dot]",
    "test_b_registry.py::test_every_shape[Circle]",
    "test_b_registry.py::test_every_shape[Square]",
    "test_b_registry.py::test_every_shape[Hexagon]",
    "test_b_registry.py::test_every_animal[Cat]",
    "test_b_registry.py::test_every_animal[Dog]",
}


def test_workers_collect_the_ids_pytest_collects() -> None:
    plain = run_pytest(FIXTURE)
    assert plain.exit_code == 0, plain.output
    assert REGISTRY_IDS <= plain.outcomes.keys()  # the fixture does what it says
    assert len(plain.outcomes) == 16

    aqe = run_aqe(FIXTURE, workers=2)
    assert aqe.exit_code == 0, aqe.describe()
    assert aqe.outcomes == plain.outcomes, aqe.describe()
    # Exact, so nothing to warn about.
    assert "stayed alive" not in aqe.output and "may differ" not in aqe.output
