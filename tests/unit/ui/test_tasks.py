"""The Tasks tab: the list and its status filter, a task's progress and dependency view as agents report."""

import re
from typing import Any

from streamlit.testing.v1.element_tree import Expander

from shared.models import AgentCapability, SubTaskResult, TaskExecutionRequest, TaskStatus, TokenUsage
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
from ui.formatting import SIMULATED_MARK, plain
from ui.navigation import task_link
from ui.sections.tasks import STATUS_FILTER
from ui.why import FALLBACK

DATA = AgentCapability.DATA_ANALYSIS
CODE = AgentCapability.CODE_GENERATION
DB = AgentCapability.DATABASE_OPERATIONS

SCENARIOS: dict[str, Any] = {
    "plans": [
        {
            "match": "diamond",
            "plan": plan(
                ("fetch", "fetch the rows", ["DATABASE_OPERATIONS"], []),
                ("analyse", "analyse the rows", ["DATA_ANALYSIS"], ["fetch"]),
                ("chart", "draw the chart", ["CODE_GENERATION"], ["fetch"]),
                ("report", "write the report", ["DATA_ANALYSIS"], ["analyse", "chart"]),
            ),
        },
        {"match": "", "plan": plan(("only", "the only step", ["DATA_ANALYSIS"], []))},
    ]
}


def progress(page: Dashboard) -> tuple[int, str, str]:
    """The task's progress bar: percent done, its text, and the status that colours it."""
    [bar] = [html.proto.body for html in page.app.get("html") if 'role="progressbar"' in html.proto.body]
    value = re.search(r'aria-valuenow="(\d+)"', bar)
    text = re.search(r">([^<]+ subtasks completed)<", bar)
    status = re.search(r'data-status="(\w+)"', bar)
    assert value and text and status, bar
    return int(value.group(1)), text.group(1), status.group(1)


def subtask_cells(page: Dashboard, column: str) -> list[Any]:
    return cells(page.app, column, table_with="Waits on")


def expander(page: Dashboard, label: str) -> Expander:
    [match] = [expander for expander in page.app.expander if expander.label == label]
    return match


async def report(fleet: Fleet, agent: FakeAgent, description: str, output: str) -> TaskExecutionRequest:
    """The agent finishes the subtask it was sent, as the offline simulator would: labelled simulated."""
    await wait_for_request(agent, description)
    request = agent.requests_for(description)[0]
    result: SubTaskResult = result_for(request, agent.agent_id, output=output).model_copy(
        update={"simulated": True, "token_usage": TokenUsage(input_tokens=1200, output_tokens=300), "cost_usd": 0.0123}
    )
    await fleet.report(result)
    return request


async def test_progress_and_dependency_view_follow_the_agents_until_the_task_ends(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    database_agent = await fleet.add("agent3", DB)
    analyst = await fleet.add("agent5", DATA, DB)
    coder = await fleet.add("agent4", CODE)
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "Build a diamond of four steps")
        await wait_for_request(database_agent, "fetch the rows")
        page = dashboard(url_of(api))
        await page.run()

        assert f"`{task_id}`" in " ".join(page.texts("markdown")), "the newest task is shown without picking it"
        assert progress(page) == (0, "0 of 4 subtasks completed", "in_progress")
        assert page.has_text("caption", "refreshes every 2 s")
        graph = {line.strip() for line in page.app.get("graphviz_chart")[0].proto.spec.splitlines()}
        assert {"s1 -> s2;", "s1 -> s3;", "s2 -> s4;", "s3 -> s4;"} <= graph
        assert subtask_cells(page, "Subtask") == [
            "fetch the rows",
            "\u2003↳ analyse the rows",
            "\u2003↳ draw the chart",
            "\u2003\u2003↳ write the report",
        ]
        assert subtask_cells(page, "Waits on") == ["—", "#1", "#1", "#2, #3"]
        assert subtask_cells(page, "Status") == ["running", "pending", "pending", "pending"]

        await report(fleet, database_agent, "fetch the rows", "rows: 42")
        await wait_for_request(analyst, "analyse the rows")
        await page.run()

        assert progress(page) == (25, "1 of 4 subtasks completed", "in_progress")
        assert subtask_cells(page, "Agent")[0] == f"agent3 {SIMULATED_MARK}"
        assert subtask_cells(page, "Tokens")[0] == "1.5k"
        assert subtask_cells(page, "Cost")[0] == "$0.0123"
        assert any("SIMULATED" in warning and "offline mode" in warning for warning in page.texts("warning"))
        assert expander(page, "1. fetch the rows").code[0].value == "rows: 42"

        await report(fleet, analyst, "analyse the rows", '{"mean": 7}')
        await report(fleet, coder, "draw the chart", '{"chart": "trend.png"}')
        await report(fleet, analyst, "write the report", "Sales grew 7% a month.")
        await wait_until_ended(api, task_id)
        await page.run()

    assert progress(page) == (100, "4 of 4 subtasks completed", "completed")
    assert subtask_cells(page, "Status") == ["completed"] * 4
    assert subtask_cells(page, "Agent") == [
        f"{agent} {SIMULATED_MARK}" for agent in ("agent3", "agent5", "agent4", "agent5")
    ]
    assert page.has_text("caption", "refreshes every 10 s (task ended)")
    assert expander(page, "Result").markdown[0].value == "Sales grew 7% a month."
    assert f"cancel_{task_id}" not in [button.key for button in page.app.button], "an ended task has no Cancel"


