"""Submitting from the sidebar: the new task's id, or the API's refusal in red (400, and 429 with when to retry)."""

from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.config import Settings
from shared.models import TaskType
from tests.orchestrator_harness import OrchestratorFactory, plan
from tests.unit.ui.conftest import Dashboard, DashboardFactory, cells, url_of
from ui import formatting
from ui.navigation import task_link
from ui.sections.submit import DEADLINE, DESCRIPTION, MAX_COST, TASK_TYPE

SCENARIOS: dict[str, Any] = {"plans": [{"match": "", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))}]}


@pytest.fixture
def orchestrator_settings(orchestrator_settings: Settings) -> Settings:
    # No agent runs in these tests, so each accepted task leaves one subtask queued: the second one fills the queue.
    return orchestrator_settings.model_copy(update={"max_queue_depth": 1})


async def submit_from_sidebar(page: Dashboard, description: str) -> None:
    page.app.text_area(key=DESCRIPTION).input(description)
    page.app.button(key="submit_task").click()
    await page.run()


async def test_a_valid_description_creates_a_task_and_shows_it(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        page = dashboard(url_of(api))
        await page.run()
        await submit_from_sidebar(page, "Summarise the quarterly numbers")
        listed = (await api.get("/tasks")).json()["tasks"]

    assert [task["description"] for task in listed] == ["Summarise the quarterly numbers"]
    task_id = listed[0]["id"]
    assert page.texts("error") == []
    [success] = page.app.sidebar.success
    assert task_id in success.value
    assert "1 subtask(s) planned, 1 queued now" in success.value
    assert page.app.query_params["task"] == task_id, "the new task is opened, and the URL says so"
    assert page.app.text_area(key=DESCRIPTION).value == "", "the form is cleared for the next task"
    assert cells(page.app, "ID") == [task_link(task_id)]


async def test_the_kind_of_work_picked_is_the_task_s_type(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        page = dashboard(url_of(api))
        await page.run()
        assert page.app.selectbox(key=TASK_TYPE).value is TaskType.GENERAL
        page.app.selectbox(key=TASK_TYPE).set_value(TaskType.MIGRATION)
        await submit_from_sidebar(page, "Move the sales tables to the new schema")
        [listed] = (await api.get("/tasks")).json()["tasks"]

    assert page.texts("error") == []
    assert listed["task_type"] == "MIGRATION"


async def test_estimate_shows_the_plan_and_what_it_may_cost_and_stores_nothing(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        page = dashboard(url_of(api))
        await page.run()
        page.app.text_area(key=DESCRIPTION).input("Summarise the quarterly numbers")
        page.app.button(key="estimate_task").click()
        await page.run()
        direct = (await api.post("/tasks", params={"dry_run": "true", "description": "Summarise the numbers"})).json()
        listed = (await api.get("/tasks")).json()["total"]

    [estimate] = page.app.sidebar.info
    low, high = formatting.cost(direct["estimate"]["min_usd"]), formatting.cost(direct["estimate"]["max_usd"])
    assert estimate.value.startswith(f"**Estimate** (nothing stored or run): 1 subtask(s), {low} to {high}.")
    assert "Planning it cost $" in estimate.value
    assert cells(page.app, "Subtask", table_with="Needs") == ["the only step"]
    assert listed == 0, "a dry run stores no task"
    assert page.app.text_area(key=DESCRIPTION).value == "Summarise the quarterly numbers", "kept for the submit"


async def test_a_budget_and_a_deadline_go_with_the_task(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        page = dashboard(url_of(api))
        await page.run()
        page.app.number_input(key=MAX_COST).set_value(0.25)
        page.app.number_input(key=DEADLINE).set_value(600)
        await submit_from_sidebar(page, "Summarise the quarterly numbers")
        [listed] = (await api.get("/tasks")).json()["tasks"]
        task = (await api.get(f"/tasks/{listed['id']}")).json()["task"]

    [success] = page.app.sidebar.success
    assert "It may cost $" in success.value
    assert task["max_cost_usd"] == 0.25
    created = datetime.fromisoformat(task["created_at"])
    assert timedelta(seconds=595) < datetime.fromisoformat(task["deadline_at"]) - created <= timedelta(seconds=600)


async def test_a_too_short_description_shows_the_api_refusal_in_red(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        page = dashboard(url_of(api))
        await page.run()
        page.app.text_area(key=DESCRIPTION).input("too short")
        await page.run()
        rule = page.app.sidebar.caption[0].value
        await submit_from_sidebar(page, "too short")
        listed = (await api.get("/tasks")).json()["total"]

    assert rule.startswith(":red[9 / 5000 characters · at least 10 non-blank"), "the rule is shown before submitting"
    [refusal] = page.app.sidebar.error
    assert refusal.value.startswith("Refused (HTTP 400): description:")
    assert "at least 10" in refusal.value
    assert page.app.sidebar.success == []
    assert listed == 0
    assert page.app.text_area(key=DESCRIPTION).value == "too short", "the text stays for the user to fix"


async def test_a_full_queue_answers_429_and_says_when_to_retry(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        page = dashboard(url_of(api))
        await page.run()
        await submit_from_sidebar(page, "The first task fills the queue")
        await submit_from_sidebar(page, "The second task meets a full queue")
        total = (await api.get("/tasks")).json()["total"]
        direct = await api.post("/tasks", json={"description": "What the API itself says"})

    [refusal] = page.app.sidebar.error
    assert refusal.value.startswith("Refused (HTTP 429): the queue is full")
    assert f"Retry after {direct.headers['retry-after']} s." in refusal.value
    assert total == 1
    assert page.app.sidebar.success == [], "the earlier success gives way to the latest outcome"


async def test_the_form_says_when_the_orchestrator_cannot_be_reached(
    dashboard: DashboardFactory, unused_url: str
) -> None:
    page = dashboard(unused_url)
    await page.run()
    await submit_from_sidebar(page, "Nobody is listening at that address")

    [refusal] = page.app.sidebar.error
    assert refusal.value.startswith(f"Not submitted: cannot reach the orchestrator at {unused_url}")
