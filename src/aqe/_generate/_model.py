"""What the explorer finds and the renderer writes: cases, properties, per-function figures.

These cross a process boundary (the explorer runs the user's code in a child), so they are
plain dataclasses that turn into JSON and back.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

#: Stands for the receiver in a setup step (never in user text: a control character).
SELF = "\x01"
#: Separates a prepared receiver's constructor source from its setup steps.
STEP = "\x00"

# Call forms: how the columns of a case become one expression.
OPERATORS = {
    "op:<": "({0} < {1})",
    "op:<=": "({0} <= {1})",
    "op:>": "({0} > {1})",
    "op:>=": "({0} >= {1})",
    "op:==": "({0} == {1})",
    "op:!=": "({0} != {1})",
    "op:str": "str({0})",
    "op:repr": "repr({0})",
    "op:len": "len({0})",
    "op:iter": "list({0})",
    "op:in": "({1} in {0})",
    "op:getitem": "{0}[{1}]",
    "op:bool": "bool({0})",
    "op:+": "({0} + {1})",
    "op:-": "({0} - {1})",
    "op:*": "({0} * {1})",
    "op:/": "({0} / {1})",
    "op://": "({0} // {1})",
    "op:%": "({0} % {1})",
    "op:r+": "({1} + {0})",
    "op:r-": "({1} - {0})",
    "op:r*": "({1} * {0})",
    "op:neg": "(-{0})",
    "op:pos": "(+{0})",
    "op:abs": "abs({0})",
    "op:&": "({0} & {1})",
    "op:|": "({0} | {1})",
    # Statements as expressions of the public API: a container filled and emptied.
    "op:setitem": "operator.setitem({0}, {1}, {2})",
    "op:delitem": "operator.delitem({0}, {1})",
    "op:copy": "copy.copy({0})",
    "op:pickle": "pickle.loads(pickle.dumps({0}))",
}


@dataclass
class Case:
    """One call and what it did."""

    target: str  # "pluralize", "Version.parse", "Version.bump_major", "Version"
    form: str  # "call", "method", "property" or a key of OPERATORS
    params: list[str]  # column names, receiver first for methods
    args: list[str]  # source of each column
    keywords: list[bool]  # pass this column by keyword
    outcome: str  # "returns", "raises" or "mutates"
    expected: str | None = None  # source of the value (returns/mutates)
    exc_type: str | None = None  # "ValueError" or "pkg.mod.Error"
    match: str | None = None  # regex for pytest.raises(match=...)
    consume: bool = False  # the call returned an iterator: compare list(call)
    state: dict[str, str] = field(default_factory=dict)  # "column", "column.attr" or
    # "column:dict" / ":list" / ":len" (a public view of the column) -> source after the call
    setup: list[str] = field(default_factory=list)  # calls on the receiver first; SELF marks it
    view: str = ""  # expected is a public view of the result ("dict({})", "{}.name"):
    # the value itself has no literal; never vars() nor an underscore attribute
    pad: list[tuple[str, str | None, bool]] = field(default_factory=list)  # omitted params:
    # (name, default source or None, keyword) so rows of one test can share columns
    arcs: int = 0  # arcs this case added when it was found

    def call(self, columns: list[str], raw: bool = False) -> str:
        """The expression calling the target with ``columns`` (names or sources);
        ``raw`` leaves out the view or ``list()`` the oracle wraps it in."""
        if self.form in OPERATORS:
            text = OPERATORS[self.form].format(*columns)
            return self.view.format(text) if self.view and not raw else text
        if self.form == "property":
            text = f"{columns[0]}.{self.target.rsplit('.', 1)[1]}"
            return self.view.format(text) if self.view and not raw else text
        if self.form in ("method", "op:call"):
            receiver, rest, names = columns[0], columns[1:], self.params[1:]
            head = receiver
            if self.form == "method":
                head = f"{receiver}.{self.target.rsplit('.', 1)[1]}"
            flags = self.keywords[1:]
        else:
            head, rest, names, flags = self.target, columns, self.params, self.keywords
        triples = zip(names, rest, flags, strict=False)
        parts = [f"{name}={col}" if kw else col for name, col, kw in triples]
        text = f"{head}({', '.join(parts)})"
        if raw:
            return text
        if self.view:
            return self.view.format(text)
        return f"list({text})" if self.consume else text

    def behaviour(self) -> str:
        if self.outcome == "raises":
            return f"raises:{self.exc_type}"
        return self.outcome


@dataclass
class Property:
    """A verified property, written as a Hypothesis test."""

    kind: str  # "round_trip", "idempotent", "ordering"
    targets: list[str]  # the module names the test imports
    names: list[str]  # the test's arguments
    strategies: list[str]  # one Hypothesis strategy source per argument
    check: str  # the assertion's expression, over ``names``
    description: str
    examples: int = 0  # inputs it held on before Hypothesis tried more


@dataclass
class FunctionReport:
    """What the search did for one target."""

    target: str
    lines_total: int = 0
    lines_hit: int = 0
    branches_total: int = 0
    branches_hit: int = 0
    calls: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None
    span: list[int] = field(default_factory=list)  # first and last line of its body
    mutants: list[int] = field(default_factory=list)  # [detected, made] in the search


def snake(name: str) -> str:
    """``LineItem`` -> ``line_item``: test and column names from class names."""
    text = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    return re.sub(r"\W+", "_", text).lower()


def to_json(obj: Any) -> dict[str, Any]:
    data = dataclasses.asdict(obj)
    data["type"] = type(obj).__name__
    return data


def from_json(data: dict[str, Any]) -> Case | Property | FunctionReport:
    kind = data.pop("type")
    cls = {"Case": Case, "Property": Property, "FunctionReport": FunctionReport}[kind]
    return cls(**data)  # type: ignore[no-any-return]


def state_parts(key: str) -> tuple[str, str, str]:
    """``"cart.items"`` -> ("cart", "attr", "items"); ``"cache:dict"`` -> ("cache", "view",
    "dict"); ``"items"`` -> ("items", "", "")."""
    if ":" in key:
        column, _, view = key.partition(":")
        return column, "view", view
    column, _, attr = key.partition(".")
    return column, ("attr" if attr else ""), attr