async def test_status_filter_and_cancel_from_the_dashboard(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    async with orchestrator(SCENARIOS) as api:
        waiting = await submit(api, "A task that keeps waiting for agents")
        doomed = await submit(api, "A task the operator cancels")
        page = dashboard(url_of(api))
        await page.run()
        listed_before = cells(page.app, "ID")
        page.app.button(key=f"cancel_{doomed}").click()
        await page.run()
        cancelled_status = (await api.get(f"/tasks/{doomed}")).json()["task"]["status"]
        page.app.selectbox(key=STATUS_FILTER).set_value(TaskStatus.CANCELLED)
        await page.run()
        only_cancelled = cells(page.app, "ID")
        only_cancelled_status = cells(page.app, "Status", table_with="Created")
        await page.open(task=doomed)
        page.app.selectbox(key=STATUS_FILTER).set_value(TaskStatus.PENDING)
        await page.run()

    assert listed_before == [task_link(doomed), task_link(waiting)]
    assert cancelled_status == "cancelled"
    assert only_cancelled == [task_link(doomed)]
    assert only_cancelled_status == ["cancelled"]
    assert cells(page.app, "ID") == [task_link(waiting)]
    # The task being watched stays shown even when the filter hides it from the table.
    assert f"#### :material/cancel: cancelled · `{doomed}`" in page.texts("markdown")
    assert f"cancel_{doomed}" not in [button.key for button in page.app.button], "an ended task has no Cancel"


# --- graceful degradation: why a subtask waits ---


async def test_why_a_subtask_waits_is_shown_in_the_task_list_the_task_and_its_plan(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    waiting = "waiting: no live agent with DATA_ANALYSIS"
    async with orchestrator(SCENARIOS) as api:  # no agent has joined
        task_id = await submit(api, "A task that keeps waiting for agents")
        await eventually(lambda: task_state(api, task_id), lambda state: state["task"]["status_reason"] is not None)
        page = dashboard(url_of(api))
        await page.run()

    assert cells(page.app, "Why", table_with="Task") == [waiting]
    assert subtask_cells(page, "Why") == [waiting]
    # above the plan, named, and in the subtask's expander
    assert page.texts("warning") == [f"**Waiting for an agent** — {plain(waiting)}", plain(waiting)]


async def test_a_task_planned_by_the_fallback_says_so_in_the_list_and_the_task(
    orchestrator: OrchestratorFactory, dashboard: DashboardFactory
) -> None:
    unplannable = {"plans": [{"match": "", "plan": plan(("x", "a step nobody can do", ["TELEPATHY"], []))}]}
    async with orchestrator(unplannable) as api:
        task_id = await submit(api, "A task Claude cannot plan properly")
        fallback = (await task_state(api, task_id))["task"]["decomposition_fallback"]
        page = dashboard(url_of(api))
        await page.run()

    assert fallback
    assert FALLBACK in cells(page.app, "Why", table_with="Created")[0]
    assert page.has_text("warning", "Plan fallback: Claude's plan was replaced by one subtask")
