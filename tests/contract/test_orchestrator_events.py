"""The event streams answer as the contract says: `text/event-stream` whose messages carry what its itemSchema
describes (schemathesis cannot read GET /events, a stream that never ends, to its end)."""

import json
from pathlib import Path

import httpx
import jsonschema
import yaml
from httpx_sse import aconnect_sse

from shared.redis import EventType, TaskEvent
from shared.redis_manager import RedisManager
from tests.contract.orchestrator_support import assert_error

CONTRACT = yaml.safe_load((Path(__file__).resolve().parents[2] / "contracts" / "orchestrator-api.yaml").read_text())


def message_schema(path: str) -> dict[str, object]:
    content = CONTRACT["paths"][path]["get"]["responses"]["200"]["content"]["text/event-stream"]
    schema: dict[str, object] = content["itemSchema"]["properties"]["data"]["contentSchema"]
    return schema


async def test_the_tenant_stream_sends_events_as_the_contract_describes(
    orchestrator_client: httpx.AsyncClient, orchestrator_redis_manager: RedisManager
) -> None:
    event = TaskEvent(EventType.AGENT_FAILED, "task_contract", {"error": "boom", "will_retry": True}, subtask_id="s1")
    [event_id] = await orchestrator_redis_manager.events.publish([event])

    async with aconnect_sse(orchestrator_client, "GET", "/events", params={"from": "start"}) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        assert source.response.headers["cache-control"] == "no-store"
        messages = []
        async for message in source.aiter_sse():  # the other tests' events first, if any
            messages.append(message)
            if message.id == event_id:
                break

    for message in messages:
        data = json.loads(message.data)
        jsonschema.validate(data, message_schema("/events"))
        assert (message.id, message.event) == (data["id"], data["event_type"])
    assert json.loads(messages[-1].data) == event.as_json(event_id)


async def test_a_start_other_than_now_or_start_is_refused(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/events", params={"from": "yesterday"})

    assert_error(response, 400, "from")
