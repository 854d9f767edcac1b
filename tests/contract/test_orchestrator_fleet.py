"""Contract of the orchestrator's fleet endpoints (seed 003 T006): GET /agents, /agents/available, /health, /logs.

Agents are registered straight into the shared orchestrator's Redis tenant; logs are written with the audit repository.
"""

from collections.abc import Callable

import httpx
import pytest

from shared.database import Repositories
from shared.models import AgentCapability, AgentStatus, LogLevel
from shared.redis_manager import RedisManager
from tests.contract.orchestrator_support import assert_error

AGENT_STATUS_FIELDS = {
    "agent_id",
    "port",
    "is_available",
    "current_task",
    "capabilities",
    "cpu_usage",
    "memory_usage",
    "tasks_completed",
    "last_heartbeat",
}


# GET /agents, GET /agents/available


async def test_agents_lists_every_registered_agent(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_redis_manager: RedisManager,
    orchestrator_agent_status: Callable[..., AgentStatus],
) -> None:
    await orchestrator_redis_manager.register_agent(
        orchestrator_agent_status(
            "agent1", AgentCapability.DATA_ANALYSIS, AgentCapability.CODE_GENERATION, tasks_completed=4
        )
    )
    await orchestrator_redis_manager.register_agent(
        orchestrator_agent_status(
            "agent3",
            AgentCapability.FILE_PROCESSING,
            AgentCapability.DATABASE_OPERATIONS,
            port=8003,
            is_available=False,
            current_task="subtask_busy",
        )
    )

    response = await orchestrator_client.get("/agents")

    assert response.status_code == 200, response.text
    agents = response.json()["agents"]
    assert [agent["agent_id"] for agent in agents] == ["agent1", "agent3"]
    assert all(set(agent) >= AGENT_STATUS_FIELDS for agent in agents)
    first, second = agents
    assert (first["port"], first["is_available"], first["current_task"], first["tasks_completed"]) == (
        8001,
        True,
        None,
        4,
    )
    assert first["capabilities"] == ["DATA_ANALYSIS", "CODE_GENERATION"]
    assert (second["port"], second["is_available"], second["current_task"]) == (8003, False, "subtask_busy")


async def test_available_agents_filters_by_capability(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_redis_manager: RedisManager,
    orchestrator_agent_status: Callable[..., AgentStatus],
) -> None:
    await orchestrator_redis_manager.register_agent(
        orchestrator_agent_status("agent1", AgentCapability.DATA_ANALYSIS, AgentCapability.CODE_GENERATION)
    )
    await orchestrator_redis_manager.register_agent(
        orchestrator_agent_status("agent4", AgentCapability.CODE_GENERATION, AgentCapability.API_INTEGRATION, port=8004)
    )
    await orchestrator_redis_manager.register_agent(
        orchestrator_agent_status("agent5", AgentCapability.DATA_ANALYSIS, port=8005, is_available=False)
    )

    async def available(**params: str) -> list[str]:
        response = await orchestrator_client.get("/agents/available", params=params)
        assert response.status_code == 200, response.text
        return [agent["agent_id"] for agent in response.json()["available_agents"]]

    assert await available() == ["agent1", "agent4"]
    assert await available(capability="CODE_GENERATION") == ["agent1", "agent4"]
    assert await available(capability="DATA_ANALYSIS") == ["agent1"]
    assert await available(capability="API_INTEGRATION") == ["agent4"]
    assert await available(capability="WEB_SCRAPING") == []


