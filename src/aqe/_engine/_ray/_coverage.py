"""Coverage measured on Ray nodes, brought back to the driver and combined as locally.

A worker on a node is forked from its host, whose pytest-cov started coverage.py
with the run's own options; ``_engine._coverage`` then points the worker at a data
file of its own named after the *driver's* pid (``OWNER_ENV``), which is what the
coordinator's ``combine_workers`` picks up. On a shared filesystem those files land
beside the driver's data file and nothing more is needed. Otherwise (another
machine, or ``ray_upload``: the host runs in Ray's unpacked copy) the agent reads
them from its host's directory when the run ends; here they are rewritten with the
node's project directory mapped to the driver's (coverage.py's own path aliases) and
saved where ``combine_workers`` looks, so pytest-cov reports one set of totals.
"""

from __future__ import annotations

import contextlib
import glob
import os
import sys
import tempfile
from collections.abc import Iterable

from .. import _coverage

#: Set for the hosts: the driver's pid, which names its workers' data files.
OWNER_ENV = _coverage.OWNER_ENV


def measuring() -> str | None:
    """The driver's data file base when coverage.py measures this run, else None."""
    module = sys.modules.get("coverage")
    current = module.Coverage.current() if module is not None else None
    return _coverage._base(current) if current is not None else None


def pattern(base_dir: str, owner: int) -> str:
    """Data files of the workers of driver ``owner`` in ``base_dir``."""
    return os.path.join(glob.escape(base_dir), f".coverage*.{_coverage._PREFIX}{owner}-*")


def local_files(owner: int) -> list[str]:
    """Those the driver sees itself (a shared filesystem: no need to send them), and
    its own data file."""
    base = measuring()
    return [base, *sorted(glob.glob(pattern(os.path.dirname(base), owner)))] if base else []


def take(base_dir: str, owner: int, skip: Iterable[str]) -> list[tuple[str, bytes]]:
    """On a node: the workers' data files in ``base_dir`` the driver does not see,
    read and removed (nothing of a run is left on the node)."""
    found = []
    seen = set(skip)
    for path in sorted(glob.glob(pattern(base_dir, owner))):
        if path in seen or path.endswith("-journal"):
            continue
        try:
            with open(path, "rb") as stream:
                found.append((path, stream.read()))
            os.unlink(path)
        except OSError:
            continue
    # The host's own file (what it measured before forking is in every worker's
    # too), in a directory the driver does not share.
    own = os.path.join(base_dir, ".coverage")
    if own not in seen:
        with contextlib.suppress(OSError):
            os.unlink(own)
    return found


def bring_back(files: list[tuple[str, bytes]], node_dir: str, label: str) -> int:
    """Save a node's data files where ``combine_workers`` reads them, with the node's
    directory ``node_dir`` mapped to the driver's working directory; how many."""
    base = measuring()
    if base is None or not files:
        return 0
    from coverage import CoverageData

    node_root, here = os.path.join(os.path.abspath(node_dir), ""), os.path.join(os.getcwd(), "")

    def local(path: str) -> str:
        return here + path[len(node_root) :] if path.startswith(node_root) else path

    saved = 0
    with tempfile.TemporaryDirectory(prefix="aqe-ray-cov-") as scratch:
        for index, (path, data) in enumerate(files):
            copy = os.path.join(scratch, f"part{index}")
            with open(copy, "wb") as stream:
                stream.write(data)
            node = CoverageData(basename=copy)
            target = CoverageData(
                basename=base, suffix=f"{_coverage._PREFIX}{os.getpid()}-{label}-{index}"
            )
            try:
                node.read()
                target.update(node, map_path=local)
                target.write()
                saved += 1
            except Exception as exc:
                sys.stderr.write(f"aqe: could not bring back coverage data {path}: {exc}\n")
            finally:
                with contextlib.suppress(Exception):
                    node.close()
                with contextlib.suppress(Exception):
                    target.close()
    return saved
