"""``python -m aqe`` is ``aqe``."""

from aqe._entry import main

main()
