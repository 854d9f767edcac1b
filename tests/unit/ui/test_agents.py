"""The Agents tab: the registry's agents with their load, agents that died kept from the server's history (also for
a new browser session), and one agent's record and attempts behind a click or an `?agent=` link."""

from typing import Any

from shared.models import AgentCapability, AgentStatus, TaskExecutionRequest
from shared.redis_manager import RedisManager
from tests.fake_agent import result_for
from tests.orchestrator_harness import (
    HEARTBEAT_TTL_SECONDS,
    Fleet,
    OrchestratorFactory,
    eventually,
    plan,
    submit,
    wait_for_request,
    wait_until_ended,
)
from tests.unit.ui.conftest import Dashboard, DashboardFactory, cells, table, url_of
from ui.fleet_view import AgentState
from ui.navigation import AGENTS_TAB, task_link
from ui.sections.agents import ROW_COLOURS

SCENARIOS: dict[str, Any] = {"plans": [{"match": "", "plan": plan(("s1", "the only step", ["WEB_SCRAPING"], []))}]}


def busy_agent() -> AgentStatus:
    """An agent in the middle of a subtask that will never heartbeat again (its lifetime is the test's TTL)."""
    return AgentStatus(
        agent_id="agent2",
        url="http://127.0.0.1:8002",
        port=8002,
        is_available=False,
        current_task="task_0123456789abcdef",
        current_tasks=["task_0123456789abcdef"],
        capabilities=[AgentCapability.WEB_SCRAPING, AgentCapability.API_INTEGRATION],
        cpu_usage=73.5,
        memory_usage=41.0,
        tasks_completed=12,
        tasks_failed=1,
    )


def metrics(page: Dashboard) -> dict[str, Any]:
    return {metric.label: metric.value for metric in page.app.metric}


def agents_column(page: Dashboard, column: str) -> list[Any]:
    return cells(page.app, column, table_with="Capabilities")


async def test_agents_table_shows_the_fleet_with_its_load(
    orchestrator: OrchestratorFactory, fleet: Fleet, test_redis: RedisManager, dashboard: DashboardFactory
) -> None:
    await fleet.add("agent1", AgentCapability.DATA_ANALYSIS, AgentCapability.CODE_GENERATION)
    await test_redis.register_agent(busy_agent())
    async with orchestrator({}) as api:
        page = dashboard(url_of(api))
        await page.open(view=AGENTS_TAB)

    assert agents_column(page, "Agent") == ["agent1", "agent2"]
    assert agents_column(page, "State") == [AgentState.AVAILABLE.value, AgentState.BUSY.value]
    assert [list(value) for value in agents_column(page, "Capabilities")] == [
        ["DATA_ANALYSIS", "CODE_GENERATION"],
        ["WEB_SCRAPING", "API_INTEGRATION"],
    ]
    assert agents_column(page, "Current task") == ["—", "task_01234567"]
    assert agents_column(page, "CPU")[1] == 73.5
    assert metrics(page)["Live agents"] == "2"
    assert metrics(page)["Busy"] == "1"
    assert page.has_text("caption", "No live agent offers FILE_PROCESSING, DATABASE_OPERATIONS, COORDINATION:")
    assert page.texts("error") == []


