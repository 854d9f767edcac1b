"""The dashboard in a real browser stays live: `streamlit run` serves it, Debian's chromium opens a deep link to a
task and watches it go from queued to completed without a reload, sees the list pick up a task submitted through the
API, retries a failed task, opens an agent, the metrics and a task's logs, and shows the stale marker while the
orchestrator is stopped.

The orchestrator is real (in-process, the simulator as Claude); a fake agent decides when each subtask finishes.
Screens of the run are kept under tests/artifacts/screens/ (git-ignored); their paths are printed.
"""

import contextlib
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from shared.models import AgentCapability, ResultStatus
from tests.e2e.test_dashboard_browser import UI_TIMEOUT_MS, chromium_page, streamlit_server
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCREENS = PROJECT_ROOT / "tests" / "artifacts" / "screens"
# Where Streamlit's data grid draws things, in pixels: the row-selection boxes, the header, one row.
ROW_MARKER_X, HEADER_HEIGHT, ROW_HEIGHT = 14, 35, 35
SCENARIOS: dict[str, Any] = {
    "plans": [
        {"match": "monthly", "plan": plan(("collect", "collect the monthly numbers", ["DATA_ANALYSIS"], []))},
        {"match": "refuses", "plan": plan(("scrape", "scrape the refusing site", ["DATA_ANALYSIS"], []))},
        {"match": "budget", "plan": plan(("tally", "tally the budgeted figures", ["DATA_ANALYSIS"], []))},
        {"match": "", "plan": plan(("other", "another step", ["FILE_PROCESSING"], []))},
    ]
}


async def keep_screen(page: Page, name: str) -> Path:
    """A screenshot of the whole page, kept for the people who read the test run."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    await page.screenshot(path=path, full_page=True)
    print(f"screen: {path}")
    return path


async def finish(fleet: Fleet, description: str, status: ResultStatus, attempt: int = 1) -> None:
    agent = fleet.agents["agent1"]
    await wait_for_request(agent, description, count=attempt)
    request = agent.requests_for(description)[attempt - 1]
    await fleet.report(result_for(request, "agent1", status=status, error="the site refused the scraper"))


async def click_first_row(page: Page) -> None:
    """The task table is drawn on a canvas: click where its first row's selection box is."""
    grid = page.locator(".st-key-task_table_0")
    box = await grid.bounding_box()
    assert box is not None
    await page.mouse.click(box["x"] + ROW_MARKER_X, box["y"] + HEADER_HEIGHT + ROW_HEIGHT / 2)


def task_heading(page: Page, status: str, task_id: str) -> Any:
    return page.get_by_role("heading", name=f"{status} · {task_id}")


