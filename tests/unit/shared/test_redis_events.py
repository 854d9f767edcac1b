import pytest
from redis.asyncio import Redis

from shared.redis import EventStream, LifecycleEventType, RedisKeys

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def events(redis_client: Redis, redis_keys: RedisKeys) -> EventStream:
    return EventStream(redis_client, redis_keys)


async def test_a_published_event_is_read_by_the_group_and_acked(
    events: EventStream, redis_client: Redis, redis_keys: RedisKeys
) -> None:
    event_id = await events.publish_event(LifecycleEventType.AGENT_STARTED, {"agent_id": "agent1", "task_id": "t1"})

    [event] = await events.read_events("workers", "worker-1", count=10, block_ms=100)

    assert event.event_id == event_id
    assert event.event_type == LifecycleEventType.AGENT_STARTED
    assert event.fields == {"agent_id": "agent1", "task_id": "t1"}
    assert (await redis_client.xpending(redis_keys.events(), "workers"))["pending"] == 1
    assert await events.ack_event("workers", event_id) is True
    assert (await redis_client.xpending(redis_keys.events(), "workers"))["pending"] == 0
    assert await events.ack_event("workers", event_id) is False


async def test_events_published_together_arrive_in_order_and_an_invalid_one_stops_them_all(
    events: EventStream,
) -> None:
    published = await events.publish_events(
        [
            (LifecycleEventType.AGENT_STARTED, {"subtask_id": "s1"}),
            (LifecycleEventType.AGENT_FAILED, {"subtask_id": "s1"}),
        ]
    )
    with pytest.raises(ValueError):
        await events.publish_events([(LifecycleEventType.AGENT_STARTED, {"subtask_id": "s2"}), ("AGENT_EXPLODED", {})])

    read = await events.read_events("workers", "worker-1", count=10)
    assert [(event.event_id, event.event_type, event.fields["subtask_id"]) for event in read] == [
        (published[0], "AGENT_STARTED", "s1"),
        (published[1], "AGENT_FAILED", "s1"),
    ]


async def test_a_group_created_late_still_reads_earlier_events(events: EventStream) -> None:
    await events.publish_event(LifecycleEventType.AGENT_STARTED, {"agent_id": "agent1"})
    await events.publish_event(LifecycleEventType.AGENT_COMPLETED, {"agent_id": "agent1"})

    read = await events.read_events("late-group", "worker-1", count=10)

    assert [event.event_type for event in read] == ["AGENT_STARTED", "AGENT_COMPLETED"]


async def test_each_event_goes_to_one_consumer_of_a_group_and_to_every_group(events: EventStream) -> None:
    await events.read_events("workers", "worker-1")  # creates the group on an empty stream
    await events.publish_event(LifecycleEventType.AGENT_FAILED, {"error": "boom"})

    first = await events.read_events("workers", "worker-1", block_ms=100)
    second = await events.read_events("workers", "worker-2")
    audit = await events.read_events("audit", "auditor")

    assert [event.fields for event in first] == [{"error": "boom"}]
    assert second == []
    assert [event.event_id for event in audit] == [event.event_id for event in first]


async def test_reading_an_empty_stream_answers_nothing(events: EventStream) -> None:
    assert await events.read_events("workers", "worker-1", block_ms=100) == []


async def test_unknown_event_types_and_reserved_fields_are_refused(events: EventStream) -> None:
    with pytest.raises(ValueError, match="AGENT_EXPLODED"):
        await events.publish_event("AGENT_EXPLODED", {})
    with pytest.raises(ValueError, match="reserved"):
        await events.publish_event(LifecycleEventType.AGENT_STARTED, {"event_type": "AGENT_COMPLETED"})


async def test_a_block_that_would_wait_forever_is_refused(events: EventStream) -> None:
    with pytest.raises(ValueError, match="block_ms"):
        await events.read_events("workers", "worker-1", block_ms=0)


async def test_the_stream_is_capped(redis_client: Redis, redis_keys: RedisKeys) -> None:
    events = EventStream(redis_client, redis_keys, maxlen=100)

    for _ in range(500):
        await events.publish_event(LifecycleEventType.AGENT_STARTED, {})

    # Approximate trimming drops whole stream nodes (100 entries each), so the length stays near the cap.
    assert 100 <= await redis_client.xlen(redis_keys.events()) <= 200
