"""Store outages at the worst moments: what was taken from a queue is neither lost nor left in flight until a restart.

A result batch whose transaction PostgreSQL cuts off is taken again at once; a delivered subtask whose ack Redis
could not take is acked on the dispatcher's next try.
"""

from typing import Any

import asyncpg

from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import AgentCapability
from tests.fake_agent import result_for
from tests.network import link_to
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request, wait_until_ended
from tests.polling import eventually

SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))}]
}


async def test_a_result_whose_transaction_died_is_applied_on_the_next_try(
    orchestrator: OrchestratorFactory, fleet: Fleet, settings: Settings, db: DatabaseManager
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        await wait_for_request(agent, "the only step")

        # Hold the task's row lock, so the result processor's transaction waits on it; then end that
        # transaction's connection from the server side, as a PostgreSQL restart or failover would.
        blocker = await asyncpg.connect(settings.postgres_url)
        try:
            async with blocker.transaction():
                await blocker.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", task_id)
                await fleet.report(result_for(agent.received[0], "agent1"))

                async def waiting_backends() -> list[int]:
                    rows = await db.pool.fetch(
                        "SELECT pid FROM pg_stat_activity"
                        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                    return [row["pid"] for row in rows]

                for pid in await eventually(waiting_backends, bool):
                    assert await db.pool.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await blocker.close()

        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed"
    assert [(r["attempt"], r["status"]) for r in state["subtask_results"]] == [(1, "completed")]
    assert len(agent.received) == 1  # applied from the queue again, not run a second time


async def test_an_ack_redis_could_not_take_is_made_once_redis_is_back(
    orchestrator: OrchestratorFactory, fleet: Fleet, orchestrator_settings: Settings
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    link, redis_url = link_to(orchestrator_settings.redis_url)  # only the orchestrator's Redis goes through it
    agent.on_execute = link.cut  # Redis goes away between the delivery and its ack
    try:
        async with orchestrator(SCENARIOS, redis_url=redis_url) as client:
            task_id = await submit(client, "Do a single step of work")
            await wait_for_request(agent, "the only step")
            link.restore()

            # The queue item of the delivered subtask leaves the dispatcher's in-flight list.
            await eventually(fleet.redis.queued_task_items, lambda items: not items)
            await fleet.report(result_for(agent.received[0], "agent1"))
            state = await wait_until_ended(client, task_id)
    finally:
        link.close()

    assert state["task"]["status"] == "completed"
    assert len(agent.received) == 1
