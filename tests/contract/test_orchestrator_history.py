"""Contract of the history endpoints: GET /metrics/history, /agents/history, /agents/{agent_id}/attempts and
/tasks/{task_id}/timeline. Tasks are submitted through the API (no agents: their subtasks stay queued); finished
attempts are recorded with the repositories; agents are registered straight into the orchestrator's Redis tenant.
"""

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.api_keys import ApiKeyScope
from shared.database import DatabaseManager, Repositories
from shared.database.subtask_repository import AttemptTimes
from shared.models import AgentCapability, AgentStatus, SubTaskStatus
from shared.redis_manager import RedisManager
from tests.api_keys import bearer, issue_key
from tests.contract.conftest import AppFactory, SettingsFactory
from tests.contract.orchestrator_support import TWO_STEP_TASK, assert_error
from tests.factories import build_result

BUCKET_FIELDS = {
    "minute",
    "subtasks_completed",
    "subtasks_failed",
    "tasks_completed",
    "tasks_failed",
    "latency_p50_ms",
    "latency_p95_ms",
    "queue_depth",
    "failure_rate",
    "cost_usd",
}
AGENT_FIELDS = {
    "agent_id",
    "role",
    "capabilities",
    "first_seen",
    "last_seen",
    "alive",
    "subtasks_completed",
    "subtasks_failed",
    "last_error",
}
ATTEMPT_FIELDS = {
    "subtask_id",
    "attempt",
    "agent_id",
    "status",
    "queued_at",
    "assigned_at",
    "started_at",
    "ended_at",
    "wait_ms",
    "run_ms",
    "error",
}


async def submitted(client: httpx.AsyncClient) -> str:
    response = await client.post("/tasks", params={"description": TWO_STEP_TASK})
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def finish_first_step(repos: Repositories, task_id: str, agent_id: str) -> None:
    """s1's first attempt runs on `agent_id` and completes, recorded as the lifecycle records it."""
    [first, _] = await repos.subtasks.list_for_task(task_id)
    running = await repos.subtasks.claim(first.id, 1, agent_id)
    assert running is not None
    finished = await repos.subtasks.finish_attempt(first.id, 1, running.delivery_token, SubTaskStatus.COMPLETED)
    assert finished is not None
    result = build_result(running, agent_id=agent_id, output="42 rows", cost_usd=0.01)
    await repos.results.save_subtask_result(result, applied=True, times=AttemptTimes.of(finished))


# GET /metrics/history


