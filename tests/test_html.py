"""The HTML report: its data and page (unit), and the page in headless Chromium (e2e)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HANG_GUARD, MakeProject, RunAqe

from aqe._model import RunRecord, TestResult
from aqe._reporting.html import DETAILED_ATTEMPTS, TrendPoint, build_data, render
from aqe._runner import history_trend, stored_run
from aqe._store import open_history

CHROMIUM = "/usr/bin/chromium"
#: Flags that work as root on a machine without a display or network.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def result(nodeid: str, outcome: str = "passed", **more: Any) -> TestResult:
    fields: dict[str, Any] = {"line": 3, "phases": {"call": 0.25}, "worker": 0, "start": 101.0}
    fields.update(more)
    return TestResult(nodeid, nodeid.split("::", 1)[0], outcome=outcome, **fields)


def record(*results: TestResult) -> RunRecord:
    run = RunRecord("r2", 100.0, ["aqe", "run"], "/proj", 2, end=104.0, exit_code=1)
    run.results.extend(results)
    return run


def test_the_data_is_columnar_with_times_from_the_run_start() -> None:
    run = record(
        result("t/test_a.py::test_one"),
        result("t/test_a.py::test_two", "failed", message="boom", traceback="tb", worker=1),
        result("t/test_a.py::test_two", "passed", attempt=2, tier="warm", start=102.5),
        result("t/test_b.py::test_three", "skipped", start=0.0, message="later"),
    )
    data = build_data(run)
    assert data["files"] == ["t/test_a.py", "t/test_b.py"]
    assert data["tests"] == [[0, "test_one", 3], [0, "test_two", 3], [1, "test_three", 3]]
    assert data["attempts"] == {
        "t": [0, 1, 1, 2], "o": [1, 0, 1, 2], "w": [0, 1, 0, 0], "a": [1, 1, 2, 1],
        "r": [0, 0, 1, 0], "s": [1000, 1000, 2500, -1], "d": [250, 250, 250, 250],
        "q": [0, 0, 0, 0],
    }  # fmt: skip
    # Only attempts that did not pass keep their text.
    assert data["details"] == {
        "1": [None, None, "boom", "tb", "", "", ""],
        "3": [None, None, "later", "", "", "", ""],
    }
    assert data["trend"] == [["r2", 100.0, 3, 0, 0]]


def test_markers_are_a_table_and_a_sparse_column() -> None:
    run = record(
        result("t/test_a.py::test_one", markers=("db", "slow")),
        result("t/test_a.py::test_two"),
        result("t/test_a.py::test_two", attempt=2),
        result("t/test_b.py::test_three", markers=("slow",)),
    )
    data = build_data(run)
    assert data["markers"] == ["db", "slow"]
    assert data["test_markers"] == {"0": [0, 1], "2": [1]}
    assert build_data(record(result("t/test_a.py::test_one")))["markers"] == []


def test_text_is_capped_and_a_run_where_everything_failed_stays_small() -> None:
    huge = "x" * 100_000
    run = record(
        *(
            result(f"t/test_a.py::test_{n}", "failed", message="m", traceback=huge)
            for n in range(3000)
        )
    )
    details = build_data(run)["details"]
    assert isinstance(details, dict)
    assert len(details["0"][3]) < 20_000
    assert len(details[str(DETAILED_ATTEMPTS)]) == 3  # past the limit: the message only


def test_the_page_is_self_contained_and_inert() -> None:
    evil = "</script><script>alert(1)</script><!--"
    page = render(build_data(record(result("t/test_a.py::test_x", "failed", message=evil))))
    assert "</script><script>alert" not in page
    assert page.count("</script>") == 2  # the data's and the code's
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page
    raw = page.split('<script type="application/json" id="aqe-data">')[1].split("</script>")[0]
    assert json.loads(raw)["details"]["0"][2] == evil


def test_the_trend_comes_from_the_history(tmp_path: Path) -> None:
    with open_history(tmp_path / "h.db") as store:
        for n, outcomes in enumerate([("passed", "failed"), ("flaky", "passed"), ("passed",)]):
            run = record(*(result(f"t/test_a.py::test_{i}", o) for i, o in enumerate(outcomes)))
            run.run_id, run.start, run.end = f"r{n}", 100.0 + n, 100.5 + n
            store.begin_run(run)
            store.add_results(run.run_id, run.results)
            store.finish_run(run)
        assert history_trend(store) == [
            TrendPoint("r0", 100.0, 2, 1, 0),
            TrendPoint("r1", 101.0, 2, 0, 1),
            TrendPoint("r2", 102.0, 1, 0, 0),
        ]
        assert [p.run_id for p in history_trend(store, until=101.0)] == ["r0", "r1"]
        again = stored_run(store, "r1")
        assert [r.outcome for r in again.results] == ["flaky", "passed"]
        assert stored_run(store, None).run_id == "r2"


# -- in a real browser ---------------------------------------------------------------

PROJECT = {
    "test_shop.py": """
        import pytest

        def test_ok():
            assert 1 + 1 == 2

        def test_broken():
            print("about to fail")
            assert [1, 2] == [1, 3]

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            pass
    """,
    "test_flaky.py": """
        from pathlib import Path

        def test_second_time_lucky(tmp_path_factory):
            mark = Path(__file__).with_name("ran-once")
            if not mark.exists():
                mark.write_text("x")
                raise RuntimeError("first attempt fails")
    """,
}


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium through Playwright (no browser download), closed even on failure."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


def open_report(browser: Any, path: Path) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort(),
    )
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-charts='1']")
    return page, errors


@pytest.mark.e2e
def test_the_report_opens_and_filters_in_chromium(
    make_project: MakeProject, run_aqe: RunAqe, browser: Any
) -> None:
    root = make_project(PROJECT)
    env = {"AQE_RETRY_BUDGET": "1"}  # every failure may run again, however few the tests
    done = run_aqe(
        "run", "-w", "2", "--retries", "1", "--html", "out/report.html", cwd=root, env=env
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    page, errors = open_report(browser, root / "out" / "report.html")
    chips = page.eval_on_selector_all("#counts .chip", "els => els.map(e => e.textContent)")
    assert chips == ["1 failed", "1 passed", "1 skipped", "1 flaky"]
    header = page.inner_text("#summary")
    assert "4 tests · 6 attempts · 2 workers" in header
    failures = page.locator("#failures details.failure")
    assert failures.count() == 2  # the failure, then the flaky test
    assert "test_shop.py::test_broken" in failures.nth(0).inner_text()
    from playwright.sync_api import expect

    # The page builds what it shows (details, filtered rows) after an event: wait for the
    # state itself (up to HANG_GUARD on a loaded machine), never for a fixed time.
    wait = HANG_GUARD * 1000
    failures.nth(0).locator("summary").click()
    for text in ("attempt 1", "attempt 2", "assert [1, 2] == [1, 3]", "about to fail"):
        expect(failures.nth(0)).to_contain_text(text, timeout=wait)  # every attempt
    assert page.locator("#timeline").is_visible()
    assert page.locator("#slowest tr").count() == 6
    count = page.locator("#f-count")
    expect(count).to_have_text("4 matches", timeout=wait)

    def filtered(selector: str, value: str, matches: str) -> None:
        page.select_option(selector, value)
        expect(count).to_have_text(matches, timeout=wait)

    filtered("#f-outcome", "0", "1 match")  # failed
    assert "test_broken" in page.inner_text("#tests tbody")
    filtered("#f-outcome", "", "4 matches")
    page.check("#f-attempts")
    filtered("#f-outcome", "", "6 matches")
    page.uncheck("#f-attempts")
    files = page.eval_on_selector_all("#f-file option", "els => els.map(e => e.textContent)")
    assert files == ["any file", "test_flaky.py", "test_shop.py"]
    third = page.eval_on_selector("#f-file option:nth-child(3)", "e => e.value")
    filtered("#f-file", third, "3 matches")
    filtered("#f-file", "", "4 matches")
    page.fill("#f-search", "LUCKY")
    expect(count).to_have_text("1 match", timeout=wait)
    page.fill("#f-search", "")
    workers = page.eval_on_selector_all("#f-worker option", "els => els.length")
    assert workers >= 2
    expect(count).to_have_text("4 matches", timeout=wait)  # the search cleared
    # Markers, from the workers' collection: the skip marker's one test.
    markers = page.eval_on_selector_all("#f-marker option", "els => els.map(e => e.textContent)")
    assert markers == ["any marker", "@skip"]
    filtered("#f-marker", "0", "1 match")
    assert "test_skipped" in page.inner_text("#tests tbody")
    filtered("#f-marker", "", "4 matches")
    page.locator("#tests tbody tr").first.click()
    assert errors == []

    # The same run from the history: no captured output there, the rest the same.
    again = run_aqe("report", "html", "again.html", cwd=root)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("aqe: wrote again.html (4 tests of run ")
    page, errors = open_report(browser, root / "again.html")
    assert "from the history" in page.inner_text("#summary")
    assert page.locator("#failures details.failure").count() == 2
    assert errors == []
    bad = run_aqe("report", "html", "x.html", "--run", "nope", cwd=root)
    assert bad.returncode == 4
    assert bad.stderr == "aqe: error: no run 'nope' in the history (aqe history lists them)\n"
