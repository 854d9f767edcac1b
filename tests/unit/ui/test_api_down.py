"""With the orchestrator down, every section says so in red and the page stays usable; once data was shown, it stays
on screen marked stale instead of passing for fresh."""

import pytest

from tests.orchestrator_harness import OrchestratorFactory, plan, submit
from tests.unit.ui.conftest import DashboardFactory, cells, url_of
from ui.navigation import AGENTS_TAB, LOGS_TAB, METRICS_TAB, TABS
from ui.sections.logs import CUSTOM_RANGE
from ui.sections.submit import DESCRIPTION

SCENARIOS = {"plans": [{"match": "", "plan": plan(("only", "the only step", ["DATA_ANALYSIS"], []))}]}


async def test_every_section_reports_an_unreachable_orchestrator(dashboard: DashboardFactory, unused_url: str) -> None:
    page = dashboard(unused_url)
    await page.run()
    unreachable = f"cannot reach the orchestrator at {unused_url}"
    first = page.texts("error")
    seen = {}
    for tab in (AGENTS_TAB, METRICS_TAB, LOGS_TAB):
        await page.open(view=tab)
        seen[tab] = page.texts("error")

    assert [error.split(":")[0] for error in first] == ["The orchestrator is unreachable", "Tasks unavailable"]
    assert [errors[1].split(":")[0] for errors in seen.values()] == [
        "Agents unavailable",
        "Metrics history unavailable",
        "Logs unavailable",
    ]
    assert all(unreachable in error for errors in [first, *seen.values()] for error in errors)
    assert [tab.label for tab in page.app.tabs] == TABS

    # Still a working page: filters and the form respond, and say again why nothing came back.
    page.app.selectbox(key="log_range").set_value(CUSTOM_RANGE)
    page.app.text_area(key=DESCRIPTION).input("A task typed while the orchestrator is down")
    await page.run()
    assert len(page.app.datetime_input) == 2
    assert len(page.texts("error")) == 2


async def test_the_same_session_recovers_once_an_orchestrator_answers(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory, unused_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with orchestrator({}) as api:
        page = dashboard(unused_url)
        await page.run()
        assert len(page.texts("error")) == 2
        # Settings are read on every run, so the next run of this same session reaches the answering orchestrator.
        monkeypatch.setenv("ORCHESTRATOR_URL", url_of(api))
        await page.run()

    assert page.texts("error") == []
    assert page.has_text("caption", "is healthy")


async def test_data_shown_before_the_orchestrator_went_away_stays_marked_stale(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "A task listed before the orchestrator stops")
        page = dashboard(url_of(api))
        await page.run()
        fresh = page.texts("warning")
    await page.run()  # the orchestrator is gone now

    assert not any("Stale since" in text for text in fresh)
    assert cells(page.app, "ID") == [f"?task={task_id}"], "the last list received is still shown"
    stale = [text for text in page.texts("warning") if text.startswith("**Stale since")]
    assert len(stale) == 2, "the list and the watched task are both marked"
    assert all("orchestrator unreachable (cannot reach the orchestrator" in text for text in stale)
    [header] = page.texts("error")
    assert header.startswith("The orchestrator is unreachable")
    assert "is healthy" not in " ".join(page.texts("caption")), "the header never shows a cached health"
