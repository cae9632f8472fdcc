r"""Per-test parity of ``aqe run`` with plain pytest on a real project's test suite.

Given a project directory and the python of a venv that has both the project and aqe
installed, this runs

* plain ``python -m pytest -p no:cacheprovider [ARGS]`` with the outcome recorder of
  ``tests/parity.py`` (``OutcomeRecorder``: one outcome per test from its setup / call /
  teardown reports, the same rule aqe uses), and
* ``aqe run [PATHS] -w N --no-history --json F [-- OPTIONS]``,

both from the project directory, then compares the outcome of every node id. It prints
the counts per outcome under both tools, the ids only one tool ran, every id whose
outcome differs (both outcomes, plus aqe's message and pytest's failure text), and exits
1 on any mismatch (0 when every id has the same outcome, 2 when a tool could not run).

``--pytest-runs 2`` runs plain pytest twice: a test whose outcome differs between the two
plain runs is flaky on its own and is listed apart; a mismatch on such a test does not
make the exit code 1. ``--timing`` then runs serial pytest, ``pytest -n N`` (when
pytest-xdist is installed in the venv) and ``aqe run -w N`` a few times, interleaved, and
prints median wall times. ``--out-dir`` keeps every tool's output and the aqe JSON report.

Like the ``pytest`` script (and aqe), plain pytest runs as ``python -P -m pytest`` so the
project directory is not put on ``sys.path``; ``--cwd-on-path`` turns that off. (Not
``PYTHONSAFEPATH=1``: processes the tests start would inherit it, and werkzeug's dev-server
tests then cannot import their app and wait forever.)

Usage::

    PY=/work/realworld/click/venv/bin/python
    python benchmarks/realworld.py /work/realworld/click-8.5.1 --python $PY
    python benchmarks/realworld.py DIR --python $PY --pytest-runs 2 --out-dir /tmp/x
    python benchmarks/realworld.py DIR --python $PY --timing --reps 3
    python benchmarks/realworld.py DIR --python $PY -- -p no:randomly tests/unit

Arguments after ``--`` go to both tools: to pytest as they are, to aqe split into paths
(given before ``--``) and options (given after it).

How the projects checked so far were set up (Python 3.11.7, pytest 9.2.0, pluggy 1.7.0,
pytest-xdist 3.8.0, 2 cores; aqe's own dependencies click 8.5.1 and rich 15.0.0)::

    mkdir -p /work/realworld/sdists && cd /work/realworld/sdists
    pip download --no-deps --no-binary :all: attrs==26.1.0 click==8.5.1 jinja2==3.1.6 \
        python-dateutil==4.0.0 packaging==26.3 boltons==26.2.0 pyparsing==3.3.3 \
        more-itertools==11.2.1 toolz==1.2.0
    cd /work/realworld && for f in sdists/*.tar.gz; do tar xzf "$f"; done

    # then, for each NAME / SRC / DEPS of the table below:
    python3 -m venv /work/realworld/NAME/venv
    /work/realworld/NAME/venv/bin/pip install -e /work/main          # aqe, editable
    /work/realworld/NAME/venv/bin/pip install -e /work/realworld/SRC  # the project
    /work/realworld/NAME/venv/bin/pip install pytest-xdist DEPS       # xdist for --timing

    NAME            SRC                     DEPS (versions pip chose)
    attrs           attrs-26.1.0            cloudpickle==3.1.2 hypothesis==6.170.15 pympler==1.1
    click           click-8.5.1             -
    jinja2          jinja2-3.1.6            trio==0.35.0
    dateutil        python_dateutil-4.0.0   freezegun==1.5.5 hypothesis==6.170.15
                                            pytest-cov==7.1.0 attrs==26.1.0
    packaging       packaging-26.3          hypothesis==6.170.15 pretend==1.0.9 tomli_w==1.2.0
    boltons         boltons-26.2.0          -
    pyparsing       pyparsing-3.3.3         railroad-diagrams jinja2==3.1.6
    more-itertools  more_itertools-11.2.1   -
    flask           flask-3.1.3             asgiref greenlet python-dotenv pytest==9.0.3
                                            (flask's tests import a name pytest 9.1 removed)
    werkzeug        werkzeug-3.1.9          cffi cryptography ephemeral-port-reserve
                                            pytest-timeout watchdog==6.0.0 (7.1 hangs a test)
    trio            trio-0.35.0             coverage async_generator pyOpenSSL trustme pylint
                                            jedi cryptography black mypy ruff astor isort
                                            pyyaml typing-extensions pyright types-cffi
                                            types-pyOpenSSL types-docutils mypy-extensions
                                            (run with ``-- src/trio``)
    structlog       structlog-26.1.0        pytest-asyncio pytest-randomly simplejson
                                            time-machine>=2.14.1
    freezegun       freezegun-1.5.5         pytest-cov python-dateutil maya
    pytest          pytest-9.2.0 (its own   the project's ``[dev]`` extra (run with
                    suite)                  ``-- testing``; its sdist replaces the venv's pytest)
    toolz           toolz-1.2.0             -
    rich            rich-15.0.0 (tests from pytest-xdist attrs typing-extensions
                    Debian's orig tarball;  (run with TERM=unknown, as rich's Makefile)
                    PyPI's sdist has none)
    pygments        pygments-2.21.0         pytest-cov pytest-randomly wcag-contrast-ratio
                                            (run with ``-- -p no:randomly``)
    anyio           anyio-4.16.0 (``[trio]``) blockbuster coverage[toml] hypothesis psutil
                                            pytest-mock pytest-timeout trustme truststore
                                            uvloop (run with ``-- "-mnot network"``)
    marshmallow     marshmallow-4.4.0       simplejson

(python-dateutil needs pytest-cov, whose ``no_cover`` marker its conftest uses under
``filterwarnings = error``, and attrs, imported by tests/test_tzfile.py.)

Each check, from anywhere (boltons as its tox.ini runs it, with its doctests)::

    cd /work/main
    for p in toolz:toolz-1.2.0 jinja2:jinja2-3.1.6 click:click-8.5.1 attrs:attrs-26.1.0 \
             more-itertools:more_itertools-11.2.1 dateutil:python_dateutil-4.0.0 \
             pyparsing:pyparsing-3.3.3 packaging:packaging-26.3; do
        python3 benchmarks/realworld.py /work/realworld/${p#*:} \
            --python /work/realworld/${p%%:*}/venv/bin/python --pytest-runs 2 --timing -q
    done
    python3 benchmarks/realworld.py /work/realworld/boltons-26.2.0 \
        --python /work/realworld/boltons/venv/bin/python --pytest-runs 2 --timing -q \
        -- --doctest-modules boltons tests
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from parity import split_args  # after the sys.path tweak, so the script runs from any cwd

#: The file holding ``OutcomeRecorder``; copied next to the plugin stub for each run.
_PARITY = Path(__file__).resolve().parent.parent / "tests" / "parity.py"

OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")

_OUT_ENV = "AQE_PARITY_OUTCOMES_FILE"
_PLUGIN_NAME = "_aqe_parity_plugin"
_COPY_NAME = "_aqe_parity"
_DROP_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER")

# The same stub as tests/parity.py: it registers OutcomeRecorder from a copy of parity.py,
# and also keeps each failing test's long report text for the mismatch listing.
_PLUGIN_STUB = f"""\
import json
import os

