"""Failure digests for MCP agents, built from real aqe JSON reports of a tiny project."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import aqe_process

from aqe._reporting.digest import assertion, classify, clean, digest, project_frames, tail

Entry = dict[str, Any]

PROJECT = {
    "pyproject.toml": """
        [tool.pytest.ini_options]
        pythonpath = ["."]
    """,
    "pkg/__init__.py": "",
    "pkg/calc.py": """
        import json


        def add(a, b):
            return a + b


        def check_sum(a, b, expected):
            result = add(a, b)
            assert result == expected, f"sum mismatch: {result} != {expected}"


        def parse(text):
            return json.loads(text)


        def load(text):
            try:
                return parse(text)
            except ValueError as exc:
                raise RuntimeError("config unreadable") from exc
    """,
    "tests/test_sample.py": """
        import logging
        import os
        import sys
        import time

        import pytest

        from pkg.calc import add, check_sum, load, parse


        def test_add():
            assert add(2, 2) == 5


        def test_helper():
            check_sum(1, 1, 3)


        def test_json():
            parse("{not json")


        def test_chain():
            load("[1,")


        @pytest.fixture
        def broken():
            raise RuntimeError("fixture exploded")


        def test_fixture(broken):
            pass


        @pytest.fixture
        def leaky():
            yield
            raise OSError("teardown exploded")


        def test_teardown(leaky):
            pass


        def test_inner_import():
            import does_not_exist_abc  # noqa: F401


        def test_ansi():
            print("\\x1b[31mred\\x1b[0m line\\x07 bell\\r\\n" * 30 + "\\x1b]0;title\\x07done")
            sys.stderr.write("\\x1b[1;32merr\\x1b[0m\\x00\\n")
            logging.getLogger("proj").warning("\\x1b[33mlogged\\x1b[0m")
            assert False, "\\x1b[31mcoloured\\x1b[0m message"


        def test_crash():
            os._exit(3)


        @pytest.mark.timeout(0.5)
        def test_slow():
            time.sleep(10)


        def test_ok():
            pass
    """,
    "tests/test_broken_import.py": """
        import does_not_exist_xyz  # noqa: F401


        def test_never():
            pass
    """,
    "tests/test_broken_module.py": """
        raise RuntimeError("module exploded")
    """,
}


def _run(root: Path, name: str, *args: str) -> dict[str, Any]:
    # --isolate-on off: a crash or hang once is enough here; no warm/cold reruns.
    command = ["run", "--no-history", "--json", name, "-w", "1", "--isolate-on", "off", *args]
    done = aqe_process(*command, cwd=root)
    assert done.returncode == 1, done.stdout + done.stderr
    report: dict[str, Any] = json.loads((root / name).read_text(encoding="utf-8"))
    return report


class Sample:
    """Reports of one run with pytest's default tracebacks and one with --tb=native."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.report = _run(root, "report.json")
        self.native = _run(root, "native.json", "tests/test_sample.py", "--", "--tb=native")

    def test(self, name: str, *, native: bool = False) -> Entry:
        report = self.native if native else self.report
        found = [t for t in report["tests"] if t["nodeid"] == f"tests/test_sample.py::{name}"]
        assert found, name
        entry: Entry = found[-1]
        return entry

    def collection(self, file: str) -> Entry:
        found = [e for e in self.report["collection_errors"] if e["location"] == file]
        assert found, file
        entry: Entry = found[0]
        return entry


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    root = tmp_path_factory.mktemp("proj")
    for rel, source in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
    return Sample(root)


# --- classify -------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("test_add", "assertion"),
        ("test_helper", "assertion"),
        ("test_ansi", "assertion"),
        ("test_json", "error"),
        ("test_chain", "error"),
        ("test_fixture", "fixture"),
        ("test_teardown", "fixture"),
        ("test_inner_import", "import"),
        ("test_crash", "crash"),
        ("test_slow", "timeout"),
    ],
)
def test_classify_real_failures(sample: Sample, name: str, expected: str) -> None:
    assert classify(sample.test(name)) == expected


