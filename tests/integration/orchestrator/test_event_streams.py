"""GET /tasks/{id}/events and GET /events over real HTTP, on the real Redis streams and PostgreSQL.

The events are published here through EventStream.publish, as the lifecycle publishes them: the streams' readers
are what is under test.
"""

import json
from typing import Any

import pytest

from shared.api_keys import ApiKeyScope
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import AgentCapability
from shared.redis import EventType
from shared.redis_manager import RedisManager
from tests.api_keys import bearer, issue_key
from tests.event_streams import following, publish, read_until_closed, task_stream_ids
from tests.events_contract import contract_problems, task_stream
from tests.fake_agent import result_for
from tests.network import link_to
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, submit, wait_for_request
from tests.polling import eventually

pytestmark = pytest.mark.timeout(90)

SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))}]
}
STARTED, COMPLETED = EventType.AGENT_STARTED, EventType.AGENT_COMPLETED


async def test_two_clients_of_one_task_both_get_every_event_and_the_stream_closes_after_its_ending(
    orchestrator: OrchestratorFactory, test_redis: RedisManager
) -> None:
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        await publish(test_redis, task_id, STARTED)  # history, before anyone follows
        async with (
            following(client, f"/tasks/{task_id}/events") as first,
            following(client, f"/tasks/{task_id}/events") as second,
        ):
            held = len(await task_stream_ids(test_redis, task_id))
            await first.wait_for(held)
            await second.wait_for(held)
            await publish(test_redis, task_id, COMPLETED, STARTED, COMPLETED)  # live
            await publish(test_redis, task_id, EventType.TASK_COMPLETED)
            await eventually(_both_closed(first, second), bool)

    every_event = await task_stream_ids(test_redis, task_id)
    assert first.ids == second.ids == every_event
    assert first.events[-1].event == "TASK_COMPLETED"
    message = json.loads(first.events[-1].data)
    assert (message["id"], message["event_type"], message["task_id"]) == (every_event[-1], "TASK_COMPLETED", task_id)


def _both_closed(*readers: Any) -> Any:
    async def closed() -> bool:
        return all(reader.closed for reader in readers)

    return closed


async def test_a_real_task_s_stream_tells_its_story_live_from_submission_to_its_end(
    orchestrator: OrchestratorFactory, fleet: Fleet, test_redis: RedisManager
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        async with following(client, f"/tasks/{task_id}/events") as reader:
            await wait_for_request(agent, "the only step")
            await fleet.report(result_for(agent.received[0], "agent1", output="rows: 42"))
            await eventually(_both_closed(reader), bool)

    streamed = await task_stream(test_redis, task_id)
    assert reader.ids == [item.event_id for item in streamed]
    assert [problem for item in streamed for problem in contract_problems(item)] == []
    assert [reader.events[0].event, reader.events[-1].event] == ["TASK_SUBMITTED", "TASK_COMPLETED"]
    [completed] = [json.loads(message.data) for message in reader.events if message.event == "AGENT_COMPLETED"]
    assert "rows: 42" in json.dumps(completed["data"])


async def test_a_client_resumes_from_last_event_id_without_gaps_or_duplicates(
    orchestrator: OrchestratorFactory, test_redis: RedisManager
) -> None:
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        await publish(test_redis, task_id, STARTED, COMPLETED, STARTED)
        async with following(client, f"/tasks/{task_id}/events") as before:
            await before.wait_for(len(await task_stream_ids(test_redis, task_id)))
        seen = before.ids
        await publish(test_redis, task_id, COMPLETED, EventType.TASK_COMPLETED)  # while it was away

        by_header = await read_until_closed(client, f"/tasks/{task_id}/events", headers={"Last-Event-ID": seen[-1]})
        by_query = await read_until_closed(client, f"/tasks/{task_id}/events", params={"last_event_id": seen[1]})

    every_event = await task_stream_ids(test_redis, task_id)
    assert seen + by_header.ids == every_event
    assert seen[:2] + by_query.ids == every_event


async def test_an_id_whose_successors_were_trimmed_gets_reset_then_the_oldest_held_events(
    orchestrator: OrchestratorFactory, test_redis: RedisManager
) -> None:
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        published = await publish(test_redis, task_id, STARTED, COMPLETED, STARTED, COMPLETED, EventType.TASK_FAILED)
        # The cap at work: only the newest two are held.
        await test_redis.client.xtrim(test_redis.events.task_key(task_id), maxlen=2, approximate=False)

        resumed = await read_until_closed(client, f"/tasks/{task_id}/events", headers={"Last-Event-ID": published[0]})

    assert [message.event for message in resumed.messages] == ["reset", "AGENT_COMPLETED", "TASK_FAILED"]
    reset = json.loads(resumed.messages[0].data)
    assert (reset["after_id"], reset["oldest_id"]) == (published[0], published[3])
    assert "reload" in reset["reason"]
    assert resumed.ids == published[3:]


async def test_a_task_whose_stream_expired_gets_one_end_event_with_its_status(
    orchestrator: OrchestratorFactory, test_redis: RedisManager
) -> None:
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        assert (await client.post(f"/tasks/{task_id}/cancel")).status_code == 200
        await test_redis.client.delete(test_redis.events.task_key(task_id))  # as its expiry would

        ended = await read_until_closed(client, f"/tasks/{task_id}/events")

    assert [message.event for message in ended.messages] == ["end"]
    assert json.loads(ended.messages[0].data)["status"] == "cancelled"


async def test_another_tenant_s_task_an_unknown_task_and_a_malformed_id_are_refused(
    orchestrator: OrchestratorFactory, orchestrator_settings: Settings
) -> None:
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "Do a single step of work")
        async with orchestrator(SCENARIOS, tenant_id=f"{orchestrator_settings.tenant_id}-other") as other:
            other_tenant = await other.get(f"/tasks/{task_id}/events")
        unknown = await client.get("/tasks/task_does_not_exist/events")
        malformed = await client.get(f"/tasks/{task_id}/events", headers={"Last-Event-ID": "yesterday"})
        too_large = await client.get("/events", params={"last_event_id": f"{2**64}-0"})
        greatest = await client.get("/events", headers={"Last-Event-ID": f"{2**64 - 1}-{2**64 - 1}"})

    assert other_tenant.status_code == 404 and "no task" in other_tenant.json()["error"]
    assert unknown.status_code == 404
    assert malformed.status_code == 400 and "Last-Event-ID" in malformed.text
    assert too_large.status_code == 400 and "not an event id" in too_large.json()["error"]
    # No event follows the greatest id, and Redis refuses to read after it: a 400, not a stream that fails at once.
    assert greatest.status_code == 400 and "not an event id" in greatest.json()["error"]