async def test_available_agents_refuses_an_unknown_capability(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/agents/available", params={"capability": "TIME_TRAVEL"})

    assert_error(response, 400, "capability")


async def test_agents_is_empty_without_agents(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/agents")

    assert response.status_code == 200, response.text
    assert response.json() == {"agents": []}


# GET /health


async def test_health_is_healthy_with_both_dependencies_up(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/health")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "healthy",
        "postgres": {"status": "up", "error": None},
        "redis": {"status": "up", "error": None},
    }


# GET /logs


async def test_logs_filter_by_agent_level_and_limit(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    audit = orchestrator_repositories.audit
    await audit.log_agent_activity("agent1", None, LogLevel.INFO, "agent1 started")
    await audit.log_agent_activity("agent1", "task_a", LogLevel.ERROR, "agent1 failed a subtask", {"attempt": 1})
    await audit.log_agent_activity("agent2", "task_a", LogLevel.ERROR, "agent2 failed a subtask")
    await audit.log_agent_activity("agent1", "task_b", LogLevel.INFO, "agent1 finished a subtask")

    async def messages(**params: str) -> list[str]:
        response = await orchestrator_client.get("/logs", params=params)
        assert response.status_code == 200, response.text
        return [log["message"] for log in response.json()["logs"]]

    assert await messages() == [
        "agent1 finished a subtask",
        "agent2 failed a subtask",
        "agent1 failed a subtask",
        "agent1 started",
    ]
    assert await messages(agent_id="agent1") == [
        "agent1 finished a subtask",
        "agent1 failed a subtask",
        "agent1 started",
    ]
    assert await messages(level="ERROR") == ["agent2 failed a subtask", "agent1 failed a subtask"]
    assert await messages(agent_id="agent1", level="ERROR") == ["agent1 failed a subtask"]
    assert await messages(limit="2") == ["agent1 finished a subtask", "agent2 failed a subtask"]
    assert await messages(agent_id="agent9") == []
    assert len(await messages(since="2000-01-01T00:00:00Z")) == 4
    assert await messages(until="2000-01-01T00:00:00+01:00") == []
    logged = (await orchestrator_client.get("/logs", params={"task_id": "task_a", "agent_id": "agent1"})).json()
    assert [(log["level"], log["metadata"]) for log in logged["logs"]] == [("ERROR", {"attempt": 1})]


async def test_logs_filter_by_subtask_and_trace(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    audit = orchestrator_repositories.audit
    for agent_id, subtask_id, trace_id in [
        ("agent1", "subtask_a1", "trace-a"),
        ("agent2", "subtask_a1", "trace-a"),  # the retry of the same subtask
        ("agent1", "subtask_a2", "trace-a"),
        ("agent1", "subtask_b1", "trace-b"),
    ]:
        task_id = f"task_{trace_id[-1]}"
        message = f"{agent_id} ran {subtask_id}"
        await audit.log_agent_activity(
            agent_id, task_id, LogLevel.INFO, message, subtask_id=subtask_id, trace_id=trace_id
        )
    await audit.log_agent_activity("agent1", None, LogLevel.INFO, "agent1 started")

    async def messages(**params: str) -> list[str]:
        response = await orchestrator_client.get("/logs", params=params)
        assert response.status_code == 200, response.text
        return [log["message"] for log in response.json()["logs"]]

    assert await messages(subtask_id="subtask_a1") == ["agent2 ran subtask_a1", "agent1 ran subtask_a1"]
    assert await messages(trace_id="trace-a") == [
        "agent1 ran subtask_a2",
        "agent2 ran subtask_a1",
        "agent1 ran subtask_a1",
    ]
    assert await messages(trace_id="trace-b", subtask_id="subtask_a1") == []
    assert await messages(trace_id="trace-a", agent_id="agent2") == ["agent2 ran subtask_a1"]
    assert await messages(trace_id="trace-c") == []
    [entry] = (await orchestrator_client.get("/logs", params={"subtask_id": "subtask_b1"})).json()["logs"]
    assert (entry["task_id"], entry["trace_id"]) == ("task_b", "trace-b")


@pytest.mark.parametrize(
    ("params", "word"),
    [
        pytest.param({"limit": "0"}, "limit", id="limit-0"),
        pytest.param({"subtask_id": "subtask\x00"}, "subtask_id", id="nul-in-subtask-id"),
        pytest.param({"trace_id": "t" * 129}, "trace_id", id="trace-id-too-long"),
        pytest.param({"limit": "1001"}, "limit", id="limit-1001"),
        pytest.param({"level": "LOUD"}, "level", id="unknown-level"),
        pytest.param({"since": "yesterday"}, "since", id="bad-since"),
        pytest.param({"since": "0001-01-01T00:15:18+01:00"}, "since", id="since-before-utc-calendar"),
        pytest.param({"until": "9999-12-31T23:59:59-01:00"}, "until", id="until-after-utc-calendar"),
        pytest.param({"agent_id": "agent\x001"}, "agent_id", id="nul-in-agent-id"),
        pytest.param({"task_id": "task\x00"}, "task_id", id="nul-in-task-id"),
    ],
)
async def test_logs_refuse_invalid_parameters(
    orchestrator_client: httpx.AsyncClient, params: dict[str, str], word: str
) -> None:
    response = await orchestrator_client.get("/logs", params=params)

    assert_error(response, 400, word)