@pytest.mark.e2e
def test_classify_collection_errors(sample: Sample) -> None:
    assert classify(sample.collection("tests/test_broken_import.py")) == "import"
    assert classify(sample.collection("tests/test_broken_module.py")) == "collection"
    assert classify({"nodeid": "tests/test_x.py", "when": "collect", "outcome": "error"}) == (
        "collection"
    )


def test_classify_bare_assert_without_error_type() -> None:
    entry = {"outcome": "failed", "error_type": None, "traceback": ">  assert x\nE   assert 0"}
    assert classify(entry) == "assertion"
    assert classify({"outcome": "failed", "error_type": "ValueError"}) == "error"


# --- project_frames -------------------------------------------------------------------


@pytest.mark.e2e
def test_stdlib_frames_hidden_project_frames_kept(sample: Sample) -> None:
    text = project_frames(sample.test("test_json")["traceback"], str(sample.root))
    assert "tests/test_sample.py:" in text
    assert "pkg/calc.py:" in text and "return json.loads(text)" in text
    assert "json/__init__.py" not in text
    assert "def raw_decode" not in text and "scan_once" not in text  # stdlib source is gone
    assert "library frames hidden" in text
    # The final E line and location survive even though they are in the stdlib.
    lines = text.splitlines()
    assert any(line.startswith("E") and "JSONDecodeError: Expecting" in line for line in lines)
    assert lines[-1].endswith(": JSONDecodeError") and "json/decoder.py:" in lines[-1]


@pytest.mark.e2e
def test_helper_module_frame_kept(sample: Sample) -> None:
    original = sample.test("test_helper")["traceback"]
    # Nothing to hide: every frame is the project's.
    assert project_frames(original, str(sample.root)) == original


@pytest.mark.e2e
def test_native_traceback_drops_pytest_and_pluggy(sample: Sample) -> None:
    original = sample.test("test_chain", native=True)["traceback"]
    assert "_pytest" in original and "pluggy" in original
    text = project_frames(original, str(sample.root))
    assert "_pytest" not in text and "pluggy" not in text
    assert "json/__init__.py" not in text
    assert 'calc.py", line' in text and 'test_sample.py", line' in text
    assert "The above exception was the direct cause" in text
    # Where the stdlib raised stays, without its source line.
    assert 'json/decoder.py", line' in text and "raise JSONDecodeError" not in text
    assert text.splitlines()[-1] == "RuntimeError: config unreadable"
    assert len(text) < len(original) / 3


@pytest.mark.e2e
def test_chained_pytest_traceback(sample: Sample) -> None:
    text = project_frames(sample.test("test_chain")["traceback"], str(sample.root))
    assert "The above exception was the direct cause" in text
    assert "E           json.decoder.JSONDecodeError" in text
    assert "def raw_decode" not in text
    assert text.splitlines()[-1].startswith("pkg/calc.py:") and "RuntimeError" in text


@pytest.mark.e2e
def test_collection_error_frames(sample: Sample) -> None:
    text = project_frames(
        sample.collection("tests/test_broken_import.py")["traceback"], str(sample.root)
    )
    assert "importlib" not in text
    assert text.startswith("ImportError while importing test module")
    assert "tests/test_broken_import.py:1: in <module>" in text
    assert text.splitlines()[-1].startswith("E   ModuleNotFoundError")


@pytest.mark.e2e
def test_timeout_stack_keeps_project_frame(sample: Sample) -> None:
    text = project_frames(sample.test("test_slow")["traceback"], str(sample.root))
    assert "still running after 0.5s" in text
    assert "test_sample.py" in text and "in test_slow" in text


@pytest.mark.e2e
def test_without_root_relative_paths_are_the_project(sample: Sample) -> None:
    text = project_frames(sample.test("test_json")["traceback"], None)
    assert "pkg/calc.py:" in text and "json/__init__.py" not in text


