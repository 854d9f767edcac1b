"""With the orchestrator down, every section says so in red and the page stays usable."""

import pytest

from tests.orchestrator_harness import OrchestratorFactory
from tests.unit.ui.conftest import DashboardFactory, url_of
from ui.sections.logs import CUSTOM_RANGE
from ui.sections.submit import DESCRIPTION


async def test_every_section_reports_an_unreachable_orchestrator(dashboard: DashboardFactory, unused_url: str) -> None:
    page = dashboard(unused_url)
    await page.run()

    unreachable = f"cannot reach the orchestrator at {unused_url}"
    errors = page.texts("error")
    assert [error.split(":")[0] for error in errors] == [
        "The orchestrator is unreachable",
        "Tasks are unavailable",
        "Agents are unavailable",
        "Logs are unavailable",
    ]
    assert all(unreachable in error for error in errors)
    assert [tab.label for tab in page.app.tabs] == ["📋 Tasks", "🤖 Agents", "📜 Logs"]

    # Still a working page: filters and the form respond, and say again why nothing came back.
    page.app.selectbox(key="log_range").set_value(CUSTOM_RANGE)
    page.app.text_area(key=DESCRIPTION).input("A task typed while the orchestrator is down")
    await page.run()
    assert len(page.app.datetime_input) == 2
    assert len(page.texts("error")) == 4


async def test_the_same_session_recovers_once_an_orchestrator_answers(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory, unused_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with orchestrator({}) as api:
        page = dashboard(unused_url)
        await page.run()
        assert len(page.texts("error")) == 4
        # Settings are read on every run, so the next run of this same session reaches the answering orchestrator.
        monkeypatch.setenv("ORCHESTRATOR_URL", url_of(api))
        await page.run()

    assert page.texts("error") == []
    assert any("is healthy" in caption for caption in page.texts("caption"))
    assert "No tasks here yet. Submit one from the sidebar." in page.texts("info")
