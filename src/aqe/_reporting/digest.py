"""One failed test as a small, safe digest for an AI coding agent.

An agent asking "why did this test fail?" needs the failing assertion, the frames of
the project's own code and the end of the captured output, not pytest's and the
standard library's frames or megabytes of log. Everything here comes from the
project under test and is untrusted: terminal escape sequences and control
characters could hide text or drive the agent's terminal, and unbounded text
would flood its context. So every string is cleaned and capped before it leaves.

The input is one entry of the JSON run report's ``tests[]`` array
(``docs/json-report.md``); an entry of ``collection_errors[]`` works too.
"""

from __future__ import annotations

import functools
import os
import re
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "CARETS",
    "SEPARATOR",
    "Digest",
    "FailureClass",
    "assertion",
    "classify",
    "clean",
    "digest",
    "project_frames",
    "tail",
]

FailureClass = Literal["assertion", "import", "fixture", "timeout", "crash", "collection", "error"]

#: Text parsed at most; beyond this the middle goes before parsing (keeps it linear and cheap).
_PARSE_LIMIT = 1_000_000
#: Caps for the short strings of a digest.
_NODEID_LIMIT = 500
_MESSAGE_LIMIT = 500
_NAME_LIMIT = 200
_ASSERTION_LIMIT = 2000
#: Lines returned by project_frames() when it recognises no frame at all.
_FALLBACK_LINES = 40

_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError"})

# Terminal escape sequences, 7-bit and 8-bit forms: CSI, OSC (to BEL or ST),
# DCS/SOS/PM/APC strings (to ST), then any other two-or-more byte ESC sequence.
# String sequences stop at a newline so an unterminated one cannot eat the text.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]"
)
# C0 controls but \t and \n, DEL, C1 controls, bidi overrides/isolates and marks
# (they make displayed text differ from what is read), and lone surrogates.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")

# pytest's --tb=long/auto/short text.
#: pytest's separator between traceback entries, and its "^^^" marker lines (shared
#: with the triage, which reads the same tracebacks).
SEPARATOR = re.compile(r"^\s*(?:_ ){5,}_?\s*$")
_SHORT_HEADER = re.compile(r"^(?P<path>\S.*?):(?P<line>\d+): in (?P<func>\S.*)$")
_LOCATION = re.compile(r"^(?P<path>\S.*?):(?P<line>\d+):(?: (?P<rest>.*))?$")
_E_LINE = re.compile(r"^E(?:\s|$)")
CARETS = re.compile(r"^\s*[\^~]+\s*$")
# Python's own traceback (--tb=native) and faulthandler's stack dump.
_NATIVE_HEADER = re.compile(r'^(?P<indent>\s*)File "(?P<path>[^"]+)", line (?P<line>\d+)\b')
_CHAIN_LINES = frozenset(
    {
        "The above exception was the direct cause of the following exception:",
        "During handling of the above exception, another exception occurred:",
    }
)