def test_site_packages_under_root_is_not_the_project() -> None:
    traceback = "\n".join(
        [
            "Traceback (most recent call last):",
            '  File "/repo/tests/test_a.py", line 3, in test_a',
            "    requests.get(url)",
            '  File "/repo/.venv/lib/python3.12/site-packages/requests/api.py", line 73, in get',
            "    return request(...)",
            '  File "/repo/.venv/lib/python3.12/site-packages/requests/api.py", line 9, in req',
            "    raise ValueError(url)",
            "ValueError: bad url",
        ]
    )
    text = project_frames(traceback, "/repo")
    assert "return request" not in text and "raise ValueError" not in text
    assert "test_a.py" in text and "requests.get(url)" in text
    assert "… [1 library frame hidden] …" in text
    assert text.endswith("ValueError: bad url")


def test_unrecognised_text_gives_last_40_lines() -> None:
    text = "\n".join(f"line {i}" for i in range(100))
    assert project_frames(text, None).splitlines() == [f"line {i}" for i in range(60, 100)]


# --- assertion ------------------------------------------------------------------------


@pytest.mark.e2e
def test_assertion_lines(sample: Sample) -> None:
    found = assertion(sample.test("test_add"))
    assert found is not None
    assert found.splitlines() == [
        ">       assert add(2, 2) == 5",
        "E       assert 4 == 5",
        "E        +  where 4 = add(2, 2)",
    ]


@pytest.mark.e2e
def test_assertion_in_helper_module(sample: Sample) -> None:
    found = assertion(sample.test("test_helper"))
    assert found is not None
    assert found.splitlines() == [
        '>       assert result == expected, f"sum mismatch: {result} != {expected}"',
        "E       AssertionError: sum mismatch: 2 != 3",
    ]


@pytest.mark.e2e
def test_assertion_none_for_other_failures(sample: Sample) -> None:
    for name in ("test_json", "test_fixture", "test_crash", "test_slow"):
        assert assertion(sample.test(name)) is None


# --- clean and tail -------------------------------------------------------------------


def test_clean_strips_escapes_and_controls() -> None:
    text = (
        "\x1b[1;31mred\x1b[0m "  # CSI colour
        "\x1b]0;window title\x07"  # OSC to BEL
        "\x1b]8;;https://evil\x1b\\link\x1b]8;;\x1b\\ "  # OSC 8 hyperlink to ST
        "\x1bPdevice\x1b\\"  # DCS
        "\x9b2Jc1 "  # 8-bit CSI
        "lone\x1b\tesc\x00nul\x07bell\x7fdel\x85c1 "
        "a\r\nb\rc\td\u202eevil\u2066x\u2069"
    )
    assert clean(text, 1000) == "red link c1 lone\tescnulbelldelc1 a\nbc\tdevilx"


def test_clean_caps_keeping_head_and_tail() -> None:
    text = "HEAD" + "x" * 10_000 + "TAIL"
    capped = clean(text, 100)
    assert len(capped) <= 100
    assert capped.startswith("HEAD") and capped.endswith("TAIL")
    cut = len(text) - (len(capped) - len(capped[capped.index("…") : capped.rindex("…") + 1]))
    assert f"… [{cut} characters cut] …" in capped
    assert clean("short", 100) == "short"
    assert clean("abcdef", 3) == "abc"  # no room for a marker
    assert clean("abc", 0) == ""


def test_tail_keeps_last_lines_and_end() -> None:
    text = "\n".join(f"\x1b[32mline {i}\x1b[0m" for i in range(50)) + "\n"
    assert tail(text, 3, 1000) == "line 47\nline 48\nline 49"
    capped = tail("x" * 5000 + "END", 10, 60)
    assert len(capped) <= 60 and capped.endswith("END") and "characters cut" in capped
    assert tail("", 5, 100) == ""
    assert tail("a\nb", 0, 100) == ""


# --- digest ---------------------------------------------------------------------------


