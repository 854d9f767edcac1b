"""GET /metrics: the pool's figures agree with PostgreSQL and the registry, and an agent's record outlives it."""

from typing import Any

import httpx

from shared.database import Repositories
from shared.models import AgentCapability, ResultStatus
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended
from tests.polling import eventually

SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))}]
}


async def metrics_of(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.text
    figures: dict[str, Any] = answer.json()
    return figures


async def test_metrics_count_what_postgresql_holds_and_what_the_agents_run(
    orchestrator: OrchestratorFactory, fleet: Fleet, orchestrator_repositories: Repositories
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS, slots=2)
    async with orchestrator(SCENARIOS) as client:
        empty = await metrics_of(client)
        completed = await submit(client, "Do a single step of work")
        await wait_for_request(agent, "the only step")
        await fleet.report(result_for(agent.requests_for("the only step")[0], "agent1"))
        await wait_until_ended(client, completed)
        failed = await submit(client, "Do a single step of work, again")
        await wait_for_request(agent, "the only step", count=2)
        failure = result_for(agent.requests_for("the only step")[1], "agent1", status=ResultStatus.FAILED)
        await fleet.report(failure)
        await wait_until_ended(client, failed)
        for ordinal in ("third", "fourth", "fifth"):  # two run on agent1's two slots, one waits on the queue
            await submit(client, f"Do a single step of work, a {ordinal} time")
        await wait_for_request(agent, "the only step", count=4)
        metrics = await eventually(lambda: metrics_of(client), lambda figures: figures["utilization"] == 1)

    assert (empty["tasks_pending"], empty["tasks_completed"], empty["tasks_failed"]) == (0, 0, 0)
    assert (empty["avg_assignment_latency_ms"], empty["agents"], empty["utilization"]) == (None, {}, 0.0)
    assert (metrics["tasks_pending"], metrics["tasks_completed"], metrics["tasks_failed"]) == (3, 1, 1)
    assert metrics["queue_depth_by_capability"] == {"DATA_ANALYSIS": 1}
    assert metrics["agents"] == {"agent1": {"completed": 1, "failed": 1}}  # from PostgreSQL: restarts keep it
    assert metrics["live_agents"] == 1
    assigned = [subtask.assignment_latency_ms for subtask in await orchestrator_repositories.subtasks.list_running()]
    assert len(assigned) == 2 and None not in assigned and metrics["avg_assignment_latency_ms"] >= 0
