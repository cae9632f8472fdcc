"""The fast loop's guard (tests/conftest.py): a test that starts a process must be
marked ``e2e``, or it fails; run in-process on a copy of the real conftest."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py").read_text(encoding="utf-8")


def test_an_unmarked_test_that_starts_a_process_fails_and_a_marked_one_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the inner run needs none
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nmarkers =\n    e2e: starts processes\n")
    pytester.makepyfile(
        test_inner="""
        import subprocess, sys
        import pytest

        def test_unmarked():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        def test_swallows_it():
            try:
                subprocess.run([sys.executable, "-c", "pass"])
            except BaseException:
                pass

        @pytest.mark.e2e
        def test_marked():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        def test_uses_run_aqe(run_aqe):
            pass

        def test_plain():
            pass
        """
    )
    # Only -m "not e2e" runs here, so no process is started: the guard refuses both.
    result = pytester.runpytest_inprocess("-m", "not e2e", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2, deselected=2)
    result.stdout.fnmatch_lines(["*test_unmarked starts a process*not marked e2e*"])
