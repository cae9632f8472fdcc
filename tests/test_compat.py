"""``aqe._compat`` names every pytest internal aqe uses; each must resolve here."""

from __future__ import annotations

import pytest

from aqe import _compat

#: Names that exist only from a pytest version on (module: first version).
_SINCE = {"SubtestReport": 9, "failed_subtests_key": 9}


@pytest.mark.parametrize("name", _compat.__all__)
def test_every_registered_name_resolves_on_this_pytest(name: str) -> None:
    major = int(pytest.__version__.split(".")[0])
    if major < _SINCE.get(name, 0):
        with pytest.raises(ImportError):
            getattr(_compat, name)
    else:
        assert getattr(_compat, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _compat.no_such_name  # noqa: B018
