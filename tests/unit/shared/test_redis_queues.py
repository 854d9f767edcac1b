import asyncio
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from shared.redis import RedisKeys, ReliableQueue, create_client

pytestmark = pytest.mark.timeout(30)

WaitExpired = Callable[[str], Awaitable[None]]


@pytest.fixture
def queue(redis_client: Redis, redis_keys: RedisKeys) -> ReliableQueue:
    return ReliableQueue(redis_client, redis_keys, "agent_tasks")


async def take_all(queue: ReliableQueue, consumer_id: str) -> list[str]:
    taken = []
    while (item := await queue.take(consumer_id, timeout=0.1)) is not None:
        taken.append(item)
    return taken


async def test_items_come_out_in_the_order_they_went_in(queue: ReliableQueue) -> None:
    await queue.push("a")
    assert await queue.push_many(["b", "c"]) == 3

    assert await take_all(queue, "worker-1") == ["a", "b", "c"]


async def test_push_many_of_nothing_changes_nothing(queue: ReliableQueue) -> None:
    await queue.push("a")

    assert await queue.push_many([]) == 1


async def test_take_blocks_until_an_item_arrives(queue: ReliableQueue) -> None:
    waiting = asyncio.create_task(queue.take("worker-1", timeout=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()

    await queue.push("late item")

    assert await waiting == "late item"


async def test_take_many_takes_what_waits_up_to_the_limit_into_the_in_flight_list(queue: ReliableQueue) -> None:
    await queue.push_many(["a", "b", "c", "d", "e"])

    assert await queue.take_many("worker-1", timeout=1, limit=3) == ["a", "b", "c"]
    assert await queue.take_many("worker-1", timeout=1, limit=3) == ["d", "e"]
    assert await queue.inflight("worker-1") == ["a", "b", "c", "d", "e"]
    assert await queue.take_many("worker-1", timeout=0.2, limit=3) == []


async def test_take_many_on_an_empty_queue_waits_for_the_first_item(queue: ReliableQueue) -> None:
    waiting = asyncio.create_task(queue.take_many("worker-1", timeout=10, limit=5))
    await asyncio.sleep(0.2)
    assert not waiting.done()

    await queue.push("late item")

    assert await waiting == ["late item"]
    assert await queue.inflight("worker-1") == ["late item"]


async def test_take_returns_none_after_the_timeout(queue: ReliableQueue) -> None:
    assert await queue.take("worker-1", timeout=0.2) is None


@pytest.mark.parametrize("timeout", [0, -1])
async def test_take_refuses_a_timeout_that_would_block_forever(queue: ReliableQueue, timeout: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        await queue.take("worker-1", timeout=timeout)


async def test_a_taken_item_waits_in_flight_until_acked(queue: ReliableQueue) -> None:
    await queue.push_many(["a", "b"])

    item = await queue.take("worker-1", timeout=1)

    assert item == "a"
    assert await queue.inflight("worker-1") == ["a"]
    assert await queue.length() == 1
    assert await queue.ack("worker-1", "a") is True
    assert await queue.inflight("worker-1") == []
    assert await queue.ack("worker-1", "a") is False


async def test_items_of_a_dead_consumer_are_recovered_once(
    queue: ReliableQueue, redis_keys: RedisKeys, redis_wait_expired: WaitExpired
) -> None:
    await queue.push_many(["a", "b", "c"])
    await queue.heartbeat_consumer("dying", ttl=1)
    await queue.heartbeat_consumer("alive", ttl=60)
    assert await queue.take("dying", timeout=1) == "a"
    assert await queue.take("dying", timeout=1) == "b"
    assert await queue.take("alive", timeout=1) == "c"
    await queue.push("d")

    await redis_wait_expired(redis_keys.consumer_alive("agent_tasks", "dying"))

    assert await queue.recover_dead_consumers() == 2
    assert await queue.recover_dead_consumers() == 0
    assert await queue.inflight("dying") == []
    assert await queue.inflight("alive") == ["c"]
    assert await take_all(queue, "next") == ["a", "b", "d"]


async def test_concurrent_recoverers_yield_exactly_one_copy_of_each_item(
    queue: ReliableQueue, redis_url: str, redis_keys: RedisKeys
) -> None:
    items = [f"item-{index}" for index in range(200)]
    await queue.push_many(items)
    assert len(await take_all(queue, "dead")) == len(items)  # it never heartbeated: dead from the start
    # One client each, connected beforehand, like recovery loops of separate processes running at the same moment.
    clients = [create_client(redis_url) for _ in range(4)]
    await asyncio.gather(*(client.ping() for client in clients))
    recoverers = [ReliableQueue(client, redis_keys, queue.name) for client in clients]

    try:
        counts = await asyncio.gather(*(recoverer.recover_dead_consumers() for recoverer in recoverers))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))

    assert sum(counts) == len(items)
    assert await queue.inflight("dead") == []
    assert await take_all(queue, "next") == items


async def test_recover_of_a_consumer_with_nothing_in_flight_moves_nothing(queue: ReliableQueue) -> None:
    assert await queue.recover("nobody") == 0
    assert await queue.length() == 0


async def test_remove_withdraws_cancelled_work(queue: ReliableQueue) -> None:
    await queue.push_many(["keep", "cancel", "keep-too", "cancel"])

    assert await queue.remove("cancel") == 2

    assert await take_all(queue, "worker-1") == ["keep", "keep-too"]


async def test_reject_moves_an_item_to_the_dead_letter_list(queue: ReliableQueue) -> None:
    await queue.push("garbage")
    await queue.take("worker-1", timeout=1)

    await queue.reject("worker-1", "garbage", "not JSON")

    assert await queue.inflight("worker-1") == []
    assert [(letter.payload, letter.reason) for letter in await queue.dead_letters()] == [("garbage", "not JSON")]


async def test_tenants_have_separate_queues(redis_client: Redis, redis_tenant_factory: Callable[[], str]) -> None:
    acme = ReliableQueue(redis_client, RedisKeys(redis_tenant_factory()), "agent_tasks")
    globex = ReliableQueue(redis_client, RedisKeys(redis_tenant_factory()), "agent_tasks")

    await acme.push("acme's work")

    assert await globex.take("worker-1", timeout=0.1) is None
    assert await acme.take("worker-1", timeout=0.1) == "acme's work"
