"""The coordinator's tools: the pool's status without addresses or signatures, the isolation report of its tenant."""

import json
from collections.abc import AsyncIterator

import pytest

from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, AgentStatus, ToolCall
from shared.redis_manager import RedisManager
from tests.unit.agent.fixtures import ContextFactory, call_tool


@pytest.fixture
async def agent_db(agent_settings: Settings, db: DatabaseManager) -> AsyncIterator[DatabaseManager]:
    """The control database as the agent reaches it: under its own tenant."""
    manager = DatabaseManager(agent_settings)
    await manager.connect()
    yield manager
    await manager.disconnect()


def status(agent_id: str, *capabilities: AgentCapability, **fields: object) -> AgentStatus:
    values = {"agent_id": agent_id, "url": "http://10.0.0.7:8001", "port": 8001, "is_available": True}
    return AgentStatus.model_validate({**values, "capabilities": list(capabilities), **fields})


async def test_pool_status_lists_live_agents_and_their_load_without_addresses_or_signatures(
    tool_context_factory: ContextFactory, agent_redis: RedisManager
) -> None:
    await agent_redis.register_agent(status("agent1", AgentCapability.DATA_ANALYSIS, slots=2))
    busy = status("agent2", AgentCapability.COORDINATION, is_available=False, current_tasks=["subtask_x"])
    await agent_redis.register_agent(busy)

    text, is_error = await call_tool(tool_context_factory(), "pool_status")

    assert not is_error, text
    assert "10.0.0.7" not in text and "registration" not in text and "url" not in text
    answer = json.loads(text)
    assert answer["live_agents"] == 2
    first, second = answer["agents"]
    assert first == {
        "agent_id": "agent1", "capabilities": ["DATA_ANALYSIS"], "slots": 2, "running": 0, "state": "idle",
        "tasks_completed": 0, "tasks_failed": 0,
    }  # fmt: skip
    assert (second["agent_id"], second["running"], second["state"]) == ("agent2", 1, "full")


async def test_the_isolation_report_tool_reports_only_its_own_tenant(
    tool_context_factory: ContextFactory, agent_db: DatabaseManager, agent_settings: Settings, db: DatabaseManager
) -> None:
    call = ToolCall(agent_id="agent1", task_id="task_own", tool_name="read_file", arguments={"path": "../task_x/a"})
    await agent_db.repositories().audit.record_tool_call(call)
    stranger = call.model_copy(update={"agent_id": "agent_of_another_tenant"})
    await Repositories(db.pool, "another-tenant").audit.record_tool_call(stranger)

    text, is_error = await call_tool(tool_context_factory(db=agent_db), "isolation_report")

    assert not is_error, text
    report = json.loads(text)
    assert [agent["agent_id"] for agent in report["agents"]] == ["agent1"]
    assert (report["tool_calls_examined"], report["violations"]) == (1, 1)
    [violation] = report["agents"][0]["evidence"]["violations"]
    assert violation["kind"] == "workspace_escape" and "task task_x" in violation["detail"]
