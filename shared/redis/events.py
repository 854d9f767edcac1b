"""Agent lifecycle events on the tenant's Redis stream, read through consumer groups (seeds 000-002)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.redis.client import as_text, as_text_mapping
from shared.redis.keys import RedisKeys, validate_segment

EVENTS_MAXLEN = 10_000
EVENT_TYPE_FIELD = "event_type"


class LifecycleEventType(StrEnum):
    AGENT_STARTED = "AGENT_STARTED"
    AGENT_COMPLETED = "AGENT_COMPLETED"
    AGENT_FAILED = "AGENT_FAILED"


@dataclass(frozen=True)
class LifecycleEvent:
    event_id: str
    event_type: str
    fields: dict[str, str]


class EventStream:
    def __init__(self, redis: Redis, keys: RedisKeys, maxlen: int = EVENTS_MAXLEN) -> None:
        self._redis = redis
        self.key = keys.events()
        self._maxlen = maxlen

    async def publish_event(self, event_type: str, fields: Mapping[str, str]) -> str:
        """Append an event; returns its stream id. The stream keeps roughly the last `maxlen` events."""
        event_id = await self._redis.xadd(self.key, _entry(event_type, fields), maxlen=self._maxlen, approximate=True)
        return as_text(event_id)

    async def publish_events(self, events: Sequence[tuple[str, Mapping[str, str]]]) -> list[str]:
        """Append (event type, fields) pairs in order, in one round trip; returns their stream ids.

        Nothing is sent when one of them is invalid.
        """
        entries = [_entry(event_type, fields) for event_type, fields in events]
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.xadd(self.key, entry, maxlen=self._maxlen, approximate=True)
            event_ids = await pipe.execute()
        return [as_text(event_id) for event_id in event_ids]

    async def read_events(
        self, group: str, consumer: str, count: int = 10, block_ms: int | None = None
    ) -> list[LifecycleEvent]:
        """Events not yet delivered to the group, creating the group (and stream) on first use.

        `block_ms=None` answers at once; a positive value waits that long for the first event.
        """
        validate_segment(group, "consumer group")
        validate_segment(consumer, "consumer")
        if block_ms is not None and block_ms <= 0:
            raise ValueError("block_ms must be positive (BLOCK 0 waits forever) or None")
        try:
            response = await self._read_group(group, consumer, count, block_ms)
        except ResponseError as error:
            if not str(error).startswith("NOGROUP"):
                raise
            await self._create_group(group)
            response = await self._read_group(group, consumer, count, block_ms)
        return _parse_events(response)

    async def ack_event(self, group: str, event_id: str) -> bool:
        """Mark an event processed by the group; False if it was not pending."""
        return await self._redis.xack(self.key, group, event_id) == 1

    async def _read_group(self, group: str, consumer: str, count: int, block_ms: int | None) -> Any:
        return await self._redis.xreadgroup(group, consumer, {self.key: ">"}, count=count, block=block_ms)

    async def _create_group(self, group: str) -> None:
        try:
            # From the start of the stream: events published before the first worker came up are not skipped.
            await self._redis.xgroup_create(self.key, group, id="0", mkstream=True)
        except ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):  # another consumer created it first
                raise


def _entry(event_type: str, fields: Mapping[str, str]) -> dict[Any, Any]:
    LifecycleEventType(event_type)  # refuses unknown types with ValueError
    if EVENT_TYPE_FIELD in fields:
        raise ValueError(f"{EVENT_TYPE_FIELD!r} is reserved for the event type")
    return {EVENT_TYPE_FIELD: event_type, **fields}


def _parse_events(response: Any) -> list[LifecycleEvent]:
    """Entries of a RESP2 XREADGROUP reply: `[[stream, [(id, fields), ...]]]`, or empty."""
    events = []
    for _stream, entries in response or []:
        for event_id, raw_fields in entries:
            fields = as_text_mapping(raw_fields)
            event_type = fields.pop(EVENT_TYPE_FIELD, "")
            events.append(LifecycleEvent(event_id=as_text(event_id), event_type=event_type, fields=fields))
    return events
