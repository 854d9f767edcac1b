from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from shared.redis import RedisKeys, SharedState

pytestmark = pytest.mark.timeout(30)

WaitExpired = Callable[[str], Awaitable[None]]


@pytest.fixture
def state(redis_client: Redis, redis_keys: RedisKeys) -> SharedState:
    return SharedState(redis_client, redis_keys)


async def test_a_value_is_read_back_and_listed(state: SharedState) -> None:
    await state.set_shared_state("task_1", "summary", "sales grew 4%", ttl=60)
    await state.set_shared_state("task_1", "rows", "1200", ttl=60)

    assert await state.get_shared_state("task_1", "summary") == "sales grew 4%"
    assert await state.get_shared_state("task_1", "missing") is None
    assert await state.list_shared_state("task_1") == {"summary": "sales grew 4%", "rows": "1200"}


async def test_values_expire_after_their_ttl(
    state: SharedState, redis_client: Redis, redis_keys: RedisKeys, redis_wait_expired: WaitExpired
) -> None:
    await state.set_shared_state("task_1", "short", "soon gone", ttl=1)
    await state.set_shared_state("task_1", "long", "stays", ttl=60)
    assert 0 < await redis_client.ttl(redis_keys.state("task_1", "long")) <= 60

    await redis_wait_expired(redis_keys.state("task_1", "short"))

    assert await state.get_shared_state("task_1", "short") is None
    assert await state.list_shared_state("task_1") == {"long": "stays"}


async def test_tasks_do_not_see_each_others_state(state: SharedState) -> None:
    await state.set_shared_state("task_1", "summary", "first", ttl=60)
    await state.set_shared_state("task_10", "summary", "second", ttl=60)

    assert await state.get_shared_state("task_1", "summary") == "first"
    assert await state.list_shared_state("task_1") == {"summary": "first"}
    assert await state.list_shared_state("task_10") == {"summary": "second"}
    assert await state.list_shared_state("task_2") == {}


@pytest.mark.parametrize(
    ("task_id", "key", "refused"),
    [
        ("task_1", "a:b", "shared state key"),
        ("task_1", "*", "shared state key"),
        ("task_1", "", "shared state key"),
        ("task_1:summary", "x", "task id"),
        ("task_*", "x", "task id"),
    ],
)
async def test_injected_keys_are_refused(state: SharedState, task_id: str, key: str, refused: str) -> None:
    with pytest.raises(ValueError, match=f"invalid {refused}"):
        await state.set_shared_state(task_id, key, "value", ttl=60)
    with pytest.raises(ValueError, match=f"invalid {refused}"):
        await state.get_shared_state(task_id, key)


async def test_listing_refuses_a_pattern_as_task_id(state: SharedState) -> None:
    await state.set_shared_state("task_1", "summary", "secret", ttl=60)

    with pytest.raises(ValueError, match="invalid task id"):
        await state.list_shared_state("*")


async def test_a_ttl_below_one_second_is_refused(state: SharedState) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await state.set_shared_state("task_1", "summary", "value", ttl=0)


async def test_claim_once_admits_only_the_first_claim(
    state: SharedState, redis_client: Redis, redis_keys: RedisKeys
) -> None:
    assert await state.claim_once("result_abc", ttl=60) is True
    assert await state.claim_once("result_abc", ttl=60) is False
    assert await state.claim_once("result_def", ttl=60) is True
    assert 0 < await redis_client.ttl(redis_keys.idempotency("result_abc")) <= 60


async def test_a_claim_can_be_made_again_after_it_expired(
    state: SharedState, redis_keys: RedisKeys, redis_wait_expired: WaitExpired
) -> None:
    assert await state.claim_once("event_1", ttl=1) is True

    await redis_wait_expired(redis_keys.idempotency("event_1"))

    assert await state.claim_once("event_1", ttl=60) is True
