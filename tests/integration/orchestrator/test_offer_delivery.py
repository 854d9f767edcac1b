"""Offers reach agents through their Redis queues: a refused offer is taken back and offered elsewhere at once (the
same attempt, no failure counted), and the offers waiting for an agent that died are neither lost nor run twice."""

import asyncio
import time
from typing import Any

from orchestrator.recovery import OFFER_ACCEPT_SECONDS
from shared.database import DatabaseManager
from shared.models import AgentCapability
from shared.redis.offers import OfferRefusal
from tests.fake_agent import result_for
from tests.orchestrator_harness import (
    HEARTBEAT_TTL_SECONDS,
    Fleet,
    OrchestratorFactory,
    plan,
    submit,
    wait_for_request,
    wait_until_ended,
)
from tests.polling import eventually

DATA = AgentCapability.DATA_ANALYSIS
SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))}]
}
# Well under a lease, a heartbeat TTL, or the time a lost delivery takes to be noticed (10 s): only a prompt re-offer.
PROMPT_SECONDS = 5.0


async def test_a_refused_offer_is_released_and_offered_to_another_agent_promptly(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    refuser = await fleet.add("agent1", DATA)  # first in name order, so first to be offered work
    refuser.refuse = True
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        await eventually(lambda: _offers(refuser), lambda offers: offers >= 1)
        refused_at = time.monotonic()
        worker = await fleet.add("agent5", DATA)

        await wait_for_request(worker, "the only step", timeout=PROMPT_SECONDS)
        assert time.monotonic() - refused_at < PROMPT_SECONDS
        [request] = worker.received
        # Taken back, not failed: the same attempt, with no agent counted against it.
        assert (request.subtask.attempt_count, request.subtask.failed_agent_ids) == (1, [])
        await fleet.report(result_for(request, "agent5"))
        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed"
    assert [(r["agent_id"], r["attempt"]) for r in state["subtask_results"]] == [("agent5", 1)]
    assert refuser.offers == 1  # not offered again: it has not heartbeated since it refused


async def test_offers_waiting_for_an_agent_that_died_are_neither_lost_nor_run_twice(
    orchestrator: OrchestratorFactory, fleet: Fleet, db: DatabaseManager
) -> None:
    """Never accepted, they are taken back (the same attempts: nothing ran) and run elsewhere, once each; the dead
    agent's queue is dropped once its registry entry is gone, so an agent back under its id finds nothing there."""
    dead = await fleet.add("agent1", DATA, slots=3)
    fleet.stop_taking_offers("agent1")  # it dies before it takes any: its offers wait in its queue
    async with orchestrator(SCENARIOS) as client:
        task_ids = [await submit(client, "Do a single step of work") for _ in range(3)]
        await eventually(lambda: fleet.redis.offers.waiting("agent1"), lambda offers: len(offers) == 3)
        fleet.stop_heartbeat("agent1")
        worker = await fleet.add("agent5", DATA, slots=3)

        await wait_for_request(worker, "the only step", count=3, timeout=OFFER_ACCEPT_SECONDS + 15)
        for request in worker.received:
            await fleet.report(result_for(request, "agent5"))
        states = [await wait_until_ended(client, task_id) for task_id in task_ids]
        await eventually(
            lambda: fleet.redis.offers.waiting("agent1"),
            lambda offers: offers == [],
            timeout=HEARTBEAT_TTL_SECONDS + 15,
        )

    assert [state["task"]["status"] for state in states] == ["completed"] * 3
    assert sorted(r.subtask.task_id for r in worker.received) == sorted(task_ids)  # each once, none lost
    assert {(r.subtask.attempt_count, tuple(r.subtask.failed_agent_ids)) for r in worker.received} == {(1, ())}
    assert dead.received == []
    applied = await db.pool.fetch(
        "SELECT agent_id, attempt FROM subtask_results WHERE task_id = ANY ($1::text[]) AND applied", task_ids
    )
    assert sorted((row["agent_id"], row["attempt"]) for row in applied) == [("agent5", 1)] * 3


async def test_a_refusal_that_takes_back_no_offer_changes_nothing(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    """Anyone who can write Redis can push a refusal: one naming an agent for an offer that is not (or no longer) an
    unaccepted offer to it neither keeps that agent from offers nor frees a slot the dispatcher counts as taken."""
    agent = await fleet.add("agent1", DATA)
    fleet.stop_heartbeat("agent1")  # its entry lives on for the TTL: only a refusal could keep offers from it
    forged = OfferRefusal(
        subtask_id="no-such-subtask", attempt=1, delivery_token="guessed", agent_id="agent1", reason="forged"
    )
    async with orchestrator(SCENARIOS) as client:
        await fleet.redis.offers.refusals.push(forged.model_dump_json())
        await eventually(fleet.redis.offers.refusals.waiting_and_inflight, lambda items: items == [])
        task_id = await submit(client, "Do a single step of work")

        await wait_for_request(agent, "the only step", timeout=PROMPT_SECONDS)
        await fleet.report(result_for(agent.received[0], "agent1"))
        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed"


async def test_an_offer_cancelled_before_its_agent_took_it_frees_the_agent_s_slot(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    """The agent finds the cancelled offer stale and drops it: no result, no refusal, nothing to take back. Its slot
    must still come free, or an agent of one slot is never offered anything again."""
    agent = await fleet.add("agent1", DATA, slots=1)
    fleet.stop_taking_offers("agent1")
    async with orchestrator(SCENARIOS) as client:
        cancelled = await submit(client, "Do a single step of work")
        await eventually(lambda: fleet.redis.offers.waiting("agent1"), lambda offers: len(offers) == 1)
        assert (await client.post(f"/tasks/{cancelled}/cancel")).status_code == 200
        fleet.intakes["agent1"] = asyncio.create_task(agent.take_offers(fleet.redis, fleet.db))
        await eventually(lambda: fleet.redis.offers.waiting("agent1"), lambda offers: offers == [])
        assert agent.received == []  # dropped as stale

        task_id = await submit(client, "Do a single step of work")
        await wait_for_request(agent, "the only step", timeout=PROMPT_SECONDS)
        await fleet.report(result_for(agent.received[0], "agent1"))
        state = await wait_until_ended(client, task_id)

    assert state["task"]["status"] == "completed"


async def _offers(agent: Any) -> int:
    offers: int = agent.offers
    return offers
