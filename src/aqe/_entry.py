"""The ``aqe`` command's entry point, importing as little as possible before it can
answer Ctrl-C: an interrupt while the CLI loads ends aqe with exit 2 and one line,
never a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from ._cli import main as cli_main

        cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("aqe: interrupted\n")
        sys.exit(2)
