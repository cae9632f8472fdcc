"""The ``aqe`` command's entry point, importing as little as possible before it can
answer Ctrl-C: an interrupt while the CLI loads ends aqe with exit 2 and one line,
never a traceback."""

from __future__ import annotations

import os
import sys


def main() -> None:
    try:
        from ._cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        pass
    else:  # pragma: no cover - cli_main always exits
        return
    sys.stderr.write("aqe: interrupted\n")
    sys.stderr.flush()
    # Not sys.exit: under ``python -m`` an interrupt that unwinds through runpy
    # can still make the interpreter end itself with SIGINT instead of exit 2.
    os._exit(2)