from {_COPY_NAME} import OutcomeRecorder


class _Texts:
    def __init__(self, path):
        self.path = path
        self.texts = {{}}

    def pytest_runtest_logreport(self, report):
        if report.failed or (report.skipped and report.when != "teardown"):
            text = report.longreprtext
            self.texts[report.nodeid] = self.texts.get(report.nodeid, "") + (
                f"[{{report.when}}] {{text}}\\n"
            )

    def pytest_sessionfinish(self):
        with open(self.path, "w", encoding="utf-8") as f:
            json.dump(self.texts, f)


def pytest_configure(config):
    out = os.environ["{_OUT_ENV}"]
    config.pluginmanager.register(OutcomeRecorder(out), "aqe-parity")
    config.pluginmanager.register(_Texts(out + ".texts"), "aqe-parity-texts")
"""


@dataclass
class ToolRun:
    """One run of one tool: exit code, wall time, outcome per node id."""

    name: str
    command: list[str]
    exit_code: int
    seconds: float
    output: str
    outcomes: dict[str, str] = field(default_factory=dict)
    #: Failure / skip text per node id (pytest's longrepr, aqe's message + traceback).
    texts: dict[str, str] = field(default_factory=dict)
    collection_errors: list[str] = field(default_factory=list)
    ok: bool = True


def child_env() -> dict[str, str]:
    """The environment of every child run: no leaked pytest variables, no colours."""
    env = {key: value for key, value in os.environ.items() if key not in _DROP_ENV}
    env["PY_COLORS"] = "0"
    env["NO_COLOR"] = "1"
    return env


def pytest_command(python: Path, opts: argparse.Namespace) -> list[str]:
    """``python -P -m pytest -p no:cacheprovider`` (``-P``: see the module docstring)."""
    safe = [] if opts.cwd_on_path else ["-P"]
    return [str(python), *safe, "-m", "pytest", "-p", "no:cacheprovider"]


def run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float, log: Path
) -> tuple[int, float]:
    """Run ``command`` with its output in ``log``; return (exit code, wall seconds).

    The child gets its own process group, killed whole on timeout (exit code -9). The
    output goes to a file, not a pipe, so the harness does not wake on every character
    of a run it times.
    """
    with log.open("w", encoding="utf-8") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = -signal.SIGKILL
        seconds = time.perf_counter() - start
    return code, seconds


def aqe_command(python: Path) -> list[str]:
    """The ``aqe`` script next to ``python``, else ``python -m aqe``."""
    script = python.with_name("aqe")
    return [str(script)] if script.exists() else [str(python), "-m", "aqe"]


def run_plain(
    python: Path, project: Path, args: list[str], work: Path, tag: str, opts: argparse.Namespace
) -> ToolRun:
    """Plain ``python -m pytest -p no:cacheprovider ARGS`` with the outcome recorder."""
    plugin_dir = work / "plugin"
    plugin_dir.mkdir(exist_ok=True)
    shutil.copyfile(_PARITY, plugin_dir / f"{_COPY_NAME}.py")
    (plugin_dir / f"{_PLUGIN_NAME}.py").write_text(_PLUGIN_STUB, encoding="utf-8")
    out = work / f"{tag}-outcomes.json"
    env = child_env()
    env[_OUT_ENV] = str(out)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_dir), env.get("PYTHONPATH")]))
    command = [*pytest_command(python, opts), "-p", _PLUGIN_NAME, *args]
    log = work / f"{tag}.log"
    code, seconds = run(command, project, env, opts.timeout, log)
    result = ToolRun(tag, command, code, seconds, log.read_text(encoding="utf-8", errors="replace"))
    if not out.exists():
        result.ok = False
        return result
    data = json.loads(out.read_text(encoding="utf-8"))
    result.outcomes = data["tests"]
    result.collection_errors = data["collection_errors"]
    texts = Path(f"{out}.texts")
    if texts.exists():
        result.texts = json.loads(texts.read_text(encoding="utf-8"))
    return result


def run_aqe(
    python: Path, project: Path, args: list[str], work: Path, tag: str, opts: argparse.Namespace
) -> ToolRun:
    """``aqe run PATHS -w N --no-history --json F -- -p no:cacheprovider OPTIONS``; outcome
    of the last attempt. The cache plugin is off as in the plain runs: a test that uses
    its ``cache`` fixture (pytest's own suite has some) errors under both, not one."""
    paths, options = split_args(args)
    report_path = work / f"{tag}.json"
    command = [*aqe_command(python), "run", *paths, "-w", str(opts.workers), "--no-history"]
    command += ["--json", str(report_path), "--", "-p", "no:cacheprovider", *options]
    log = work / f"{tag}.log"
    code, seconds = run(command, project, child_env(), opts.timeout, log)
    result = ToolRun(tag, command, code, seconds, log.read_text(encoding="utf-8", errors="replace"))
    if not report_path.exists():
        result.ok = False
        return result
    report = json.loads(report_path.read_text(encoding="utf-8"))
    last_attempt: dict[str, int] = {}
    for test in report.get("tests", []):
        nodeid, attempt = test["nodeid"], int(test.get("attempt", 1))
        if attempt >= last_attempt.get(nodeid, 0):
            last_attempt[nodeid] = attempt
            result.outcomes[nodeid] = test["outcome"]
            message, traceback = test.get("message") or "", test.get("traceback") or ""
            text = traceback if message in traceback else f"{message}\n{traceback}".strip()
            if text:
                result.texts[nodeid] = text
    result.collection_errors = [e["location"] for e in report.get("collection_errors", [])]
    return result


def counts(outcomes: dict[str, str]) -> str:
    """``1200 passed, 3 skipped, ...`` in the fixed outcome order, zero counts left out."""
    tally = collections.Counter(outcomes.values())
    parts = [f"{tally[o]} {o}" for o in OUTCOMES if tally[o]]
    parts += [f"{n} {o}" for o, n in sorted(tally.items()) if o not in OUTCOMES]
    return ", ".join(parts) or "no tests"


def clip(text: str, lines: int = 12) -> str:
    """The last ``lines`` lines of ``text``, indented for the report."""
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(f"        {line}" for line in kept)


def compare(plain: list[ToolRun], aqe: ToolRun, verbose: bool) -> int:
    """Print the parity report; return the number of mismatches not explained by flakiness."""
    reference = plain[0]
    flaky = {
        nodeid
        for other in plain[1:]
        for nodeid in set(reference.outcomes) | set(other.outcomes)
        if reference.outcomes.get(nodeid) != other.outcomes.get(nodeid)
    }
    for index, p in enumerate(plain, 1):
        print(
            f"pytest run {index}: exit {p.exit_code}, {len(p.outcomes)} tests: "
            f"{counts(p.outcomes)}  ({p.seconds:.1f} s)"
        )
    print(
        f"aqe run:      exit {aqe.exit_code}, {len(aqe.outcomes)} tests: "
        f"{counts(aqe.outcomes)}  ({aqe.seconds:.1f} s)"
    )
    if reference.exit_code != aqe.exit_code:
        print(f"  exit codes differ: pytest {reference.exit_code}, aqe {aqe.exit_code}")
    if sorted(reference.collection_errors) != sorted(aqe.collection_errors):
        print(
            f"  collection errors differ: pytest {reference.collection_errors}, "
            f"aqe {aqe.collection_errors}"
        )
    if flaky:
        print(f"\n{len(flaky)} test(s) FLAKY under plain pytest (outcome differs between runs):")
        for nodeid in sorted(flaky):
            seen = ", ".join(p.outcomes.get(nodeid, "absent") for p in plain)
            print(f"    {nodeid}: pytest {seen}; aqe {aqe.outcomes.get(nodeid, 'absent')}")

    mismatches = 0
    only_pytest = sorted(set(reference.outcomes) - set(aqe.outcomes) - flaky)
    only_aqe = sorted(set(aqe.outcomes) - set(reference.outcomes) - flaky)
    differ = sorted(
        nodeid
        for nodeid in set(reference.outcomes) & set(aqe.outcomes)
        if reference.outcomes[nodeid] != aqe.outcomes[nodeid] and nodeid not in flaky
    )
    for title, ids in (("only pytest ran", only_pytest), ("only aqe ran", only_aqe)):
        if ids:
            mismatches += len(ids)
            print(f"\n{len(ids)} test id(s) {title}:")
            for nodeid in ids:
                outcome = reference.outcomes.get(nodeid) or aqe.outcomes.get(nodeid)
                print(f"    {nodeid}  ({outcome})")
    if differ:
        mismatches += len(differ)
        print(f"\n{len(differ)} test(s) with a DIFFERENT outcome:")
        for nodeid in differ:
            print(f"    {nodeid}: pytest {reference.outcomes[nodeid]}, aqe {aqe.outcomes[nodeid]}")
            if verbose:
                for name, tool in (("pytest", reference), ("aqe", aqe)):
                    if nodeid in tool.texts:
                        print(f"      {name} said:\n{clip(tool.texts[nodeid])}")
    if mismatches == 0:
        common = len(set(reference.outcomes) - flaky)
        print(
            f"\nPARITY: all {common} non-flaky test ids ran under both tools with the same outcome."
        )
    else:
        print(f"\nMISMATCH: {mismatches} test id(s) differ between pytest and aqe.")
    return mismatches


def has_xdist(python: Path) -> bool:
    probe = [str(python), "-c", "import xdist"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def timing(
    python: Path, project: Path, args: list[str], work: Path, opts: argparse.Namespace
) -> None:
    """Interleaved runs of each tool; print the median wall time of each."""
    paths, options = split_args(args)
    tools: dict[str, list[str]] = {
        "pytest (serial)": [*pytest_command(python, opts), "-q", *args],
    }
    if has_xdist(python):
        tools[f"pytest -n {opts.workers}"] = [*tools["pytest (serial)"], "-n", str(opts.workers)]
    aqe = [*aqe_command(python), "run", *paths, "-w", str(opts.workers), "--no-history"]
    tools[f"aqe -w {opts.workers}"] = aqe + (["--", *options] if options else [])
    times: dict[str, list[float]] = {name: [] for name in tools}
    codes: dict[str, set[int]] = {name: set() for name in tools}
    for rep in range(opts.reps):
        for name, command in tools.items():
            env = child_env()
            code, seconds = run(command, project, env, opts.timeout, work / f"timing-{rep}.log")
            times[name].append(seconds)
            codes[name].add(code)
    print(f"\nWall times over {opts.reps} interleaved rep(s) (median, min-max):")
    for name, values in times.items():
        print(
            f"    {name:18} {statistics.median(values):7.2f} s  "
            f"({min(values):.2f}-{max(values):.2f})  exit {sorted(codes[name])}"
        )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser(
        description="Compare aqe's per-test outcomes with plain pytest on a real project.",
        epilog="Arguments after -- go to both pytest and aqe.",
    )
    parser.add_argument("project", type=Path, help="project root (where you would run pytest)")
    parser.add_argument(
        "--python",
        type=Path,
        required=True,
        help="python of a venv with the project, pytest and aqe installed",
    )
    parser.add_argument("--workers", type=int, default=2, help="aqe -w / pytest -n (default 2)")
    parser.add_argument(
        "--pytest-runs",
        type=int,
        default=1,
        help="plain pytest runs, to tell flaky tests apart (default 1)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run (900)")
    parser.add_argument("--timing", action="store_true", help="also time the tools")
    parser.add_argument("--reps", type=int, default=3, help="timing reps per tool (default 3)")
    parser.add_argument("--out-dir", type=Path, help="keep logs and the aqe JSON report here")
    parser.add_argument("--cwd-on-path", action="store_true", help="run plain pytest without -P")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="list mismatches without their failure texts"
    )
    opts = parser.parse_args(argv)
    project: Path = opts.project.resolve()
    # Not resolved: a venv's python is a symlink, and resolving it would leave the venv.
    python = Path(os.path.normpath(opts.python.absolute()))

    with contextlib.ExitStack() as stack:
        if opts.out_dir:
            work = opts.out_dir.resolve()
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aqe-rw-")))
        print(f"project: {project}\npython:  {python}\nargs:    {extra}\n")
        plain = [
            run_plain(python, project, extra, work, f"pytest-{i}", opts)
            for i in range(1, opts.pytest_runs + 1)
        ]
        aqe = run_aqe(python, project, extra, work, "aqe", opts)
        broken = [tool for tool in (*plain, aqe) if not tool.ok]
        for tool in broken:
            print(f"{tool.name} wrote no outcomes (exit {tool.exit_code}):")
            print(f"  $ {' '.join(tool.command)}\n{clip(tool.output, 30)}")
        if broken:
            return 2
        mismatches = compare(plain, aqe, not opts.quiet)
        if opts.timing:
            timing(python, project, extra, work, opts)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