@functools.cache
def _stdlib_dirs() -> tuple[str, ...]:
    """This interpreter's standard library, as written and with symlinks resolved."""
    found: set[str] = set()
    for key in ("stdlib", "platstdlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            found.update(_norm(p) for p in (path, os.path.realpath(path)))
    return tuple(sorted(found))


#: ``lib/python3.12/``: a standard library anywhere, even one copied into the project.
_PYTHON_LIB = re.compile(r"(?:^|/)lib/python\d+(?:\.\d+)?t?/")
#: ``C:/Python312/Lib/``: Windows' standard library (only trusted outside the root).
_WINDOWS_LIB = re.compile(r"(?:^|/)Lib/")
_LIBRARY_DIRS = frozenset({"site-packages", "dist-packages"})
_RUNNER_DIRS = frozenset({"_pytest", "pluggy", "pytest"})
#: Where this copy of aqe lives: its frames are runner frames unless aqe is the project.
_AQE_DIR = str(Path(__file__).resolve().parents[1]).replace("\\", "/")


def clean(text: str, limit: int) -> str:
    """Make untrusted text inert and bounded: no escape sequences or control characters.

    ``\\r\\n`` becomes ``\\n``; other ``\\r`` are dropped (progress bars would
    otherwise overwrite what came before). Text longer than ``limit`` keeps its
    head and tail around a ``… [N characters cut] …`` marker, since both the start
    of output and its end tend to matter.
    """
    text = _ESCAPES.sub("", text)
    text = text.replace("\r\n", "\n").replace("\u2028", "\n").replace("\u2029", "\n")
    text = _CONTROLS.sub("", text)
    text = _SURROGATES.sub("\ufffd", text)
    return _cap(text, limit, keep="both")


def tail(text: str, lines: int, limit: int) -> str:
    """The last ``lines`` lines of cleaned ``text``, at most ``limit`` characters.

    The end of captured output is where the failure shows, so the head is what goes.
    """
    if lines <= 0 or limit <= 0:
        return ""
    text = clean(text, max(limit * 4, _PARSE_LIMIT)).rstrip("\n")
    kept = "\n".join(text.split("\n")[-lines:])
    return _cap(kept, limit, keep="tail")


def classify(entry: Mapping[str, object]) -> FailureClass:
    """Sort a failure into the kind of fix it needs.

    A hang or a dead worker says more than the exception; then collection and
    import problems (nothing ran); then fixture errors (the test body never ran);
    then assertion failures; everything else is ``"error"``. An entry of
    ``collection_errors[]`` (``location`` and ``traceback``) is ``"collection"``,
    or ``"import"`` when an import failed.
    """
    outcome = _str(entry.get("outcome"))
    error_type = _short_type(entry.get("error_type"))
    when = _str(entry.get("when"))
    if outcome == "timeout" or error_type == "Timeout":
        return "timeout"
    if outcome == "crashed" or error_type == "WorkerCrashed":
        return "crash"
    collecting = when == "collect" or ("location" in entry and "outcome" not in entry)
    if collecting:
        return "import" if _import_failure(entry, error_type) else "collection"
    if error_type in _IMPORT_ERRORS:
        return "import"
    if outcome == "error" and when in ("setup", "teardown"):
        return "fixture"
    if error_type == "AssertionError":
        return "assertion"
    if error_type is None and outcome == "failed" and _asserting(_str(entry.get("traceback"))):
        return "assertion"
    return "error"


def project_frames(traceback: str, root: str | None) -> str:
    """``traceback`` with only the frames of the project's own code.

    Frames of site-packages, the standard library, pytest, pluggy and aqe are what
    an agent cannot change; each run of them becomes one ``… [N library frames
    hidden] …`` line. Understands pytest's ``--tb`` formats (long, auto, short,
    line) and Python's own (``--tb=native``, faulthandler stacks). The final
    ``E`` lines and location line are always kept, even from a library frame. Text
    with no recognisable frame comes back as its last 40 lines.
    """
    blocks = _parse(traceback)
    if not any(block.kind == "frame" for block in blocks):
        return "\n".join(traceback.rstrip("\n").split("\n")[-_FALLBACK_LINES:])
    anchor = _Anchor.of(root)
    out: list[_Block] = []
    hidden: list[_Block] = []
    trailing: list[_Block] = []  # a separator after the last hidden frame

    def flush_hidden() -> None:
        if hidden:
            first = hidden[0]
            indent = first.indent if first.style == "native" else ""
            noun = "frame" if len(hidden) == 1 else "frames"
            out.append(_Block("text", [f"{indent}… [{len(hidden)} library {noun} hidden] …"]))
            out.extend(trailing)
            hidden.clear()
            trailing.clear()

    # Kind of the next block that is not a separator, for each block: reading ahead
    # per frame would be quadratic in a deep (recursive) traceback.
    upcoming: list[str | None] = [None] * len(blocks)
    ahead: str | None = None
    for index in range(len(blocks) - 1, -1, -1):
        upcoming[index] = ahead
        if blocks[index].kind != "separator":
            ahead = blocks[index].kind

    for index, block in enumerate(blocks):
        if block.kind == "separator" and hidden:
            trailing[:] = [block]
            continue
        if block.kind != "frame" or anchor.is_project(block.path):
            flush_hidden()
            out.append(block)
            continue
        if block.has_e or upcoming[index] in (None, "text"):
            flush_hidden()
            out.append(block.reduced())
        else:
            hidden.append(block)
            trailing.clear()
    flush_hidden()
    return "\n".join(_join(out))


def assertion(entry: Mapping[str, object]) -> str | None:
    """The failing assertion: its ``>`` source line(s) and pytest's ``E`` explanation.

    That pair usually says all an agent needs (``assert 4 == 5``); ``None`` when the
    entry is not an assertion failure.
    """
    if classify(entry) != "assertion":
        return None
    text = clean(_str(entry.get("traceback")) or "", _PARSE_LIMIT)
    lines = text.split("\n")
    last = next((i for i in range(len(lines) - 1, -1, -1) if _E_LINE.match(lines[i])), None)
    if last is None:
        message = _str(entry.get("message"))
        return clean(message, _ASSERTION_LIMIT) if message else None
    first = last
    while first > 0 and _E_LINE.match(lines[first - 1]):
        first -= 1
    source: list[str] = []
    for i in range(first - 1, -1, -1):
        line = lines[i]
        if SEPARATOR.match(line) or _is_location(line) or _SHORT_HEADER.match(line):
            break
        if line.startswith(">"):
            source = [
                kept.rstrip() for kept in lines[i:first] if kept.strip() and not CARETS.match(kept)
            ]
            break
    found = [*source, *(line.rstrip() for line in lines[first : last + 1])]
    return _cap("\n".join(found), _ASSERTION_LIMIT, keep="both")


@dataclass(frozen=True, slots=True)
class Digest:
    """One failed test, cleaned and capped for an agent (see :func:`digest`)."""

    nodeid: str | None
    outcome: str | None
    failure_class: FailureClass
    when: str | None
    error_type: str | None
    message: str | None
    assertion: str | None
    traceback: str | None
    stdout_tail: str
    stderr_tail: str
    log_tail: str
    duration: float | int | None
    attempt: int | None
    tier: str | None
    worker: int | None
    #: The test's definition as ``file:line``; None when aqe did not learn it.
    location: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "class": self.failure_class,
            "when": self.when,
            "error_type": self.error_type,
            "message": self.message,
            "assertion": self.assertion,
            "traceback": self.traceback,
            "stdout_tail": self.stdout_tail,
            "stderr_tail": self.stderr_tail,
            "log_tail": self.log_tail,
            "duration": self.duration,
            "attempt": self.attempt,
            "tier": self.tier,
            "worker": self.worker,
            "location": self.location,
        }