async def test_the_tenant_stream_starts_at_new_events_or_from_the_start(
    orchestrator: OrchestratorFactory, test_redis: RedisManager
) -> None:
    async with orchestrator(SCENARIOS) as client:
        await publish(test_redis, "task_a", STARTED)
        async with following(client, "/events") as now, following(client, "/events", params={"from": "start"}) as start:
            await start.wait_for(1)
            await eventually(lambda: _answered(now), bool)  # headers sent: its starting point is fixed
            await publish(test_redis, "task_b", COMPLETED)
            await now.wait_for(1)
            await start.wait_for(2)

    assert [json.loads(message.data)["task_id"] for message in now.events] == ["task_b"]
    assert [json.loads(message.data)["task_id"] for message in start.events] == ["task_a", "task_b"]
    tenant_stream = [str(entry_id) for entry_id, _ in await test_redis.client.xrange(test_redis.events.key)]
    assert start.ids == tenant_stream  # ids are per stream: the tenant's here, not each task's


async def _answered(reader: Any) -> bool:
    return reader.status_code is not None


async def test_the_client_cap_answers_503_and_a_closed_stream_frees_its_slot(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(SCENARIOS, sse_max_clients=1) as client:
        async with following(client, "/events") as holder:
            await eventually(lambda: _answered(holder), bool)
            refused = await client.get("/events")

        async def admitted() -> int:
            async with following(client, "/events") as again:
                await eventually(lambda: _answered(again), bool)
                return again.status_code or 0

        assert await eventually(admitted, lambda status: status == 200)

    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert "SSE_MAX_CLIENTS" in refused.json()["error"]


async def test_one_client_key_cannot_take_every_stream_from_the_others(
    orchestrator: OrchestratorFactory, orchestrator_settings: Settings, db: DatabaseManager
) -> None:
    greedy = bearer(await issue_key(db, orchestrator_settings.tenant_id, ApiKeyScope.CLIENT))
    async with (
        orchestrator(SCENARIOS, sse_max_clients=3, sse_max_clients_per_key=1) as client,
        following(client, "/events", headers=greedy) as holder,
    ):
        await eventually(lambda: _answered(holder), bool)
        refused = await client.get("/events", headers=greedy)
        # Another key (here the operator's, as the dashboard's) still gets a stream.
        async with following(client, "/events") as other:
            await eventually(lambda: _answered(other), bool)

    assert holder.status_code == 200 and other.status_code == 200
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert "SSE_MAX_CLIENTS_PER_KEY" in refused.json()["error"]


async def test_redis_going_away_mid_stream_ends_it_with_a_reconnection_hint(
    orchestrator: OrchestratorFactory, orchestrator_settings: Settings, test_redis: RedisManager
) -> None:
    link, redis_url = link_to(orchestrator_settings.redis_url)
    try:
        async with (
            orchestrator(SCENARIOS, redis_url=redis_url) as client,
            following(client, "/events", params={"from": "start"}) as reader,
        ):
            await publish(test_redis, "task_a", STARTED)
            await reader.wait_for(1)
            link.cut()
            await eventually(lambda: _closed(reader), bool)
    finally:
        link.close()

    assert reader.status_code == 200
    assert reader.messages[-1].retry == 3000  # the body ended properly: the client reconnects when told
    assert len(reader.events) == 1


async def _closed(reader: Any) -> bool:
    return bool(reader.closed)
