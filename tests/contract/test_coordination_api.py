"""Contract of the coordination pool's endpoints (seed 004)."""

from collections.abc import Callable
from typing import Any

import httpx

from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, AgentStatus, ToolCall
from shared.redis_manager import RedisManager
from tests.contract.orchestrator_support import assert_error
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


# --- coordination tools: follow-up subtasks ---


async def test_a_follow_up_request_not_signed_by_the_fleet_is_refused_even_with_an_operator_key(
    orchestrator_client: httpx.AsyncClient, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    repos = Repositories(db.pool, orchestrator_settings.tenant_id)
    task = build_task()
    await repos.tasks.create_task(task)
    body = {
        "attempt": {
            "task_id": task.id, "subtask_id": task.subtasks[0].id, "attempt": 1, "delivery_token": "token",
            "agent_id": "agent1", "assignment": {"expires_at": 0, "content_digest": "0" * 64, "signature": "0" * 64},
        },
        "subtask": {"description": "One more step", "required_capabilities": ["DATA_ANALYSIS"]},
    }  # fmt: skip
    path = "/coordination/follow-up-subtasks"

    unsigned = await orchestrator_client.post(path, json=body)
    wrongly_signed = await orchestrator_client.post(path, json=body, headers={"X-Fleet-Signature": "0" * 64})
    malformed = await orchestrator_client.post(path, json={**body, "subtask": {"description": "no capabilities"}})

    assert_error(unsigned, 401, "not signed by a member of the fleet")
    assert_error(wrongly_signed, 401, "not signed by a member of the fleet")
    assert_error(malformed, 400, "required_capabilities")
    assert await db.pool.fetchval("SELECT count(*) FROM subtasks WHERE task_id = $1", task.id) == 1