def digest(
    entry: Mapping[str, object],
    root: str | None,
    *,
    output_lines: int = 20,
    limit: int = 4000,
) -> Digest:
    """What an agent needs to start fixing one failed test, every string cleaned and capped.

    ``entry`` is a ``tests[]`` (or ``collection_errors[]``) entry of the JSON report.
    ``traceback`` holds only the project's frames (see :func:`project_frames`) and
    at most ``limit`` characters; captured output keeps its last ``output_lines``
    lines, each stream at most ``limit`` characters.
    """
    traceback = _str(entry.get("traceback"))
    trimmed = None
    if traceback is not None:
        trimmed = _cap(project_frames(clean(traceback, _PARSE_LIMIT), root), limit, keep="both")
    nodeid = _str(entry.get("nodeid")) or _str(entry.get("location"))
    file = _str(entry.get("file"))
    line = _int(entry.get("line"))
    location = clean(f"{file}:{line}", _NODEID_LIMIT) if file and line is not None else None
    return Digest(
        nodeid=_clean_or_none(nodeid, _NODEID_LIMIT),
        outcome=_clean_or_none(_str(entry.get("outcome")), _NAME_LIMIT),
        failure_class=classify(entry),
        when=_clean_or_none(_str(entry.get("when")), _NAME_LIMIT),
        error_type=_clean_or_none(_str(entry.get("error_type")), _NAME_LIMIT),
        message=_clean_or_none(_str(entry.get("message")), _MESSAGE_LIMIT),
        assertion=assertion(entry),
        traceback=trimmed,
        stdout_tail=tail(_str(entry.get("stdout")) or "", output_lines, limit),
        stderr_tail=tail(_str(entry.get("stderr")) or "", output_lines, limit),
        log_tail=tail(_str(entry.get("log")) or "", output_lines, limit),
        duration=_number(entry.get("duration")),
        attempt=_int(entry.get("attempt")),
        tier=_clean_or_none(_str(entry.get("tier")), _NAME_LIMIT),
        worker=_int(entry.get("worker")),
        location=location,
    )


