import json

import pytest
from redis.asyncio import Redis

from shared.redis import EventStream, EventType, RedisKeys, TaskEvent
from shared.redis.events import parse_entries

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def events(redis_client: Redis, redis_keys: RedisKeys) -> EventStream:
    return EventStream(redis_client, redis_keys)


def started(task_id: str = "t1", subtask_id: str = "s1") -> TaskEvent:
    return TaskEvent(EventType.AGENT_STARTED, task_id, {"attempt": 1}, subtask_id=subtask_id, trace_id="trace-1")


async def test_an_event_goes_to_the_tenant_stream_and_its_task_stream_with_its_envelope(
    events: EventStream, redis_client: Redis, redis_keys: RedisKeys
) -> None:
    event = started()

    [event_id] = await events.publish([event])

    [(tenant_id, tenant_fields)] = await redis_client.xrange(redis_keys.events())
    [(_task_id, task_fields)] = await redis_client.xrange(redis_keys.task_events("t1"))
    assert tenant_id == event_id
    assert tenant_fields == task_fields
    assert tenant_fields == {
        "event_type": "AGENT_STARTED",
        "task_id": "t1",
        "subtask_id": "s1",
        "trace_id": "trace-1",
        "occurred_at": event.occurred_at,
        "data": json.dumps({"attempt": 1}, separators=(",", ":")),
    }
    [read] = parse_entries(await redis_client.xrange(redis_keys.events()))
    assert (read.event_id, read.event) == (event_id, event)


async def test_a_task_s_stream_expires_after_its_ending_event_and_not_before(
    redis_client: Redis, redis_keys: RedisKeys
) -> None:
    events = EventStream(redis_client, redis_keys, ended_task_ttl_seconds=600)

    await events.publish([started()])
    assert await redis_client.ttl(redis_keys.task_events("t1")) == -1
    await events.publish([started("t2"), TaskEvent(EventType.TASK_COMPLETED, "t1"), started("t3")])

    assert 0 < await redis_client.ttl(redis_keys.task_events("t1")) <= 600
    assert await redis_client.ttl(redis_keys.task_events("t2")) == -1
    assert await redis_client.xlen(redis_keys.events()) == 4


async def test_an_event_that_comes_after_its_task_ended_is_left_out_so_the_ending_stays_last(
    events: EventStream, redis_client: Redis, redis_keys: RedisKeys
) -> None:
    """An agent's AGENT_STARTED waits a moment for its batch; its task may be cancelled meanwhile."""
    cancelled = TaskEvent(EventType.TASK_CANCELLED, "t1")
    [ending] = await events.publish([cancelled])
    late, live = started("t1"), started("t2")

    ids = await events.publish_unless_ended([late, live, started("t1", "s2")])

    assert ids[0] is None and ids[2] is None and ids[1] is not None
    on_tenant_stream = parse_entries(await redis_client.xrange(redis_keys.events()))
    assert [(item.event_id, item.event) for item in on_tenant_stream] == [(ending, cancelled), (ids[1], live)]
    assert [item.event for item in parse_entries(await redis_client.xrange(redis_keys.task_events("t1")))] == [
        cancelled
    ]
    assert [item.event for item in parse_entries(await redis_client.xrange(redis_keys.task_events("t2")))] == [live]


async def test_an_ending_event_is_not_published_as_one_that_may_come_late(events: EventStream) -> None:
    with pytest.raises(ValueError, match="publish"):
        await events.publish_unless_ended([TaskEvent(EventType.TASK_COMPLETED, "t1")])


async def test_a_published_event_is_read_by_the_group_and_acked(
    events: EventStream, redis_client: Redis, redis_keys: RedisKeys
) -> None:
    [event_id] = await events.publish([started()])

    [read] = await events.read_group("workers", "worker-1", count=10, block_ms=100)

    assert read.event_id == event_id
    assert read.event.event_type is EventType.AGENT_STARTED
    assert (await redis_client.xpending(redis_keys.events(), "workers"))["pending"] == 1
    assert await events.ack("workers", event_id) is True
    assert (await redis_client.xpending(redis_keys.events(), "workers"))["pending"] == 0
    assert await events.ack("workers", event_id) is False


async def test_a_group_created_late_still_reads_earlier_events(events: EventStream) -> None:
    await events.publish([started(), TaskEvent(EventType.AGENT_COMPLETED, "t1", subtask_id="s1")])

    read = await events.read_group("late-group", "worker-1", count=10)

    assert [item.event.event_type for item in read] == ["AGENT_STARTED", "AGENT_COMPLETED"]


async def test_each_event_goes_to_one_consumer_of_a_group_and_to_every_group(events: EventStream) -> None:
    await events.read_group("workers", "worker-1")  # creates the group on an empty stream
    await events.publish([TaskEvent(EventType.AGENT_FAILED, "t1", {"error": "boom"})])

    first = await events.read_group("workers", "worker-1", block_ms=100)
    second = await events.read_group("workers", "worker-2")
    audit = await events.read_group("audit", "auditor")

    assert [item.event.data for item in first] == [{"error": "boom"}]
    assert second == []
    assert [item.event_id for item in audit] == [item.event_id for item in first]


async def test_entries_that_are_not_events_are_skipped_by_readers(
    events: EventStream, redis_client: Redis, redis_keys: RedisKeys
) -> None:
    await redis_client.xadd(redis_keys.events(), {"event_type": "AGENT_EXPLODED", "task_id": "t1", "occurred_at": "x"})
    await redis_client.xadd(redis_keys.events(), {"event_type": "AGENT_STARTED", "task_id": "t1", "data": "[1]"})
    [event_id] = await events.publish([started()])

    assert [item.event_id for item in await events.read_group("workers", "worker-1", count=10)] == [event_id]


async def test_a_block_that_would_wait_forever_is_refused(events: EventStream) -> None:
    with pytest.raises(ValueError, match="block_ms"):
        await events.read_group("workers", "worker-1", block_ms=0)


async def test_the_streams_are_capped(redis_client: Redis, redis_keys: RedisKeys) -> None:
    events = EventStream(redis_client, redis_keys, maxlen=100, task_maxlen=100)

    for _ in range(10):
        await events.publish([started() for _ in range(50)])

    # Approximate trimming drops whole stream nodes (100 entries each), so the length stays near the cap.
    assert 100 <= await redis_client.xlen(redis_keys.events()) <= 200
    assert 100 <= await redis_client.xlen(redis_keys.task_events("t1")) <= 200
