"""Every answer fits a byte budget; long lists come in pages behind a cursor.

Agents' hosts reject or silently cut large tool results, and every byte spent on
a listing is context the agent cannot use for the fix. A page keeps whole items
(never half of one) until the next would pass the budget.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

#: Default budget of one answer, in bytes of JSON text.
DEFAULT_BUDGET = 8 * 1024


def size(value: Any) -> int:
    """Bytes of ``value`` as JSON, counted the roomy way (spaces after separators,
    non-ASCII escaped) so that no client's serialisation comes out larger."""
    return len(json.dumps(value).encode())


def start_of(cursor: str | None, total: int) -> int:
    """The offset a cursor stands for; a cursor is only ever one this server gave."""
    if cursor is None or cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 9:
        raise ToolError(f"cursor {cursor[:40]!r} is not one this server returned")
    offset = int(cursor)
    if offset > total:
        raise ToolError(f"cursor {cursor!r} is past the end ({total} items)")
    return offset


def page(
    items: Sequence[dict[str, Any]],
    offset: int,
    limit: int,
    budget: int,
    spent: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """Items from ``offset``: at most ``limit`` and ``budget - spent`` bytes.

    Returns the page and the cursor of the next one (None at the end). At least
    one item is always returned, so paging can never stall; an item too large
    for any page must be trimmed by its maker beforehand.
    """
    kept: list[dict[str, Any]] = []
    used = spent
    for item in items[offset : offset + limit]:
        cost = size(item) + 1
        if kept and used + cost > budget:
            break
        kept.append(item)
        used += cost
    end = offset + len(kept)
    return kept, (str(end) if end < len(items) else None)