# --- helpers ---------------------------------------------------------------------------


def _cap(text: str, limit: int, *, keep: Literal["both", "tail"]) -> str:
    """``text`` in at most ``limit`` characters, a marker saying how many were cut."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = len(text) - limit
    while True:  # the marker's own length depends on the number it shows
        marker = f"… [{cut} characters cut] …"
        wanted = len(text) - (limit - len(marker))
        if wanted == cut:
            break
        cut = wanted
    room = limit - len(marker)
    if room < 2:  # too small for a marker to help
        return text[-limit:] if keep == "tail" else text[:limit]
    if keep == "tail":
        return marker + text[len(text) - room :]
    head = room // 2
    return text[:head] + marker + text[len(text) - (room - head) :]


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def _clean_or_none(value: str | None, limit: int) -> str | None:
    return None if value is None else clean(value, limit)


def _short_type(value: object) -> str | None:
    """``json.decoder.JSONDecodeError`` -> ``JSONDecodeError``: reports may qualify names."""
    text = _str(value)
    return text.rsplit(".", 1)[-1] if text else None


def _import_failure(entry: Mapping[str, object], error_type: str | None) -> bool:
    if error_type in _IMPORT_ERRORS:
        return True
    text = (_str(entry.get("traceback")) or "") + "\n" + (_str(entry.get("message")) or "")
    return "ImportError while importing" in text or bool(
        re.search(r"^E\s+(?:\w+\.)*(?:ImportError|ModuleNotFoundError)\b", text, re.MULTILINE)
    )


def _asserting(traceback: str | None) -> bool:
    """An ``E   assert ...`` line: pytest's rewritten assert, whatever the type field says."""
    return bool(traceback) and bool(re.search(r"^E\s+assert\b", traceback or "", re.MULTILINE))


def _is_path(path: str) -> bool:
    """Rule out lines that only look like ``path:12: ...`` (locals, ``E`` and ``>`` lines)."""
    if path.startswith("<") and path.endswith(">"):  # <frozen importlib._bootstrap>
        return True
    if " = " in path or path.startswith(("E ", "E\t", ">")):
        return False
    return not any(c.isspace() for c in path) or "/" in path or "\\" in path


def _is_location(line: str) -> bool:
    match = _LOCATION.match(line)
    return match is not None and _is_path(match["path"])


