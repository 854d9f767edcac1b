"""The history endpoints on a live orchestrator with a fake agent: the orchestrator records the agents it sees, so an
agent whose heartbeat stopped keeps its record, and a retried subtask's timeline shows both attempts."""

from typing import Any

import httpx

from shared.models import AgentCapability, ResultStatus
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended
from tests.polling import eventually

SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))}]
}


async def agents_of(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/agents/history")
    assert response.status_code == 200, response.text
    return {agent["agent_id"]: agent for agent in response.json()["agents"]}


async def test_a_dead_agent_keeps_its_record_and_a_retried_subtask_shows_both_attempts(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        await wait_for_request(agent, "the only step")
        first = agent.requests_for("the only step")[0]
        await fleet.report(result_for(first, "agent1", status=ResultStatus.FAILED, retryable=True))
        await wait_for_request(agent, "the only step", count=2)  # no other agent: the retry comes back to it
        await fleet.report(result_for(agent.requests_for("the only step")[1], "agent1"))
        await wait_until_ended(client, task_id)
        fleet.stop_heartbeat("agent1")
        await fleet.redis.registry.deregister_agent("agent1")  # its entry is gone, as when its TTL runs out
        dead = await eventually(lambda: agents_of(client), lambda agents: not agents["agent1"]["alive"])
        timeline = (await client.get(f"/tasks/{task_id}/timeline")).json()["attempts"]
        history = (await client.get("/metrics/history", params={"minutes": 5})).json()["buckets"]

    record = dead["agent1"]
    assert (record["subtasks_completed"], record["subtasks_failed"], record["capabilities"]) == (
        1,
        1,
        ["DATA_ANALYSIS"],  # from the sighting the orchestrator wrote while the agent lived
    )
    assert [(attempt["attempt"], attempt["status"], attempt["agent_id"]) for attempt in timeline] == [
        (1, "failed", "agent1"),
        (2, "completed", "agent1"),
    ]
    assert all(attempt["wait_ms"] is not None and attempt["run_ms"] is not None for attempt in timeline)
    assert sum(bucket["subtasks_failed"] for bucket in history) == 1
    assert sum(bucket["tasks_completed"] for bucket in history) == 1
