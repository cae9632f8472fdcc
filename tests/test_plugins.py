"""Third-party plugins end to end: a shell-script adapter, and plugins that misbehave.

The adapter under ``fixtures/shell_adapter`` is an installable package. Rather than
pip-installing it for every session, each test registers it as an installed
distribution would be: a ``*.dist-info`` directory holding ``entry_points.txt``, put
on ``PYTHONPATH`` for the aqe subprocess with the package's source beside it.
``importlib.metadata`` finds entry points exactly there, so aqe takes the same path
as for a pip-installed plugin, and nothing is written outside ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import pytest
from conftest import RunAqe

FIXTURE = Path(__file__).parent / "fixtures" / "shell_adapter"


def plugin_site(
    tmp_path: Path, entries: Mapping[str, Mapping[str, str]], name: str = "plug"
) -> str:
    """A PYTHONPATH on which ``entries`` ({group: {name: "module:attr"}}) are installed."""
    site = tmp_path / f"site-{name}"
    info = site / f"{name}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = []
    for group, named in entries.items():
        lines.append(f"[{group}]")
        lines += [f"{key} = {value}" for key, value in named.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return os.pathsep.join([str(site), str(FIXTURE / "src")])


def shell_project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    project = tmp_path / "project"
    shutil.copytree(FIXTURE / "project", project)
    state = tmp_path / "state"
    state.mkdir()
    env = {
        "PYTHONPATH": plugin_site(tmp_path, {"aqe.adapters": {"shell": "aqe_shell:ShellAdapter"}}),
        "SHELL_TEST_STATE": str(state),
    }
    return project, env


def test_a_shell_adapter_runs_with_history_retries_and_reports(
    tmp_path: Path, run_aqe: RunAqe
) -> None:
    project, env = shell_project(tmp_path)
    done = run_aqe(
        "run", "-w", "2", "--retries", "1", "--junit-xml", "out.xml", "--json", "out.json",
        cwd=project, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    # The terminal reporter: the adapter prints no summary of its own.
    assert "FAILED shell_tests/fails.sh - expected 3, got 4" in done.stdout
    assert "1 failed, 1 passed, 1 skipped, 1 flaky in" in done.stdout

    report = json.loads((project / "out.json").read_text())
    attempts = sorted((t["nodeid"], t["attempt"], t["outcome"]) for t in report["tests"])
    assert attempts == [
        ("shell_tests/fails.sh", 1, "failed"),
        ("shell_tests/fails.sh", 2, "failed"),
        ("shell_tests/flaky_once.sh", 1, "failed"),
        ("shell_tests/flaky_once.sh", 2, "flaky"),
        ("shell_tests/passes.sh", 1, "passed"),
        ("shell_tests/skips.sh", 1, "skipped"),
    ]
    suite = ET.parse(project / "out.xml").getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "1", "1")

    history = run_aqe("history", cwd=project, env=env)
    assert history.returncode == 0 and "exit 1" in history.stdout
    flaky = run_aqe("flaky", "--json", cwd=project, env=env)
    labels = {t["nodeid"]: t["label"] for t in json.loads(flaky.stdout)["tests"]}
    assert labels["shell_tests/flaky_once.sh"] == "flaky"
    assert labels["shell_tests/fails.sh"] == "broken"
    listed = run_aqe("list", cwd=project, env=env)
    assert "shell_tests/passes.sh" in listed.stdout  # estimated from the history now


def test_an_explicit_adapter_wins_over_detection(tmp_path: Path, run_aqe: RunAqe) -> None:
    project, env = shell_project(tmp_path)
    with (project / "pyproject.toml").open("a") as config:
        config.write('adapter = "pytest"\n')
    done = run_aqe("run", cwd=project, env=env)
    assert done.returncode == 5, done.stderr  # pytest: no tests here
    assert "no tests ran" in done.stdout


BAD_ADAPTERS = {
    "aqe_bad_import": "import no_such_dependency_anywhere\n",
    "aqe_bad_methods": "class Adapter:\n    name = 'bad'\n"
    "    def detect(self, root): return True\n",
    "aqe_bad_run": textwrap.dedent(
        """
        class Adapter:
            name = "bad"
            def detect(self, root): return True
            def collect(self, request): return []
            def run(self, request, events): raise RuntimeError("the runner caught fire")
        """
    ),
}


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("aqe_bad_import", "aqe: error: adapter entry point 'bad' (aqe_bad_import:Adapter) "
         "failed to load: ModuleNotFoundError: No module named 'no_such_dependency_anywhere'"),
        ("aqe_bad_methods", "aqe: error: adapter entry point 'bad' (aqe_bad_methods:Adapter) "
         "lacks collect, run"),
        ("aqe_bad_run", "aqe: error: adapter 'bad' failed during the run: "
         "RuntimeError: the runner caught fire"),
    ],
)  # fmt: skip
def test_a_bad_adapter_is_one_line_naming_it(
    tmp_path: Path, run_aqe: RunAqe, module: str, expected: str
) -> None:
    path = plugin_site(tmp_path, {"aqe.adapters": {"bad": f"{module}:Adapter"}})
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / f"{module}.py").write_text(BAD_ADAPTERS[module])
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    env = {"PYTHONPATH": os.pathsep.join([path, str(modules)])}
    done = run_aqe("run", "--json", "out.json", cwd=project, env=env)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == expected


def test_a_bad_reporter_is_one_line_and_the_other_reports_are_written(
    tmp_path: Path, run_aqe: RunAqe
) -> None:
    project, env = shell_project(tmp_path)
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "aqe_bad_reporter.py").write_text(
        "class Reporter:\n    name = 'boom'\n"
        "    def write(self, run, destination): raise KeyError('no template')\n"
    )
    site = plugin_site(tmp_path, {"aqe.reporters": {"boom": "aqe_bad_reporter:Reporter"}}, "rep")
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], site, str(modules)])
    with (project / "pyproject.toml").open("a") as config:
        config.write('reports = ["boom=out.html"]\n')
    done = run_aqe("run", "--json", "out.json", cwd=project, env=env)
    assert done.returncode == 3
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "aqe: error: reporter 'boom' failed: KeyError: 'no template'"
    )
    assert json.loads((project / "out.json").read_text())["tests"]


def test_the_fixture_package_declares_the_entry_point_the_tests_register() -> None:
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    declared = tomllib.loads((FIXTURE / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared == {"aqe.adapters": {"shell": "aqe_shell:ShellAdapter"}}


COUNTING_BACKEND = """
import os


