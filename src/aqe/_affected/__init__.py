"""Run what a change affects: per-test dependency maps, ``--affected`` and ``--changed``.

Why a package of its own: selection sits between the command line and the engine.
It reads git and the history, decides which tests run and why, and hands the engine
only a pytest plugin (``_filter``, loaded with ``-p``) and, when recording, a second
one (``_recorder``) that workers load: the engine itself knows nothing of it.
"""