@dataclass
class _Block:
    """A piece of a traceback: plain text, a separator line, or one frame."""

    kind: Literal["text", "separator", "frame"]
    lines: list[str] = field(default_factory=list)
    style: Literal["long", "short", "native", ""] = ""
    path: str = ""
    indent: str = ""

    @property
    def has_e(self) -> bool:
        return any(_E_LINE.match(line) for line in self.lines)

    def reduced(self) -> _Block:
        """A library frame cut to what says where and why it failed."""
        e_lines = [line for line in self.lines if _E_LINE.match(line)]
        if self.style == "long":
            kept = [*e_lines, "", self.lines[-1]] if e_lines else [self.lines[-1]]
        else:
            kept = [self.lines[0], *e_lines]
        return _Block("frame", kept, self.style, self.path, self.indent)


def _parse(text: str) -> list[_Block]:
    """Split traceback text into text, separator and frame blocks, in order."""
    blocks: list[_Block] = []
    pending: list[str] = []
    frame: _Block | None = None  # an open short or native frame taking more lines

    def flush() -> None:
        if pending:
            blocks.append(_Block("text", pending.copy()))
            pending.clear()

    for line in text.split("\n"):
        if frame is not None:
            if frame.style == "short" and line and (line[0].isspace() or _E_LINE.match(line)):
                frame.lines.append(line)
                continue
            if frame.style == "native" and line.strip():
                indent = len(line) - len(line.lstrip())
                if indent > len(frame.indent) and not _NATIVE_HEADER.match(line):
                    frame.lines.append(line)
                    continue
            frame = None
        if SEPARATOR.match(line):
            flush()
            blocks.append(_Block("separator", [line]))
        elif line.strip() in _CHAIN_LINES:
            flush()
            blocks.append(_Block("text", [line]))
        elif (short := _SHORT_HEADER.match(line)) and _is_path(short["path"]):
            flush()
            frame = _Block("frame", [line], "short", short["path"])
            blocks.append(frame)
        elif native := _NATIVE_HEADER.match(line):
            flush()
            frame = _Block("frame", [line], "native", native["path"], native["indent"])
            blocks.append(frame)
        elif (location := _LOCATION.match(line)) and _is_path(location["path"]):
            blocks.append(_Block("frame", [*pending, line], "long", location["path"]))
            pending.clear()
        else:
            pending.append(line)
    flush()
    return blocks


def _join(blocks: list[_Block]) -> list[str]:
    """Lines of ``blocks`` without separators at the ends or twice in a row."""
    lines: list[str] = []
    previous = "separator"
    for index, block in enumerate(blocks):
        if block.kind == "separator":
            if previous == "separator" or index == len(blocks) - 1:
                continue
        previous = block.kind
        lines.extend(block.lines)
    return lines


@dataclass(frozen=True)
class _Anchor:
    """Decides which paths are the project's: those under ``root``, bar installed code."""

    roots: tuple[str, ...]

    @classmethod
    def of(cls, root: str | None) -> _Anchor:
        if not root:
            return cls(())
        plain = _norm(os.path.abspath(root))
        return cls(tuple({plain, _norm(os.path.realpath(root))}))

    def is_project(self, raw: str) -> bool:
        path = _norm(raw.strip())
        if path.startswith("<"):  # <frozen importlib._bootstrap>, <string>
            return False
        parts = path.split("/")
        if _LIBRARY_DIRS.intersection(parts):
            return False
        if _PYTHON_LIB.search(path):
            return False
        if self._inside(path):
            return True
        if _WINDOWS_LIB.search(path) or _under(path, _stdlib_dirs()):
            return False
        if _RUNNER_DIRS.intersection(parts[:-1]) or _under(path, (_AQE_DIR,)):
            return False
        return True  # outside the root but not installed code: an editable sibling, say

    def _inside(self, path: str) -> bool:
        if not _is_absolute(path):
            return not path.startswith("../") and path != ".."
        return _under(path, self.roots)


def _norm(path: str) -> str:
    return os.path.normpath(path).replace("\\", "/") if path else path


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or bool(re.match(r"^[A-Za-z]:/", path))


def _under(path: str, dirs: tuple[str, ...]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in dirs)
