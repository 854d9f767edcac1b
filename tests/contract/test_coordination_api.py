"""Contract of the coordination pool's endpoints (seed 004)."""

from collections.abc import Callable
from typing import Any

import httpx

from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, AgentStatus, ToolCall
from shared.redis_manager import RedisManager
from tests.factories import build_result, build_task

# --- isolation report ---


async def test_isolation_report_lists_live_and_audited_agents_with_their_facts_and_evidence(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_redis_manager: RedisManager,
    orchestrator_agent_status: Callable[..., AgentStatus],
    orchestrator_settings: Settings,
    db: DatabaseManager,
) -> None:
    await orchestrator_redis_manager.register_agent(orchestrator_agent_status("agent1", AgentCapability.DATA_ANALYSIS))
    repos = Repositories(db.pool, orchestrator_settings.tenant_id)
    task = build_task()
    await repos.tasks.create_task(task)
    [subtask] = task.subtasks
    facts: dict[str, Any] = {
        "claude_session_id": "session-1",
        "claude_config_dir": "/claude/agent2",
        "allowed_tools": ["read_file"],
    }
    await repos.results.save_subtask_result(
        build_result(subtask, agent_id="agent2", role_config_hash="ab" * 32, **facts), applied=True
    )
    call = ToolCall(
        agent_id="agent2", task_id=task.id, subtask_id=subtask.id, attempt=1, tool_name="read_file",
        arguments={"path": "input.csv"},
    )  # fmt: skip
    await repos.audit.record_tool_call(call)

    response = await orchestrator_client.get("/isolation-report")

    assert response.status_code == 200, response.text
    report = response.json()
    assert set(report) == {
        "generated_at", "violations", "attempts_examined", "tool_calls_examined", "truncated", "agents"
    }  # fmt: skip
    assert (report["violations"], report["attempts_examined"], report["tool_calls_examined"]) == (0, 1, 1)
    live, audited = report["agents"]
    assert (live["agent_id"], live["live"], live["capabilities"]) == ("agent1", True, ["DATA_ANALYSIS"])
    assert live["evidence"]["missing"] == ["no audited attempts: nothing recorded shows how its subtasks were isolated"]
    assert (audited["agent_id"], audited["live"], audited["capabilities"]) == ("agent2", False, [])
    assert audited["isolation"]["config_dirs"] == ["/claude/agent2"]
    assert audited["isolation"]["roles"] == [
        {"role_config_hash": "ab" * 32, "allowed_tools": ["read_file"], "attempts": 1}
    ]
    assert {"workspace", "shared_state", "conversation"} <= set(audited["isolation"])
    evidence = audited["evidence"]
    assert (evidence["attempts"], evidence["sessions_recorded"], evidence["tool_calls_checked"]) == (1, 1, 1)
    assert (evidence["violations"], evidence["missing"]) == ([], [])
