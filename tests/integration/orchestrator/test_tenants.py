"""Two tenants' orchestrators on one database: neither lists, requeues nor retries the other's work."""

import asyncio
import uuid
from typing import Any

from shared.database import DatabaseManager
from shared.models import AgentCapability
from tests.fake_agent import result_for
from tests.orchestrator_harness import (
    Fleet,
    OrchestratorFactory,
    plan,
    submit,
    task_state,
    wait_for_request,
    wait_until_ended,
)

SCENARIOS: dict[str, Any] = {
    "plans": [
        {"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))},
        {"match": "code step", "plan": plan(("s1", "write the code", ["CODE_GENERATION"], []))},
    ]
}
# Several of the other orchestrator's recovery passes (each 0.3 s in these tests; the first runs at start-up).
RECOVERY_PASSES_SECONDS = 2.0


async def test_another_tenants_orchestrator_leaves_this_tenants_work_alone(
    orchestrator: OrchestratorFactory, fleet: Fleet, db: DatabaseManager
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    async with orchestrator(SCENARIOS) as client:
        running_task = await submit(client, "Do a single step of work")
        waiting_task = await submit(client, "Do one code step")  # no agent can run it: it stays queued
        await wait_for_request(agent, "the only step")

        # The other tenant's orchestrator knows neither agent1 nor this tenant's queue.
        async with orchestrator(SCENARIOS, tenant_id=f"other-{uuid.uuid4().hex[:10]}") as other:
            await asyncio.sleep(RECOVERY_PASSES_SECONDS)
            listed = (await other.get("/tasks")).json()
            assert listed["total"] == 0 and listed["tasks"] == []

        results = await db.pool.fetchval("SELECT count(*) FROM subtask_results WHERE task_id = $1", running_task)
        assert results == 0, "the other tenant's recovery retried an attempt its own registry does not know"
        [waiting] = (await task_state(client, waiting_task))["task"]["subtasks"]
        assert (waiting["status"], waiting["attempt_count"]) == ("queued", 1)
        assert len(agent.received) == 1

        await fleet.report(result_for(agent.received[0], "agent1"))
        state = await wait_until_ended(client, running_task)
        listed = (await client.get("/tasks")).json()

    assert state["task"]["status"] == "completed"
    assert {task["id"] for task in listed["tasks"]} == {running_task, waiting_task}