@pytest.mark.e2e
async def test_the_dashboard_follows_tasks_live_acts_on_them_and_marks_stale_data(
    orchestrator: OrchestratorFactory, orchestrator_api_key: str, fleet: Fleet, tmp_path: Path
) -> None:
    async with contextlib.AsyncExitStack() as stack, contextlib.AsyncExitStack() as serving:
        # The orchestrator has a stack of its own: the test stops it while the dashboard and the browser go on.
        api = await serving.enter_async_context(orchestrator(SCENARIOS))
        base_url = str(api.base_url).rstrip("/")
        url = await stack.enter_async_context(streamlit_server(base_url, orchestrator_api_key, tmp_path / "st.log"))
        page = await stack.enter_async_context(chromium_page(width=1400, height=1300))

        # A deep link to a task that waits: no agent can run it yet.
        waiting = await submit(api, "Collect the monthly numbers")
        await page.goto(f"{url}/?task={waiting}")
        await expect(task_heading(page, "pending", waiting)).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_text("waiting: no live agent with DATA_ANALYSIS").first).to_be_visible()
        await keep_screen(page, "1-deep-link-queued")

        # An agent joins and finishes it: the page shows it completed, green, without a reload.
        await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
        await finish(fleet, "collect the monthly numbers", ResultStatus.COMPLETED)
        await expect(task_heading(page, "completed", waiting)).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.locator('[role="progressbar"][data-status="completed"]')).to_be_visible()
        await keep_screen(page, "2-completed-live")

        # A task submitted through the API appears in the list by itself.
        listed = await submit(api, "Tidy the shared files")
        await expect(page.get_by_text("1 to 2 of 2 task(s)")).to_be_visible(timeout=UI_TIMEOUT_MS)
        await keep_screen(page, "3-list-picked-up-api-task")

        # A click on its row (the newest, on top) opens it underneath, and the URL says so.
        await click_first_row(page)
        await expect(task_heading(page, "pending", listed)).to_be_visible(timeout=UI_TIMEOUT_MS)
        assert page.url.endswith(f"?task={listed}")

        # A failed task, retried from its page, runs again and completes.
        failing = await submit(api, "Scrape the site that refuses")
        await finish(fleet, "scrape the refusing site", ResultStatus.FAILED)
        await wait_until_ended(api, failing)
        await page.goto(f"{url}/?task={failing}")
        await expect(task_heading(page, "failed", failing)).to_be_visible(timeout=UI_TIMEOUT_MS)
        retry = page.locator(f".st-key-retry_{failing} button")
        await expect(retry).to_be_visible()
        await keep_screen(page, "4-failed-why")
        await retry.click()
        await finish(fleet, "scrape the refusing site", ResultStatus.COMPLETED, attempt=2)
        await expect(task_heading(page, "completed", failing)).to_be_visible(timeout=UI_TIMEOUT_MS)
        await keep_screen(page, "5-retried-completed")

        # The agent that ran it, its metrics over time, and the task's logs, each behind a link or a button.
        await page.goto(f"{url}/?agent=agent1")
        await expect(page.get_by_role("heading", name="Agent agent1")).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_text("Latest attempts (3, newest first) · 1 failed")).to_be_visible()
        await expect(page.locator("[data-testid='stDataFrame']")).to_have_count(2)  # the fleet, its attempts
        await keep_screen(page, "6-agent-link")
        await page.goto(f"{url}/?view=Metrics")
        await expect(page.get_by_text("Throughput — subtasks per minute")).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(5, timeout=UI_TIMEOUT_MS)
        await keep_screen(page, "7-metrics-from-history")

        # Where the money went: today's spend, per UTC day by model, and per tenant (the dashboard's key is an
        # operator's).
        await page.goto(f"{url}/?view=Spend")
        await expect(page.get_by_text("Spend per UTC day — USD, by model")).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.locator("[data-testid='stVegaLiteChart']")).to_have_count(1, timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_text("Spent today (UTC)")).to_be_visible()
        await expect(page.locator("[data-testid='stDataFrame']")).to_have_count(1, timeout=UI_TIMEOUT_MS)  # tenants
        await keep_screen(page, "7b-spend-per-day-and-tenant")

        # A task whose planning alone spends its budget pauses; resumed from its page with a higher one, it runs.
        paused = await submit(api, "Tally the figures within a budget", max_cost_usd="0.0001")
        await page.goto(f"{url}/?task={paused}")
        await expect(task_heading(page, "paused", paused)).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_text("Paused: its budget is spent").first).to_be_visible()
        await keep_screen(page, "7c-paused-on-its-budget")
        budget = page.locator(f".st-key-budget_{paused} input")
        await budget.fill("1")
        await budget.press("Enter")
        await page.locator(f".st-key-resume_{paused} button").click()
        await finish(fleet, "tally the budgeted figures", ResultStatus.COMPLETED)
        await expect(task_heading(page, "completed", paused)).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_text("of its $1.00 budget")).to_be_visible()
        await keep_screen(page, "7d-resumed-and-completed")
        await page.goto(f"{url}/?task={failing}")
        await page.locator(f".st-key-logs_{failing} button").click()
        task_filter = page.get_by_role("textbox", name="Task id", exact=True)
        await expect(task_filter).to_have_value(failing, timeout=UI_TIMEOUT_MS)
        assert f"logs_task={failing}" in page.url
        await keep_screen(page, "8-logs-of-the-task")
        await page.goto(f"{url}/?task={failing}")
        await expect(task_heading(page, "completed", failing)).to_be_visible(timeout=UI_TIMEOUT_MS)

        # The orchestrator stops: what is on screen stays, marked stale, and the header says it is down.
        await serving.aclose()
        await expect(page.get_by_text("Stale since").first).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(page.get_by_text("The orchestrator is unreachable")).to_be_visible(timeout=UI_TIMEOUT_MS)
        await expect(task_heading(page, "completed", failing)).to_be_visible()
        await keep_screen(page, "9-orchestrator-stopped-stale")
