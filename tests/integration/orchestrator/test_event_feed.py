"""The event feed on the real Redis: a reader waiting on a quiet stream is released at once when told to stop, and a
task's feed ends with TaskEnded when its task has ended without an ending event after the reader's id, or with its
last ending event (one a retry followed is read past)."""

import asyncio

import anyio
import pytest

from orchestrator.event_feed import STREAM_START, Cursor, EventFeed, TaskEnded, parse_event_id
from shared.models import TaskStatus
from shared.redis import EventType, TaskEvent
from shared.redis_manager import RedisManager
from tests.event_streams import publish
from tests.polling import eventually

pytestmark = pytest.mark.timeout(30)
# Longer than the test's timeout: a wait that had to run out would fail the test.
FOREVER_MS = 600_000


async def test_a_reader_waiting_on_a_quiet_stream_stops_when_told(test_redis: RedisManager) -> None:
    feed = EventFeed(test_redis.client, block_ms=FOREVER_MS)
    stopping = anyio.Event()
    got = []
    first_event = asyncio.Event()

    async def read() -> None:
        async for item in feed.follow(Cursor(test_redis.events.key, STREAM_START, resuming=False), stopping):
            got.append(item)
            first_event.set()

    reader = asyncio.create_task(read())
    await publish(test_redis, "task_a", EventType.AGENT_STARTED)
    await first_event.wait()

    database = str(test_redis.client.connection_pool.connection_kwargs.get("db", 0))

    async def blocked_reads() -> int:
        clients = await test_redis.client.client_list()
        return sum(1 for client in clients if (client.get("db"), client.get("cmd")) == (database, "xread"))

    await eventually(blocked_reads, bool)  # caught up, it is in its blocking wait
    stopping.set()
    await reader

    assert len(got) == 1


async def test_a_task_that_ended_without_its_ending_event_ends_its_feed_with_its_status(
    test_redis: RedisManager,
) -> None:
    feed = EventFeed(test_redis.client, block_ms=FOREVER_MS)
    [started] = await publish(test_redis, "task_a", EventType.AGENT_STARTED)

    async def cancelled() -> TaskStatus:
        return TaskStatus.CANCELLED

    cursor = Cursor(test_redis.events.task_key("task_a"), STREAM_START, resuming=False)
    items = [item async for item in feed.follow_task(cursor, anyio.Event(), "task_a", cancelled)]

    assert [getattr(item, "event_id", None) for item in items] == [started, None]
    assert items[-1] == TaskEnded("task_a", TaskStatus.CANCELLED)


async def test_a_task_s_feed_reads_past_an_ending_that_a_retry_followed_and_ends_with_the_last(
    test_redis: RedisManager,
) -> None:
    feed = EventFeed(test_redis.client, block_ms=FOREVER_MS)
    published = []
    for event_type in (EventType.TASK_FAILED, EventType.TASK_RETRIED, EventType.TASK_COMPLETED):
        published += await publish(test_redis, "task_a", event_type)

    async def completed() -> TaskStatus:
        return TaskStatus.COMPLETED

    cursor = Cursor(test_redis.events.task_key("task_a"), STREAM_START, resuming=False)
    items = [item async for item in feed.follow_task(cursor, anyio.Event(), "task_a", completed)]

    assert [getattr(item, "event_id", None) for item in items] == published


async def test_entries_that_are_no_events_are_passed_over_not_read_again(test_redis: RedisManager) -> None:
    feed = EventFeed(test_redis.client, page_size=2, block_ms=FOREVER_MS)
    for _ in range(3):
        await test_redis.client.xadd(test_redis.events.key, {"written_by": "something else"})
    [event_id] = await test_redis.events.publish([TaskEvent(EventType.AGENT_STARTED, "task_a")])
    stopping = anyio.Event()

    got = []
    async for item in feed.follow(Cursor(test_redis.events.key, STREAM_START, resuming=False), stopping):
        got.append(item)
        stopping.set()

    assert [getattr(item, "event_id", None) for item in got] == [event_id]


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("1796069778368-3", "1796069778368-3"),
        ("0-0", "0-0"),
        (f"{2**64 - 1}-{2**64 - 2}", f"{2**64 - 1}-{2**64 - 2}"),
        (f"{2**64 - 1}-{2**64 - 1}", None),  # the greatest id: Redis reads nothing after it, it refuses to
        (f"{2**64}-0", None),
        ("1796069778368", None),
        ("-1-0", None),
        ("\uff11\uff12-3", None),  # full-width digits are digits to str.isdigit, not to Redis
        ("12-3 ", None),
    ],
)
def test_an_event_id_is_two_64_bit_numbers(value: str, parsed: str | None) -> None:
    assert parse_event_id(value) == parsed
