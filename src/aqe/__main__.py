"""``python -m aqe`` is ``aqe``."""

from aqe._cli import main

main()
