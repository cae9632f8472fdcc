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

import pytest
from conftest import MakeProject, RunAqe

try:
    from parity import run_aqe, run_pytest
except ImportError:  # tests/ turned into a package
    from tests.parity import run_aqe, run_pytest

#: Every test here starts processes (see conftest: the fast loop is -m "not e2e").
pytestmark = pytest.mark.e2e

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


def test_a_class_a_registry_keeps_from_the_first_import_is_named(
    make_project: MakeProject, run_aqe: RunAqe
) -> None:
    # The registry holds its classes strongly: test_b's Hexagon of the first import
    # cannot be forgotten, so its ids may differ from pytest's; aqe says so.
    project = make_project(
        {
            "shapes.py": """
                SHAPES: list[type] = []

                class Shape:
                    def __init_subclass__(cls) -> None:
                        SHAPES.append(cls)
            """,
            "test_a.py": """
                from shapes import Shape

                class Circle(Shape):
                    pass

                def test_a() -> None:
                    pass
            """,
            "test_b.py": """
                import pytest
                from shapes import SHAPES, Shape

                class Hexagon(Shape):
                    pass

                @pytest.mark.parametrize("cls", SHAPES)
                def test_b(cls: type) -> None:
                    pass
            """,
        }
    )
    result = run_aqe("run", "-w", "2", "--no-history", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "aqe: test_b.py was collected again after the test modules before it were imported "
        "(it parametrizes over what they define), but Hexagon of its first import stayed in "
        "a registry: its tests may differ from pytest's"
    ) in result.stdout + result.stderr
