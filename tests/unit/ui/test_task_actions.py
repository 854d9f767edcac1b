"""Acting on tasks from the dashboard: retry a failed task or one failed subtask, run a task again with the same
input; and what the list and the task say about why, what it cost, and what the search finds."""

from typing import Any

from shared.models import AgentCapability, ResultStatus
from tests.fake_agent import FakeAgent, result_for
from tests.orchestrator_harness import (
    Fleet,
    OrchestratorFactory,
    plan,
    submit,
    task_state,
    wait_for_request,
    wait_until_ended,
)
from tests.polling import eventually
from tests.unit.ui.conftest import Dashboard, DashboardFactory, cells, url_of
from ui.navigation import task_link
from ui.sections.tasks import TEXT_FILTER

DATA = AgentCapability.DATA_ANALYSIS
SCENARIOS: dict[str, Any] = {
    "plans": [
        {
            "match": "chain",
            "plan": plan(
                ("fetch", "fetch the rows", ["DATA_ANALYSIS"], []),
                ("report", "report on the rows", ["DATA_ANALYSIS"], ["fetch"]),
            ),
        },
        {"match": "", "plan": plan(("only", "the only step", ["DATA_ANALYSIS"], []))},
    ]
}


async def fail(agent: FakeAgent, fleet: Fleet, description: str, attempt: int = 1) -> None:
    await wait_for_request(agent, description, count=attempt)
    request = agent.requests_for(description)[attempt - 1]
    await fleet.report(result_for(request, agent.agent_id, status=ResultStatus.FAILED, error="the source is down"))


async def complete(agent: FakeAgent, fleet: Fleet, description: str, attempt: int = 1) -> None:
    await wait_for_request(agent, description, count=attempt)
    await fleet.report(result_for(agent.requests_for(description)[attempt - 1], agent.agent_id))


def subtask_column(page: Dashboard, column: str) -> list[Any]:
    return cells(page.app, column, table_with="Waits on")


async def test_a_failed_task_is_retried_from_its_page_and_completes(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    agent = await fleet.add("agent1", DATA)
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "A task whose source is down for a while")
        await fail(agent, fleet, "the only step")
        await wait_until_ended(api, task_id)
        page = dashboard(url_of(api))
        await page.open(task=task_id)
        why_failed = cells(page.app, "Why", table_with="Created")
        page.app.button(key=f"retry_{task_id}").click()
        await page.run()
        toasts = [toast.value for toast in page.app.toast]
        await complete(agent, fleet, "the only step", attempt=2)
        await wait_until_ended(api, task_id)
        await page.run()

    assert why_failed == ["subtask 'the only step' failed: the source is down"]
    assert toasts == [f"Queued 1 subtask(s) of {task_id[:13]} again"]
    assert page.has_text("markdown", f"completed · `{task_id}`")
    assert subtask_column(page, "Attempts") == [2]


async def test_one_failed_subtask_is_retried_and_its_dependents_wait_again(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    agent = await fleet.add("agent1", DATA)
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "A chain of two steps")
        await fail(agent, fleet, "fetch the rows")
        ended = await wait_until_ended(api, task_id)
        fetch = next(item for item in ended["task"]["subtasks"] if item["description"] == "fetch the rows")
        page = dashboard(url_of(api))
        await page.open(task=task_id)
        why = subtask_column(page, "Why")
        page.app.button(key=f"retry_{fetch['id']}").click()
        await page.run()
        await wait_for_request(agent, "fetch the rows", count=2)
        await page.run()

    assert why == ["the source is down", "blocked by #1 (failed)"]
    assert subtask_column(page, "Status") == ["running", "pending"]
    assert subtask_column(page, "Why")[0] == "attempt 2, retried after: the source is down"


async def test_a_task_paused_on_its_budget_resumes_from_its_page_with_a_higher_one(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    agent = await fleet.add("agent1", DATA)
    async with orchestrator(SCENARIOS, model_prices={}) as api:
        task_id = await submit(api, "A chain of two steps", max_cost_usd="0.01")
        await wait_for_request(agent, "fetch the rows")
        request = agent.requests_for("fetch the rows")[0]
        await fleet.report(result_for(request, agent.agent_id).model_copy(update={"cost_usd": 0.02}))
        await eventually(lambda: task_state(api, task_id), lambda state: state["task"]["status"] == "paused")
        page = dashboard(url_of(api))
        await page.open(task=task_id)
        page.app.button(key=f"resume_{task_id}").click()  # the same budget: refused, with why
        await page.run()
        refusal = [error.value for error in page.app.error]
        page.app.number_input(key=f"budget_{task_id}").set_value(1.0)
        page.app.button(key=f"resume_{task_id}").click()
        await page.run()
        toasts = [toast.value for toast in page.app.toast]
        await complete(agent, fleet, "report on the rows")
        ended = await wait_until_ended(api, task_id)

    assert any("Resume refused: " in text and "max_cost_usd above $0.0400" in text for text in refusal), refusal
    assert toasts == [f"Queued 1 subtask(s) of {task_id[:13]} again"]
    assert ended["task"]["status"] == "completed" and ended["task"]["max_cost_usd"] == 1.0


async def test_a_task_runs_again_as_a_new_task_with_the_same_input(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        original = await submit(api, "A task worth running twice", user_id="ana")
        page = dashboard(url_of(api))
        await page.open(task=original)
        page.app.button(key=f"rerun_{original}").click()
        await page.run()
        listed = (await api.get("/tasks")).json()["tasks"]

    [rerun, first] = listed
    assert first["id"] == original
    assert (rerun["description"], rerun["user_id"]) == ("A task worth running twice", "ana")
    assert page.app.query_params["task"] == rerun["id"], "the new run is opened"
    assert cells(page.app, "ID") == [task_link(rerun["id"]), task_link(original)]


async def test_the_list_and_the_task_count_the_decomposition_in_cost_and_the_search_finds_text_and_ids(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        wanted = await submit(api, "Summarise the quarterly numbers")
        other = await submit(api, "Draw the yearly chart")
        state = await task_state(api, wanted)
        page = dashboard(url_of(api))
        await page.open(task=wanted)
        costs = cells(page.app, "Cost", table_with="Created")
        page.app.text_input(key=TEXT_FILTER).input("QUARTERLY")
        await page.run()
        by_text = cells(page.app, "ID")
        page.app.text_input(key=TEXT_FILTER).input(other[:12])
        await page.run()

    assert state["cost_usd"] > 0, "the simulator's model has a price"
    assert all(cost not in ("$0", "—") for cost in costs)
    metrics = {metric.label: metric.value for metric in page.app.metric}
    assert metrics["Cost"] == f"${state['cost_usd']:.4f}"
    assert by_text == [task_link(wanted)]
    assert cells(page.app, "ID") == [task_link(other)]
