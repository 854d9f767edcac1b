"""The Agents tab: the registry's agents with their load, and an agent whose heartbeat expired shown as dead."""

from typing import Any

from shared.models import AgentCapability, AgentStatus
from shared.redis_manager import RedisManager
from tests.orchestrator_harness import HEARTBEAT_TTL_SECONDS, Fleet, OrchestratorFactory, eventually
from tests.unit.ui.conftest import Dashboard, DashboardFactory, cells, table, url_of
from ui.fleet_tracker import AgentState
from ui.sections.agents import ROW_COLOURS


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


async def test_agents_table_shows_the_fleet_and_a_dead_agent_stands_out(
    orchestrator: OrchestratorFactory, fleet: Fleet, test_redis: RedisManager, dashboard: DashboardFactory
) -> None:
    await fleet.add("agent1", AgentCapability.DATA_ANALYSIS, AgentCapability.CODE_GENERATION)
    await test_redis.register_agent(busy_agent())
    async with orchestrator({}) as api:
        page = dashboard(url_of(api))
        await page.run()

        assert cells(page.app, "Agent", table_with="Capabilities") == ["agent1", "agent2"]
        assert cells(page.app, "State") == [AgentState.AVAILABLE.value, AgentState.BUSY.value]
        assert [list(value) for value in cells(page.app, "Capabilities")] == [
            ["DATA_ANALYSIS", "CODE_GENERATION"],
            ["WEB_SCRAPING", "API_INTEGRATION"],
        ]
        assert cells(page.app, "Current task") == ["—", "task_01234567"]
        assert cells(page.app, "CPU")[1] == 73.5
        assert cells(page.app, "Completed") == [0, 12]
        assert metrics(page) == {"Live agents": "2", "Busy": "1", "Offline": "0", "Subtasks completed": "12"}
        assert page.texts("error") == []

        async def agent_ids() -> set[str]:
            return {agent["agent_id"] for agent in (await api.get("/agents")).json()["agents"]}

        await eventually(agent_ids, lambda ids: ids == {"agent1"}, timeout=HEARTBEAT_TTL_SECONDS * 5)
        await page.run()

    assert cells(page.app, "Agent", table_with="Capabilities") == ["agent2", "agent1"], "the dead agent comes first"
    assert cells(page.app, "State") == [AgentState.OFFLINE.value, AgentState.AVAILABLE.value]
    assert cells(page.app, "Available") == [False, True]
    assert metrics(page) == {"Live agents": "1", "Busy": "0", "Offline": "1", "Subtasks completed": "0"}
    [banner] = page.texts("error")
    assert banner.startswith("1 agent(s) offline: agent2.")
    styles = table(page.app, "Capabilities").proto.arrow_data.styler.styles
    assert ROW_COLOURS[AgentState.OFFLINE].split(";")[0] in styles, "the dead agent's row is painted red"
    assert "row0" in styles and "row1" not in styles, "only its row"
    assert len(page.app.get("vega_lite_chart")) == 2, "load and throughput charts once two samples exist"


async def test_an_agent_declared_failed_is_shown_failed_with_a_warning(
    orchestrator: OrchestratorFactory, fleet: Fleet, test_redis: RedisManager, dashboard: DashboardFactory
) -> None:
    await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    await fleet.add("agent3", AgentCapability.FILE_PROCESSING)
    async with orchestrator({}) as api:
        failed = await api.post("/agents/agent3/fail")
        assert failed.status_code == 200, failed.text
        page = dashboard(url_of(api))
        await page.run()

    assert cells(page.app, "Agent", table_with="Capabilities") == ["agent1", "agent3"]
    assert cells(page.app, "State") == [AgentState.AVAILABLE.value, AgentState.FAILED.value]
    assert cells(page.app, "Available") == [True, False]
    [warning] = page.texts("warning")
    assert warning.startswith("1 agent(s) declared failed: agent3.")
    styles = table(page.app, "Capabilities").proto.arrow_data.styler.styles
    assert ROW_COLOURS[AgentState.FAILED].split(";")[0] in styles
