"""The public Python API's implementation; ``aqe/__init__.py`` re-exports it.

Nothing here imports pytest, click or sqlite3 at import time: ``import aqe`` must
stay cheap for scripts and tools that only read a report.
"""
