"""A real task through the real fleet (SDK agents against the simulator) reaches the webhooks registered for it: each
of its events once, whole, signed, and only the event types each webhook asked for."""

import httpx
import pytest
import standardwebhooks

from shared.redis import StreamedEvent
from shared.redis_manager import RedisManager
from tests.e2e.conftest import follow
from tests.events_contract import tenant_stream
from tests.polling import eventually
from tests.webhook_receiver import Received, running_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.sdk]


def of_task(received: list[Received], task_id: str) -> list[Received]:
    return [request for request in received if request.json()["task_id"] == task_id]


async def test_a_real_task_s_events_reach_its_webhooks_once_each_whole_and_signed(
    api: httpx.AsyncClient, fleet_redis: RedisManager
) -> None:
    async with running_receiver() as receiver:
        every = await api.post("/webhooks", json={"url": receiver.url("/all"), "events": ["*"]})
        endings = await api.post("/webhooks", json={"url": receiver.url("/end"), "events": ["TASK_COMPLETED"]})
        assert (every.status_code, endings.status_code) == (201, 201), (every.text, endings.text)

        response = await api.post("/tasks", params={"description": "Build the quarterly sales report"})
        task_id = response.json()["task_id"]
        state, _ = await follow(api, task_id)
        assert state["task"]["status"] == "completed", state["task"]["error"]

        # As on the tenant's stream, which webhooks are fed from (an event's id there is not its id on the task's).
        async def tenant_events_of_task() -> list[StreamedEvent]:
            return [item for item in await tenant_stream(fleet_redis) if item.event.task_id == task_id]

        events = await eventually(
            tenant_events_of_task, lambda found: bool(found) and found[-1].event.event_type.ends_task
        )

        async def delivered_of_task() -> list[Received]:
            return of_task(await receiver.received("/all"), task_id)

        delivered = await eventually(delivered_of_task, lambda found: len(found) >= len(events))
        [ended] = await eventually(lambda: receiver.received("/end"), lambda found: len(found) == 1)

    verifier = standardwebhooks.Webhook(every.json()["secret"])
    bodies = {request.headers["webhook-id"]: verifier.verify(request.body, request.headers) for request in delivered}
    assert len(delivered) == len(bodies) == len(events)  # each event once
    assert bodies == {item.event_id: item.event.as_json(item.event_id) for item in events}  # whole, as published
    assert standardwebhooks.Webhook(endings.json()["secret"]).verify(ended.body, ended.headers) == events[
        -1
    ].event.as_json(events[-1].event_id)
    assert ended.json()["data"] == {"result": state["task"]["result"]}
