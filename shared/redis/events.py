"""Task lifecycle events on Redis streams: the public record of what happened to a tenant's tasks (seeds 000-002).

Every event goes to two capped streams in one round trip: the tenant's stream (`GET /events`, webhooks, consumer
groups) and its task's own stream (`GET /tasks/{id}/events`), which expires a while after the task ends. An entry's
stream id is its event id; its fields are the envelope below, with the event's payload as one JSON object in `data`
(contracts/events.yaml says what each type carries).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from shared.redis.client import as_text, as_text_mapping
from shared.redis.keys import RedisKeys, validate_segment

# `EventStream.publish_unless_ended`: each event (its task's stream key in KEYS, after the tenant's; its field count
# and fields in ARGV, after the two MAXLENs) goes to both streams unless its task's stream has a time to live, which
# only the task's ending event gives it. Answers each event's id on the tenant's stream, or "" when left out.
_PUBLISH_UNLESS_ENDED_SCRIPT = """
local ids = {}
local position = 3
for index = 2, #KEYS do
    local count = tonumber(ARGV[position])
    local entry = {unpack(ARGV, position + 1, position + count)}
    position = position + count + 1
    ids[index - 1] = ''
    if redis.call('PTTL', KEYS[index]) < 0 then
        ids[index - 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(entry))
        redis.call('XADD', KEYS[index], 'MAXLEN', '~', ARGV[2], '*', unpack(entry))
    end
