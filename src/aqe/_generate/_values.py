"""Values as source text: what a generated test can write down and read back equal.

Every input the generator tries is a source expression, evaluated afresh for each call,
so a call that mutates its argument cannot leak into the next one and what the test file
says is exactly what was run. Outputs become expected values only when their source reads
back equal and says nothing that differs between processes (addresses, set order).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import math
import re
import types
from typing import Any

#: Names a generated expression may use besides the target module's own.
STDLIB_NAMES: dict[str, str] = {
    "datetime": "import datetime",
    "Decimal": "from decimal import Decimal",
    "Fraction": "from fractions import Fraction",
    "OrderedDict": "from collections import OrderedDict",
    "re": "import re",
    "math": "import math",
    "attrgetter": "from operator import attrgetter",
    "operator": "import operator",
    "timezone": "from datetime import timezone",
    "itertools": "import itertools",
    "copy": "import copy",
    "pickle": "import pickle",
}

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+|<[A-Za-z_][\w.]* object")
MAX_SOURCE = 400
_ATOMS = (bool, int, str, bytes, type(None))


def stdlib_namespace() -> dict[str, Any]:
    return {
        "datetime": datetime,
        "Decimal": decimal.Decimal,
        "Fraction": fractions.Fraction,
        "OrderedDict": __import__("collections").OrderedDict,
        "re": re,
        "math": math,
        "attrgetter": __import__("operator").attrgetter,
        "operator": __import__("operator"),
        "timezone": datetime.timezone,
        "itertools": __import__("itertools"),
        "copy": __import__("copy"),
        "pickle": __import__("pickle"),
    }


def to_source(value: Any, namespace: dict[str, Any], depth: int = 0) -> str | None:
    """Source text that evaluates (in ``namespace``) to an equal value, or None.

    Sets are written sorted when their items sort, so the text does not depend on the
    hash seed; anything whose repr names an address is refused.
    """
    if depth > 4:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "float('inf')" if value > 0 else "-float('inf')"
        return repr(value)
    if isinstance(value, complex):
        return None
    if isinstance(value, enum.Enum):
        cls = type(value)
        if namespace.get(cls.__name__) is cls:
            return f"{cls.__name__}.{value.name}"
        return None
    if type(value) in _ATOMS:
        if isinstance(value, (str, bytes)) and len(value) > MAX_SOURCE:
            return None
        if type(value) is int and value.bit_length() > 1000:
            return None
        text = repr(value)
        return text if len(text) <= MAX_SOURCE else None
    if type(value) in (list, tuple, set, frozenset, dict) and len(value) > MAX_SOURCE:
        return None
    if type(value) in (list, tuple):
        parts = [to_source(item, namespace, depth + 1) for item in value]
        if any(part is None for part in parts):
            return None
        if type(value) is tuple:
            inner = ", ".join(parts) + ("," if len(parts) == 1 else "")  # type: ignore[arg-type]
            return _bounded(f"({inner})")
        return _bounded("[" + ", ".join(parts) + "]")  # type: ignore[arg-type]
    if type(value) in (set, frozenset):
        try:
            items = sorted(value)
        except TypeError:
            return None
        parts = [to_source(item, namespace, depth + 1) for item in items]
        if any(part is None for part in parts):
            return None
        if not parts:
            return "set()" if type(value) is set else "frozenset()"
        body = "{" + ", ".join(parts) + "}"  # type: ignore[arg-type]
        return _bounded(body if type(value) is set else f"frozenset({body})")
    if type(value) is dict:
        pairs = []
        for key, item in value.items():
            key_src = to_source(key, namespace, depth + 1)
            item_src = to_source(item, namespace, depth + 1)
            if key_src is None or item_src is None:
                return None
            pairs.append(f"{key_src}: {item_src}")
        return _bounded("{" + ", ".join(pairs) + "}")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _dataclass_source(value, namespace, depth)
    return _repr_source(value, namespace)


def _dataclass_source(value: Any, namespace: dict[str, Any], depth: int) -> str | None:
    cls = type(value)
    if namespace.get(cls.__name__) is not cls:
        return None
    args = []
    for field in dataclasses.fields(value):
        if not field.init:
            continue
        src = to_source(getattr(value, field.name), namespace, depth + 1)
        if src is None:
            return None
        args.append(f"{field.name}={src}")
    text = _bounded(f"{cls.__name__}({', '.join(args)})")
    if text is None:
        return None
    try:  # eq=False, init=False fields, a __post_init__ that changes values
        back = eval(text, dict(namespace))
        same = type(back) is cls and bool(back == value)
    except Exception:
        return None
    return text if same else None


def _repr_source(value: Any, namespace: dict[str, Any]) -> str | None:
    """A repr that reads back equal: ``Version(major=1, ...)``, ``datetime.date(...)``."""
    if isinstance(value, (types.FunctionType, types.ModuleType, type)):
        return None
    if getattr(type(value), "__eq__", None) is getattr(object, "__eq__", None):
        return None
    try:
        text = repr(value)
    except Exception:
        return None
    if len(text) > MAX_SOURCE or _ADDRESS.search(text):
        return None
    for candidate in dict.fromkeys([text, requalified(text, namespace)]):
        try:
            back = eval(candidate, dict(namespace))
            same = type(back) is type(value) and bool(back == value)
        except Exception:
            continue
        if same:
            return candidate
    return None


_QUALIFIED = re.compile(
    r"\b(datetime|decimal|fractions|collections|pathlib|uuid|enum|ipaddress)\.([A-Za-z_]\w*)"
)


def requalified(text: str, namespace: dict[str, Any]) -> str:
    """``datetime.datetime(...)`` as ``datetime(...)`` where the module under test binds
    ``datetime`` to the class (``from datetime import datetime``), so the repr reads back in
    its namespace, and in the test file, which imports names as the module does."""
    import sys

    def bare(match: re.Match[str]) -> str:
        module, name = match.group(1), match.group(2)
        obj = getattr(sys.modules.get(module), name, None)
        if (
            obj is not None
            and namespace.get(name) is obj
            and namespace.get(module) is not (sys.modules.get(module))
        ):
            return name
        return match.group(0)

    return _QUALIFIED.sub(bare, text)


def _bounded(text: str) -> str | None:
    return text if len(text) <= MAX_SOURCE else None


def stable_message(message: str) -> bool:
    """True when an exception message can be matched in another process."""
    return not _ADDRESS.search(message) and len(message) <= 2000