async def test_metrics_history_answers_one_bucket_per_minute(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    await submitted(orchestrator_client)

    response = await orchestrator_client.get("/metrics/history", params={"minutes": 3})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (set(body), body["window_minutes"], len(body["buckets"])) == ({"window_minutes", "buckets"}, 3, 3)
    assert all(set(bucket) == BUCKET_FIELDS for bucket in body["buckets"])
    assert all(bucket["minute"].endswith(":00Z") for bucket in body["buckets"])
    assert body["buckets"][-1]["queue_depth"] == await orchestrator_repositories.subtasks.count_queued() == 1
    default = await orchestrator_client.get("/metrics/history")
    assert default.status_code == 200 and len(default.json()["buckets"]) == 60


@pytest.mark.parametrize("minutes", ["0", "1441", "an hour"])
async def test_metrics_history_refuses_a_window_outside_a_day(
    orchestrator_client: httpx.AsyncClient, minutes: str
) -> None:
    assert_error(await orchestrator_client.get("/metrics/history", params={"minutes": minutes}), 400, "minutes")


# GET /agents/history, GET /agents/{agent_id}/attempts


async def test_agents_history_shows_live_agents_and_those_that_ran_the_tenants_work(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_repositories: Repositories,
    orchestrator_redis_manager: RedisManager,
    orchestrator_agent_status: Callable[..., AgentStatus],
) -> None:
    await orchestrator_redis_manager.register_agent(orchestrator_agent_status("agent1", AgentCapability.DATA_ANALYSIS))
    await finish_first_step(orchestrator_repositories, await submitted(orchestrator_client), "agent3")
    # agent3 was never read from the registry (it is gone): its record comes from its results alone.

    response = await orchestrator_client.get("/agents/history")

    assert response.status_code == 200, response.text
    agents = response.json()["agents"]
    assert all(set(agent) == AGENT_FIELDS for agent in agents)
    assert [(a["agent_id"], a["alive"], a["subtasks_completed"], a["capabilities"]) for a in agents] == [
        ("agent1", True, 0, ["DATA_ANALYSIS"]),
        ("agent3", False, 1, []),
    ]


async def test_agent_attempts_lists_an_agents_attempts_of_the_tenants_work(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    task_id = await submitted(orchestrator_client)
    await finish_first_step(orchestrator_repositories, task_id, "agent3")

    response = await orchestrator_client.get("/agents/agent3/attempts", params={"limit": 5})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"agent_id", "attempts"} and body["agent_id"] == "agent3"
    [attempt] = body["attempts"]
    assert set(attempt) >= ATTEMPT_FIELDS
    assert (attempt["task_id"], attempt["attempt"], attempt["status"], attempt["agent_id"]) == (
        task_id,
        1,
        "completed",
        "agent3",
    )


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("/agents/agent_never_registered/attempts", {}, 404, ["agent_never_registered"]),
        ("/agents/not an id!/attempts", {}, 400, ["agent_id"]),
        ("/agents/agent1/attempts", {"limit": "0"}, 400, ["limit"]),
        ("/agents/agent1/attempts", {"limit": "501"}, 400, ["limit"]),
    ],
    ids=["unknown-agent", "bad-id", "limit-0", "limit-501"],
)
async def test_agent_attempts_refusals(
    orchestrator_client: httpx.AsyncClient, path: str, params: dict[str, str], status: int, words: list[str]
) -> None:
    assert_error(await orchestrator_client.get(path, params=params), status, *words)


# GET /tasks/{task_id}/timeline


async def test_timeline_shows_finished_and_waiting_attempts(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    task_id = await submitted(orchestrator_client)
    waiting = (await orchestrator_client.get(f"/tasks/{task_id}/timeline")).json()
    await finish_first_step(orchestrator_repositories, task_id, "agent3")

    response = await orchestrator_client.get(f"/tasks/{task_id}/timeline")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"task_id", "attempts"} and body["task_id"] == task_id
    assert [(a["attempt"], a["status"], a["agent_id"], a["assigned_at"]) for a in waiting["attempts"]] == [
        (1, "queued", None, None)
    ]
    # s1 completed; s2 became ready, but this test queued nothing: recorded attempts only.
    [done] = body["attempts"]
    assert set(done) >= ATTEMPT_FIELDS
    assert (done["status"], done["agent_id"], done["error"]) == ("completed", "agent3", None)
    assert None not in (done["queued_at"], done["assigned_at"], done["started_at"], done["ended_at"], done["wait_ms"])


async def test_timeline_of_an_unknown_or_another_tenants_task_is_404(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_app_factory: AppFactory,
    orchestrator_settings_factory: SettingsFactory,
) -> None:
    task_id = await submitted(orchestrator_client)
    async with await orchestrator_app_factory(orchestrator_settings_factory()) as other_tenant:
        theirs = await other_tenant.get(f"/tasks/{task_id}/timeline")
        their_agents = await other_tenant.get("/agents/history")

    assert_error(theirs, 404, task_id)
    assert their_agents.json() == {"agents": []}
    assert_error(await orchestrator_client.get("/tasks/task_00000000000000000000000000000000/timeline"), 404)


async def test_a_client_key_reads_the_history(
    orchestrator_client: httpx.AsyncClient, db: DatabaseManager, orchestrator_settings: Any
) -> None:
    task_id = await submitted(orchestrator_client)
    headers = bearer(await issue_key(db, orchestrator_settings.tenant_id, ApiKeyScope.CLIENT))

    for path in ("/metrics/history", "/agents/history", f"/tasks/{task_id}/timeline"):
        response = await orchestrator_client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
