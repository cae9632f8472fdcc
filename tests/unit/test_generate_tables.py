"""aqe generate beyond its first modules: data mutants of rule tables, inputs from table
rows, pairs of same-kind parameters, decorators observed through what they make, the copy,
pickle and call dunders, instances named by a parameter."""

from __future__ import annotations

import datetime
import inspect
import pickle
import textwrap
from typing import Any

from aqe._generate._domain import ModuleFacts, domain_for, table_strings
from aqe._generate._explore import _pairs
from aqe._generate._killers import DataMutant, data_mutants, detects, select
from aqe._generate._model import Case
from aqe._generate._probe import observe
from aqe._generate._views import best_view

RULES = textwrap.dedent(
    """
    import re

    RULES = [(r"(?i)(quiz)$", r"\\1zes"), (r"(?i)(ox)$", r"\\1en"), (r"$", "s")]
    WORDS = {"fish", "sheep"}

    def plural(word):
        if word in WORDS:
            return word
        for rule, replacement in RULES:
            if re.search(rule, word):
                return re.sub(rule, replacement, word)
        return word
    """
)


def _namespace(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<rules>", "exec"), namespace)
    return namespace


def _plural(word: str, expected: str) -> Case:
    return Case("plural", "call", ["word"], [repr(word)], [False], "returns", expected=expected)


def test_data_mutants_change_one_field_of_one_row_of_each_table_read() -> None:
    namespace = _namespace(RULES)
    found = data_mutants(namespace["plural"])
    assert {m.name for m in found} == {"RULES", "WORDS"}
    assert len([m for m in found if m.name == "RULES"]) == 6  # 3 rows x 2 fields
    changed = next(m.value for m in found if m.name == "RULES")
    assert changed[0] != namespace["RULES"][0] and changed[1:] == namespace["RULES"][1:]
    assert all(type(m.value) is type(namespace[m.name]) for m in found)


def test_a_spare_reaching_a_changed_row_is_kept_and_the_table_is_restored() -> None:
    namespace = _namespace(RULES)
    func = namespace["plural"]
    original = list(namespace["RULES"])
    mutants: list[Any] = data_mutants(func)
    kept = [_plural("cat", "'cats'")]
    spares = [_plural("dog", "'dogs'"), _plural("ox", "'oxen'"), _plural("fish", "'fish'")]
    chosen, detected, total = select(func, mutants, kept, spares, observe, namespace, lambda: False)
    assert [c.args for c in chosen] == [["'ox'"], ["'fish'"]]
    assert 0 < detected < total
    assert namespace["RULES"] == original and func("quiz") == "quizzes"


def test_a_data_mutant_of_a_name_the_module_lacks_is_no_detection() -> None:
    namespace = _namespace(RULES)
    case = _plural("ox", "'oxen'")
    assert not detects(namespace["plural"], DataMutant("MISSING", []), case, observe, namespace)


def test_table_rows_give_one_matching_string_per_rule_and_each_word() -> None:
    namespace = _namespace(RULES)
    rows = table_strings([namespace["RULES"], namespace["WORDS"]])
    assert "'fish'" in rows and "'sheep'" in rows
    assert any("quiz" in r.lower() for r in rows) and any("ox" in r.lower() for r in rows)


def test_pairs_set_two_parameters_of_one_kind_together_nearest_first() -> None:
    dates = ["None", "datetime.date(2024, 2, 29)", "datetime.date(1970, 1, 1)"]
    domains = [dates, list(dates), ["0", "'a'"]]
    rows = list(_pairs(domains, [d[0] for d in domains]))
    assert rows[0][:2] == ["datetime.date(2024, 2, 29)", "datetime.date(1970, 1, 1)"]
    assert all(row[2] == "0" for row in rows)  # no kind in common with the third


def test_a_returned_decorator_is_observed_through_the_function_it_makes() -> None:
    def memo(cache: dict[Any, Any]) -> Any:
        def decorator(func: Any) -> Any:
            def wrapper(arg: Any) -> Any:
                if arg not in cache:
                    cache[arg] = func(arg)
                return cache[arg]

            return wrapper

        return decorator

    view = best_view(memo({}), {})
    assert view is not None
    assert view[0].startswith("list(map({}(str.upper), ")
    assert eval(view[0].format("memo({})"), {"memo": memo}) == eval(view[1])


def test_copy_pickle_and_call_are_written_through_their_public_api() -> None:
    copy_case = Case("C.__copy__", "op:copy", ["c"], ["c0"], [False], "returns")
    assert copy_case.call(["c0"], raw=True) == "copy.copy(c0)"
    pickled = Case("C.__setstate__", "op:pickle", ["c"], ["c0"], [False], "returns")
    assert pickled.call(["c0"], raw=True) == "pickle.loads(pickle.dumps(c0))"
    called = Case("C.__call__", "op:call", ["c", "n"], ["c0", "2"], [False, True], "returns")
    assert called.call(["c0", "2"], raw=True) == "c0(n=2)"
    assert pickle.loads(pickle.dumps(datetime.date(2024, 1, 1))) == datetime.date(2024, 1, 1)


class Weekday:
    def __init__(self, day: int, n: int | None = None) -> None:
        self.day, self.n = day, n

    def __call__(self, n: int) -> Weekday:
        return Weekday(self.day, n)


MO = Weekday(0)


def test_a_parameter_named_after_a_class_takes_the_modules_instances() -> None:
    def shift(weekday=None):  # type: ignore[no-untyped-def]
        return weekday

    facts = ModuleFacts(namespace={"Weekday": Weekday, "MO": MO, "__name__": __name__})
    param = inspect.signature(shift).parameters["weekday"]
    candidates = domain_for(param, None, None, facts).candidates
    assert "MO" in candidates and "MO(-1)" in candidates and "MO(2)" in candidates


def test_a_long_id_is_cut_with_an_ellipsis() -> None:
    from aqe._generate._render import case_id

    case = Case("f", "call", ["seq"], [repr(["hello world"] * 6)], [False], "returns")
    text = case_id(case)
    assert len(text) == 40 and text.endswith("...") and text.startswith("('hello world'")


def test_untyped_sequences_get_numbers_repeats_pairs_and_nests() -> None:
    def count(seq):  # type: ignore[no-untyped-def]
        return len(seq)

    facts = ModuleFacts(namespace={"__name__": __name__})
    param = inspect.signature(count).parameters["seq"]
    candidates = domain_for(param, None, None, facts).candidates
    assert {"[3, 1, 2]", "[1, 1, 2, 3, 3]", "[(1, 'a'), (2, 'b')]"} <= set(candidates)


def test_a_stored_function_called_with_three_arguments_gets_three_argument_functions(
    tmp_path: Any, monkeypatch: Any
) -> None:
    import importlib
    import io

    from aqe._generate._explore import Explorer

    (tmp_path / "timed.py").write_text(
        textwrap.dedent(
            """
            class Timed:
                def __init__(self, size, ttu):
                    self.size = size
                    self.__ttu = ttu

                def put(self, key, value):
                    return self.__ttu(key, value, 0)
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("timed")
    explorer = Explorer(module, io.StringIO(), 1.0, 1)
    target = next(t for t in explorer.targets(None)[0] if t.name == "Timed")
    assert explorer._stored_calls(target) == {"ttu": 3}
    assert explorer.prepare(target) is None
    ttu = target.domains[1].candidates
    assert "lambda a0, a1, a2: a2 + 1" in ttu and "lambda a0, a1, a2: a0" in ttu
    assert all(eval(src)(1, 2, 3) is not None for src in ttu[:4])