class Counting:
    \"\"\"An aqe.backends plugin: aqe's local workers, each start written down.\"\"\"

    def start(self, context):
        inner = context.local()
        marks = os.environ["BACKEND_MARKS"]

        class Wrapped:
            def spawn(self, worker_id):
                with open(marks, "a") as out:
                    out.write(f"{worker_id} of {context.workers}\\n")
                return inner.spawn(worker_id)

            def reap(self, pid, grace=0.5):
                return inner.reap(pid, grace)

            def poll(self, pid):
                return inner.poll(pid)

            def stop(self):
                inner.stop()

        return Wrapped()
"""


@pytest.mark.e2e
def test_an_execution_backend_plugin_starts_the_workers(
    tmp_path: Path, run_aqe: RunAqe
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    for name in ("a", "b", "c"):
        (project / f"test_{name}.py").write_text("def test_one():\n    pass\n")
    site = plugin_site(tmp_path, {"aqe.backends": {"counting": "counting_backend:Counting"}})
    (Path(site.split(os.pathsep)[0]) / "counting_backend.py").write_text(COUNTING_BACKEND)
    marks = tmp_path / "marks"
    env = {"PYTHONPATH": site, "BACKEND_MARKS": str(marks)}
    done = run_aqe("run", "-w", "2", "--backend", "counting", cwd=project, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    assert sorted(marks.read_text().splitlines()) == ["0 of 2", "1 of 2"]
    missing = run_aqe("run", "--backend", "nowhere", cwd=project, env=env)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().splitlines() == [
        "aqe: error: no backend named 'nowhere' (installed: counting, local, ray)"
    ], missing.stderr
