"""What an agent may ask for: paths inside the root, real node ids, no options.

The root is fixed when the server starts. Tool arguments only ever become single
elements of an argument list (never a shell line), and every one of them is
checked here first, so a crafted value cannot leave the project, load a plugin
or pass an option to pytest.
"""

from __future__ import annotations

import os
from pathlib import Path

from mcp.server.mcpserver.exceptions import ToolError

#: Longest path, node id, keyword or marker expression accepted.
MAX_ARGUMENT = 1000


def _plain(value: str, what: str) -> str:
    if not value or not value.strip():
        raise ToolError(f"{what} is empty")
    if len(value) > MAX_ARGUMENT:
        raise ToolError(f"{what} is longer than {MAX_ARGUMENT} characters")
    if value.lstrip().startswith("-"):
        raise ToolError(f"{what} {value[:80]!r} starts with '-': options cannot be passed here")
    if any(ord(ch) < 32 for ch in value):
        raise ToolError(f"{what} {value[:80]!r} contains control characters")
    return value


class Guard:
    """Checks tool arguments against one project root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, value: str, what: str = "path") -> str:
        """``value`` as a path relative to the root; it must exist inside it.

        Symlinks are resolved first, so a link that points outside is refused too.
        """
        _plain(value, what)
        candidate = Path(value)
        full = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        if full != self.root and self.root not in full.parents:
            raise ToolError(f"{what} {value[:200]!r} is outside the project root {self.root}")
        if not full.exists():
            raise ToolError(f"{what} {value[:200]!r} does not exist under {self.root}")
        relative = full.relative_to(self.root).as_posix()
        return relative or "."

    def paths(self, values: list[str] | None) -> tuple[str, ...]:
        return tuple(self.path(value, "path") for value in values or ())

    def nodeid_file(self, value: str) -> str:
        """Check the file part of a node id and return the id unchanged."""
        _plain(value, "node id")
        file, sep, rest = value.partition("::")
        relative = self.path(file, "node id")
        if relative != file.rstrip("/") and os.path.normpath(file) != relative:
            # pytest ids are root-relative with '/': anything else never matches one.
            raise ToolError(f"node id {value[:200]!r} is not relative to the project root")
        return value if not sep else f"{file}{sep}{rest}"

    @staticmethod
    def expression(value: str | None, what: str) -> str | None:
        """A ``-k`` or ``-m`` expression: passed as one argument, never parsed by a shell."""
        if value is None:
            return None
        return _plain(value, what)