@pytest.mark.e2e
def test_digest_of_assertion_failure(sample: Sample) -> None:
    entry = sample.test("test_add")
    found = digest(entry, str(sample.root)).to_json()
    assert list(found) == [
        "nodeid",
        "outcome",
        "class",
        "when",
        "error_type",
        "message",
        "assertion",
        "traceback",
        "stdout_tail",
        "stderr_tail",
        "log_tail",
        "duration",
        "attempt",
        "tier",
        "worker",
        "location",
    ]
    assert found["nodeid"] == "tests/test_sample.py::test_add"
    assert found["class"] == "assertion"
    assert found["outcome"] == "failed" and found["when"] == "call"
    assert found["error_type"] == "AssertionError"
    assert found["location"] == f"tests/test_sample.py:{entry['line']}"
    assert found["attempt"] == 1 and found["tier"] == "hot" and found["worker"] == 0
    assert isinstance(found["duration"], float)
    assert "assert 4 == 5" in found["assertion"]
    json.dumps(found)  # ready to send


@pytest.mark.e2e
def test_digest_removes_ansi_and_controls(sample: Sample) -> None:
    entry = sample.test("test_ansi")
    assert "\x1b" in entry["stdout"] and "\x1b" in entry["message"]
    found = digest(entry, str(sample.root), output_lines=5).to_json()
    for key in ("message", "assertion", "traceback", "stdout_tail", "stderr_tail", "log_tail"):
        value = found[key]
        assert not any(c in value for c in "\x1b\x07\r\x00"), key
    assert found["message"].startswith("AssertionError: coloured message")
    assert found["stdout_tail"].splitlines() == ["red line bell"] * 4 + ["done"]
    assert found["stderr_tail"] == "err"
    assert "logged" in found["log_tail"]


@pytest.mark.e2e
def test_digest_caps_lengths(sample: Sample) -> None:
    entry = dict(sample.test("test_ansi"))
    entry["nodeid"] = "tests/test_sample.py::test_ansi[" + "p" * 2000 + "]"
    entry["message"] = "m" * 5000
    found = digest(entry, str(sample.root), output_lines=1000, limit=200).to_json()
    assert len(found["nodeid"]) <= 500 and found["nodeid"].endswith("]")
    assert len(found["message"]) <= 500 and "characters cut" in found["message"]
    for key in ("traceback", "stdout_tail"):
        assert len(found[key]) <= 200, key
    assert found["stdout_tail"].endswith("done")
    # The traceback keeps its end: where and why it failed.
    assert found["traceback"].endswith("AssertionError")


@pytest.mark.e2e
def test_digest_of_crash_and_timeout(sample: Sample) -> None:
    crash = digest(sample.test("test_crash"), str(sample.root)).to_json()
    assert crash["class"] == "crash"
    assert "exited with code 3" in crash["traceback"]
    assert crash["assertion"] is None
    timeout = digest(sample.test("test_slow"), str(sample.root)).to_json()
    assert timeout["class"] == "timeout" and "in test_slow" in timeout["traceback"]


@pytest.mark.e2e
def test_digest_of_fixture_error(sample: Sample) -> None:
    found = digest(sample.test("test_fixture"), None).to_json()
    assert found["class"] == "fixture" and found["when"] == "setup"
    assert 'raise RuntimeError("fixture exploded")' in found["traceback"]


@pytest.mark.e2e
def test_digest_tolerates_sparse_or_odd_entries(sample: Sample) -> None:
    found = digest({"nodeid": 3, "line": True, "duration": "x", "worker": None}, None).to_json()
    assert found["nodeid"] is None and found["location"] is None
    assert found["duration"] is None and found["traceback"] is None
    assert found["stdout_tail"] == "" and found["class"] == "error"
    collected = digest(sample.collection("tests/test_broken_import.py"), str(sample.root)).to_json()
    assert collected["nodeid"] == "tests/test_broken_import.py"
    assert collected["class"] == "import"