end
return ids
"""

EVENTS_MAXLEN = 10_000
TASK_EVENTS_MAXLEN = 2_000
ENDED_TASK_EVENTS_TTL_SECONDS = 86_400


class EventType(StrEnum):
    TASK_SUBMITTED = "TASK_SUBMITTED"
    TASK_PLANNED = "TASK_PLANNED"
    TASK_RETRIED = "TASK_RETRIED"  # an operator's retry: a failed task runs again (its stream is open again)
    TASK_PAUSED = "TASK_PAUSED"  # over its budget or its tenant's daily budget
    TASK_RESUMED = "TASK_RESUMED"
    SUBTASK_ADDED = "SUBTASK_ADDED"  # a follow-up a coordinator added to the plan
    SUBTASK_QUEUED = "SUBTASK_QUEUED"
    AGENT_STARTED = "AGENT_STARTED"
    AGENT_COMPLETED = "AGENT_COMPLETED"
    AGENT_FAILED = "AGENT_FAILED"
    SUBTASK_RETRIED = "SUBTASK_RETRIED"
    SUBTASK_BLOCKED = "SUBTASK_BLOCKED"
    SUBTASK_CANCELLED = "SUBTASK_CANCELLED"
    TASK_COMPLETED = "TASK_COMPLETED"
    TASK_FAILED = "TASK_FAILED"
    TASK_CANCELLED = "TASK_CANCELLED"

    @property
    def ends_task(self) -> bool:
        return self in TASK_ENDINGS


TASK_ENDINGS = frozenset({EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED})


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class TaskEvent:
    """One event: what happened (`event_type`), to which task and subtask, under which trace, and its payload."""

    event_type: EventType
    task_id: str
    data: Mapping[str, Any] = field(default_factory=dict)
    subtask_id: str | None = None
    trace_id: str | None = None
    occurred_at: str = field(default_factory=_now)

    def to_fields(self) -> dict[str, str]:
        """The stream entry: the envelope's fields as text, the payload as one JSON object."""
        fields = {
            "event_type": self.event_type.value,
            "task_id": self.task_id,
            "occurred_at": self.occurred_at,
            "data": json.dumps(self.data, separators=(",", ":"), default=str),
        }
        if self.subtask_id is not None:
            fields["subtask_id"] = self.subtask_id
        if self.trace_id is not None:
            fields["trace_id"] = self.trace_id
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> "TaskEvent":
        """The event a stream entry holds; ValueError for an entry that is not one (unknown type, bad JSON)."""
        data = json.loads(fields.get("data") or "{}")
        if not isinstance(data, dict):
            raise ValueError("an event's data must be a JSON object")
        return cls(
            event_type=EventType(fields["event_type"]),
            task_id=fields["task_id"],
            data=data,
            subtask_id=fields.get("subtask_id"),
            trace_id=fields.get("trace_id"),
            occurred_at=fields["occurred_at"],
        )

    def as_json(self, event_id: str) -> dict[str, Any]:
        """The event as SSE and webhooks send it: the envelope with its stream id and the payload as an object."""
        return {
            "id": event_id,
            "event_type": self.event_type.value,
            "task_id": self.task_id,
            "subtask_id": self.subtask_id,
            "trace_id": self.trace_id,
            "occurred_at": self.occurred_at,
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class StreamedEvent:
    """An event as read back from a stream, with its stream id (the event id clients resume from)."""

    event_id: str
    event: TaskEvent


class EventStream:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        *,
        maxlen: int = EVENTS_MAXLEN,
        task_maxlen: int = TASK_EVENTS_MAXLEN,
        ended_task_ttl_seconds: int = ENDED_TASK_EVENTS_TTL_SECONDS,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self.key = keys.events()
        self._maxlen = maxlen
        self._task_maxlen = task_maxlen
        self._ended_task_ttl = ended_task_ttl_seconds
        self._publish_unless_ended = redis.register_script(_PUBLISH_UNLESS_ENDED_SCRIPT)

    def task_key(self, task_id: str) -> str:
        return self._keys.task_events(task_id)

    async def publish(self, events: Sequence[TaskEvent]) -> list[str]:
        """Append the events, in order and in one round trip, to the tenant's stream and each to its task's; returns
        their ids on the tenant's stream. A task's stream expires ENDED_TASK_EVENTS_TTL after its ending event.

        Both streams keep roughly their last `maxlen` entries (trimmed by whole nodes, which is cheap)."""
        if not events:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            self.add_to(pipe, events)
            replies = await pipe.execute()
        return _event_ids(events, replies)

    async def publish_unless_ended(self, events: Sequence[TaskEvent]) -> list[str | None]:
        """`publish` for events that may come after their task ended, leaving those out (None): an agent's
        AGENT_STARTED is written a moment after the fact, and its task may have been cancelled meanwhile; a task's
        stream ends with its ending event. In one round trip, atomically; not for ending events themselves."""
        if not events:
            return []
        keys, args = self._unless_ended_call(events)
        ids = await self._publish_unless_ended(keys=keys, args=args)
        return [as_text(event_id) or None for event_id in ids]

    def add_unless_ended_to(self, pipe: Pipeline, events: Sequence[TaskEvent]) -> int:
        """Queue `publish_unless_ended` on a pipeline shared with other work; returns how many replies it makes
        (0 or 1). By the script's digest alone: redis-py would otherwise ask Redis whether it knows the script on
        every execution, one more round trip. A Redis that lost the script (a restart) answers NoScriptError in
        that reply; the caller publishes those events again with `publish_unless_ended`, which loads it."""
        if not events:
            return 0
        keys, args = self._unless_ended_call(events)
        pipe.evalsha(self._publish_unless_ended.sha, len(keys), *keys, *args)
        return 1

    def _unless_ended_call(self, events: Sequence[TaskEvent]) -> tuple[list[str], list[Any]]:
        if any(event.event_type.ends_task for event in events):
            raise ValueError("an ending event is published with publish()")
        args: list[Any] = [self._maxlen, self._task_maxlen]
        for event in events:
            fields = [part for pair in event.to_fields().items() for part in pair]
            args += [len(fields), *fields]
        return [self.key, *(self.task_key(event.task_id) for event in events)], args

    def add_to(self, pipe: Pipeline, events: Sequence[TaskEvent]) -> int:
        """Queue `publish`'s commands on a pipeline shared with other work; returns how many replies they make
        (`publish` reads the ids from them)."""
        replies = 0
        for event in events:
            entry: dict[Any, Any] = event.to_fields()
            task_key = self.task_key(event.task_id)
            pipe.xadd(self.key, entry, maxlen=self._maxlen, approximate=True)
            pipe.xadd(task_key, entry, maxlen=self._task_maxlen, approximate=True)
            replies += 2
            if event.event_type.ends_task:
                pipe.expire(task_key, self._ended_task_ttl)
                replies += 1
            elif event.event_type is EventType.TASK_RETRIED:
                pipe.persist(task_key)  # the task runs again: its stream lives on, and takes its agents' events
                replies += 1
        return replies

    async def read_group(
        self, group: str, consumer: str, count: int = 10, block_ms: int | None = None
    ) -> list[StreamedEvent]:
        """Events of the tenant's stream not yet delivered to the group, creating the group on first use (from the
        start of the stream: events published before the first consumer came up are not skipped).

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
            await self.create_group(group)
            response = await self._read_group(group, consumer, count, block_ms)
        return [event for _stream, entries in response or [] for event in parse_entries(entries)]

    async def ack(self, group: str, event_id: str) -> bool:
        """Mark an event processed by the group; False if it was not pending."""
        return await self._redis.xack(self.key, group, event_id) == 1

    async def ack_all(self, group: str, event_ids: Sequence[str]) -> int:
        """Mark events processed by the group in one command; how many of them were pending."""
        return await self._redis.xack(self.key, group, *event_ids) if event_ids else 0

    async def claim_idle(
        self, group: str, consumer: str, min_idle_ms: int, start: str = "0-0", count: int = 10
    ) -> tuple[str, list[StreamedEvent]]:
        """Take over the group's events pending for longer than `min_idle_ms` (XAUTOCLAIM): their consumer died, or
        stopped working on them. Scans from `start`; returns where the next scan starts ("0-0" after a full round)
        and the events now `consumer`'s. Entries that are not events are acknowledged: no consumer can process them.
        """
        validate_segment(group, "consumer group")
        validate_segment(consumer, "consumer")
        try:
            reply = await self._redis.xautoclaim(self.key, group, consumer, min_idle_ms, start, count=count)
        except ResponseError as error:
            if not str(error).startswith("NOGROUP"):
                raise
            await self.create_group(group)  # Redis lost its data: nothing is pending
            return "0-0", []
        next_start, entries = as_text(reply[0]), reply[1]
        events = parse_entries(entries)
        unreadable = {as_text(event_id) for event_id, _ in entries} - {event.event_id for event in events}
        if unreadable:
            await self._redis.xack(self.key, group, *unreadable)
        return next_start, events

    async def keep_claimed(self, group: str, consumer: str, event_ids: Sequence[str]) -> None:
        """Reset the idle time of events `consumer` is still working on, so claim_idle leaves them to it."""
        if event_ids:
            await self._redis.xclaim(self.key, group, consumer, 0, list(event_ids), justid=True)

    async def forget_idle_consumers(self, group: str, idle_ms: int) -> list[str]:
        """Remove the group's consumers that hold no pending event and have not read for `idle_ms` (processes gone
        for good, each named anew when it started); a live one that reads again is simply added back."""
        try:
            consumers = await self._redis.xinfo_consumers(self.key, group)
        except ResponseError as error:
            if not str(error).startswith("NOGROUP"):
                raise
            return []
        forgotten = []
        for consumer in consumers:
            if consumer["pending"] == 0 and consumer["idle"] >= idle_ms:
                await self._redis.xgroup_delconsumer(self.key, group, consumer["name"])
                forgotten.append(as_text(consumer["name"]))
        return forgotten

    async def create_group(self, group: str) -> None:
        try:
            await self._redis.xgroup_create(self.key, group, id="0", mkstream=True)
        except ResponseError as error:
            if not str(error).startswith("BUSYGROUP"):  # another consumer created it first
                raise

    async def _read_group(self, group: str, consumer: str, count: int, block_ms: int | None) -> Any:
        return await self._redis.xreadgroup(group, consumer, {self.key: ">"}, count=count, block=block_ms)


def _event_ids(events: Sequence[TaskEvent], replies: Sequence[Any]) -> list[str]:
    """The tenant-stream ids of `events` from the replies of their `add_to` commands."""
    ids = []
    position = 0
    for event in events:
        ids.append(as_text(replies[position]))
        position += 3 if event.event_type.ends_task or event.event_type is EventType.TASK_RETRIED else 2
    return ids


def parse_entries(entries: Sequence[Any]) -> list[StreamedEvent]:
    """Stream entries `[(id, fields), ...]` (an XRANGE reply, or one stream of an XREAD one) as events. An entry
    that is not an event (written by something else) is skipped rather than stopping every reader behind it."""
    events = []
    for event_id, raw_fields in entries:
        if raw_fields is None:  # XAUTOCLAIM may name an entry trimmed away since
            continue
        try:
            event = TaskEvent.from_fields(as_text_mapping(raw_fields))
        except (KeyError, ValueError):
            continue
        events.append(StreamedEvent(event_id=as_text(event_id), event=event))
    return events
