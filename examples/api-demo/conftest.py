"""The demo's local settings: the development key its app and its tests share.

The generated tests read their credential from ``API_KEY`` (never from their own files);
a real project sets it in CI's secrets. ``DEMO_API_KEY`` is the key ``app.py`` accepts.
"""

import os

os.environ.setdefault("DEMO_API_KEY", "demo-key")
os.environ.setdefault("API_KEY", os.environ["DEMO_API_KEY"])
