"""Idempotency records: claimed once, changed only by their owner, kept for the TTL once answered."""

import pytest
from redis.asyncio import Redis

from shared.redis import RedisKeys
from shared.redis.idempotency import IdempotencyRecords

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def records(redis_client: Redis, redis_keys: RedisKeys) -> IdempotencyRecords:
    return IdempotencyRecords(redis_client, redis_keys)


async def test_only_the_first_claim_of_a_key_wins_and_it_carries_a_lease(
    records: IdempotencyRecords, redis_client: Redis
) -> None:
    assert await records.claim("order 42: retry", "body-a", "owner-1", lease_seconds=30)
    assert not await records.claim("order 42: retry", "body-a", "owner-2", lease_seconds=30)

    record = await records.read("order 42: retry")
    assert record is not None
    assert (record.fingerprint, record.owner, record.response) == ("body-a", "owner-1", None)
    assert 0 < await redis_client.pttl(records.redis_key("order 42: retry")) <= 30_000


async def test_the_client_s_key_is_not_kept_in_redis(records: IdempotencyRecords, redis_keys: RedisKeys) -> None:
    redis_key = records.redis_key("secret-looking key*with:globs")

    assert "secret-looking" not in redis_key
    assert redis_key.startswith(f"mats:{redis_keys.tenant_id}:idempotency:")


async def test_the_owner_completes_its_claim_and_the_answer_lives_for_the_ttl(
    records: IdempotencyRecords, redis_client: Redis
) -> None:
    await records.claim("k", "body", "owner-1", lease_seconds=1)

    assert await records.complete("k", "owner-1", '{"task_id": "task_1"}', ttl_seconds=3600)

    record = await records.read("k")
    assert record is not None and record.response == '{"task_id": "task_1"}'
    assert await redis_client.ttl(records.redis_key("k")) > 1000
    # An answered record is no longer a claim: it is neither renewed to a lease nor released.
    assert not await records.renew("k", "owner-1", lease_seconds=1)
    assert not await records.release("k", "owner-1")
    assert await records.read("k") is not None


async def test_someone_else_cannot_renew_complete_or_release_a_claim(records: IdempotencyRecords) -> None:
    await records.claim("k", "body", "owner-1", lease_seconds=30)

    assert not await records.renew("k", "owner-2", lease_seconds=30)
    assert not await records.complete("k", "owner-2", "{}", ttl_seconds=60)
    assert not await records.release("k", "owner-2")

    record = await records.read("k")
    assert record is not None and (record.owner, record.response) == ("owner-1", None)


async def test_a_released_claim_is_gone_and_the_key_can_be_claimed_again(records: IdempotencyRecords) -> None:
    await records.claim("k", "body", "owner-1", lease_seconds=30)

    assert await records.release("k", "owner-1")

    assert await records.read("k") is None
    assert await records.claim("k", "other body", "owner-2", lease_seconds=30)


async def test_a_late_owner_cannot_overwrite_a_claim_taken_over(
    records: IdempotencyRecords, redis_client: Redis
) -> None:
    await records.claim("k", "body", "owner-1", lease_seconds=30)
    await redis_client.delete(records.redis_key("k"))  # its lease ran out
    await records.claim("k", "body", "owner-2", lease_seconds=30)

    assert not await records.complete("k", "owner-1", '{"task_id": "task_late"}', ttl_seconds=60)
    assert not await records.release("k", "owner-1")

    record = await records.read("k")
    assert record is not None and (record.owner, record.response) == ("owner-2", None)