async def test_an_agent_declared_failed_is_shown_failed_with_a_warning(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    await fleet.add("agent3", AgentCapability.FILE_PROCESSING)
    async with orchestrator({}) as api:
        failed = await api.post("/agents/agent3/fail")
        assert failed.status_code == 200, failed.text
        page = dashboard(url_of(api))
        await page.open(view=AGENTS_TAB)

    assert agents_column(page, "Agent") == ["agent1", "agent3"]
    assert agents_column(page, "State") == [AgentState.AVAILABLE.value, AgentState.FAILED.value]
    assert page.has_text("warning", "1 agent(s) declared failed: agent3.")
    styles = table(page.app, "Capabilities").proto.arrow_data.styler.styles
    assert ROW_COLOURS[AgentState.FAILED] in styles


async def finish(fleet: Fleet, agent_id: str, description: str, *, fail: bool = False) -> TaskExecutionRequest:
    agent = fleet.agents[agent_id]
    await wait_for_request(agent, description)
    request = agent.requests_for(description)[-1]
    status = {"status": "failed", "error": "the site refused the scraper"} if fail else {}
    await fleet.report(result_for(request, agent_id, **status))  # type: ignore[arg-type]
    return request


async def test_a_dead_agent_stays_listed_with_its_record_even_for_a_new_browser_session(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    await fleet.add("agent2", AgentCapability.WEB_SCRAPING)
    async with orchestrator(SCENARIOS) as api:
        done = await submit(api, "Scrape the prices page")
        await finish(fleet, "agent2", "the only step")
        await wait_until_ended(api, done)
        fleet.stop_heartbeat("agent2")

        async def agent_ids() -> set[str]:
            return {agent["agent_id"] for agent in (await api.get("/agents")).json()["agents"]}

        await eventually(agent_ids, lambda ids: ids == {"agent1"}, timeout=HEARTBEAT_TTL_SECONDS * 5)
        page = dashboard(url_of(api))  # a browser session that never saw agent2 alive
        await page.open(view=AGENTS_TAB)

    assert agents_column(page, "Agent") == ["agent2", "agent1"], "the dead agent comes first"
    assert agents_column(page, "State") == [AgentState.OFFLINE.value, AgentState.AVAILABLE.value]
    assert agents_column(page, "Completed") == [1, 0], "counted in PostgreSQL, not by the agent process"
    assert metrics(page)["Offline"] == "1"
    [banner] = page.texts("error")
    assert banner.startswith("1 agent(s) offline: agent2.")
    styles = table(page.app, "Capabilities").proto.arrow_data.styler.styles
    assert ROW_COLOURS[AgentState.OFFLINE] in styles, "the dead agent's row is painted red"


async def test_a_click_on_an_agent_shows_its_attempts_and_failures(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    await fleet.add("agent2", AgentCapability.WEB_SCRAPING)
    async with orchestrator(SCENARIOS) as api:
        failed = await submit(api, "Scrape a page that refuses")
        await finish(fleet, "agent2", "the only step", fail=True)
        await wait_until_ended(api, failed)
        page = dashboard(url_of(api))
        await page.open(view=AGENTS_TAB)
        page.app.session_state["agent_table_0"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
        await page.run()

    assert page.app.query_params["agent"] == "agent2"
    assert "#### :material/smart_toy: Agent `agent2`" in page.texts("markdown")
    assert cells(page.app, "Task", table_with="Attempt") == [task_link(failed)]
    assert cells(page.app, "Status", table_with="Attempt") == ["failed"]
    assert cells(page.app, "Error", table_with="Attempt") == ["the site refused the scraper"]
    assert metrics(page)["Attempts failed"] == "1"
    assert page.has_text("warning", "Last error: the site refused the scraper")


async def test_a_link_to_an_agent_opens_the_agents_tab_on_it(
    orchestrator: OrchestratorFactory, fleet: Fleet, dashboard: DashboardFactory
) -> None:
    await fleet.add("agent2", AgentCapability.WEB_SCRAPING)
    async with orchestrator(SCENARIOS) as api:
        task_id = await submit(api, "Scrape the prices page")
        await finish(fleet, "agent2", "the only step")
        await wait_until_ended(api, task_id)
        page = dashboard(url_of(api))
        await page.open(agent="agent2")  # no tab named
        statuses = cells(page.app, "Status", table_with="Attempt")
        page.app.button(key="close_agent").click()
        await page.run()

    assert statuses == ["completed"]
    assert "agent" not in page.app.query_params, "closing the agent takes it out of the URL"
