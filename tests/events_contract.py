"""Lifecycle events as tests read them: a task's stream, and each event checked against contracts/events.yaml."""

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from shared.redis import EventType, StreamedEvent
from shared.redis.events import parse_entries
from shared.redis_manager import RedisManager

CONTRACT = Path(__file__).resolve().parents[1] / "contracts" / "events.yaml"
_CONTRACT_URI = "urn:mats:contracts:events"


@cache
def contract() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(CONTRACT.read_text())
    return document


@cache
def _validator(event_type: EventType) -> Draft7Validator:
    """The schema of the event type's message payload; its references resolve inside the contract."""
    registry: Registry[Any] = Registry().with_resource(_CONTRACT_URI, Resource.from_contents(contract(), DRAFT7))
    return Draft7Validator({"$ref": f"{_CONTRACT_URI}#/components/schemas/{event_type.value}"}, registry=registry)


def contract_problems(streamed: StreamedEvent) -> list[str]:
    """How the event, as SSE and webhooks send it, breaks its type's schema in the contract (none: it keeps it)."""
    return json_problems(streamed.event.as_json(streamed.event_id))


def json_problems(document: dict[str, Any]) -> list[str]:
    """`contract_problems` of an event as JSON."""
    event_type = EventType(document["event_type"])
    return [
        f"{event_type.value} {'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in _validator(event_type).iter_errors(document)
    ]


async def task_stream(redis: RedisManager, task_id: str) -> list[StreamedEvent]:
    """Every event on the task's own stream, oldest first."""
    return parse_entries(await redis.client.xrange(redis.events.task_key(task_id)) or [])


async def tenant_stream(redis: RedisManager) -> list[StreamedEvent]:
    """Every event on the tenant's stream, oldest first."""
    return parse_entries(await redis.client.xrange(redis.events.key) or [])


def kinds(events: list[StreamedEvent]) -> list[str]:
    """The events as `TYPE` or `TYPE subtask-id`, short enough to compare whole sequences."""
    return [" ".join(filter(None, (item.event.event_type.value, item.event.subtask_id))) for item in events]
