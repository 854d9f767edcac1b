"""The orchestrator keeps the API keys it looked up until PostgreSQL announces a change: revocation still takes
effect at once, and a key looked up lately costs no round trip."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from orchestrator.api_key_cache import CHANNEL, ApiKeyCache, ApiKeyChanges
from shared.api_keys import ApiKey, ApiKeyScope
from shared.config import Settings
from shared.database import DatabaseManager
from tests.polling import eventually


class CountedLookups:
    """The real lookup in PostgreSQL, counted: how many requests paid a round trip."""

    def __init__(self, db: DatabaseManager) -> None:
        self._db = db
        self.count = 0

    async def __call__(self, key: str) -> ApiKey | None:
        self.count += 1
        return await self._db.repositories().api_keys.authenticate(key)


@pytest.fixture
def lookups(db: DatabaseManager) -> CountedLookups:
    return CountedLookups(db)


@pytest.fixture
async def listening(
    orchestrator_settings: Settings, lookups: CountedLookups
) -> AsyncIterator[tuple[ApiKeyCache, ApiKeyChanges]]:
    cache = ApiKeyCache(lookups)
    changes = ApiKeyChanges(orchestrator_settings, cache)
    await changes.run_once()  # connects and listens
    yield cache, changes
    await changes.close()


async def new_key(db: DatabaseManager) -> tuple[ApiKey, str]:
    return await db.repositories().api_keys.create("tenant-a", "tests", ApiKeyScope.CLIENT)


async def test_a_key_looked_up_lately_costs_no_lookup_and_a_revocation_reaches_it(
    db: DatabaseManager, listening: tuple[ApiKeyCache, ApiKeyChanges], lookups: CountedLookups
) -> None:
    cache, _ = listening
    record, key = await new_key(db)

    first, second = await cache.authenticate(key), await cache.authenticate(key)
    assert first == second and first is not None and first.id == record.id
    assert lookups.count == 1

    await db.repositories().api_keys.revoke(record.id)  # as `api-keys revoke` does, in another connection

    await eventually(lambda: cache.authenticate(key), lambda found: found is None, timeout=5)


async def test_a_revocation_by_hand_in_sql_reaches_it_too(
    db: DatabaseManager, listening: tuple[ApiKeyCache, ApiKeyChanges]
) -> None:
    cache, _ = listening
    record, key = await new_key(db)
    assert await cache.authenticate(key) is not None

    await db.pool.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", record.id)

    await eventually(lambda: cache.authenticate(key), lambda found: found is None, timeout=5)


async def test_only_changes_that_decide_who_may_call_are_announced(
    db: DatabaseManager, orchestrator_settings: Settings
) -> None:
    record, _ = await new_key(db)
    other, _ = await new_key(db)
    announcements: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(orchestrator_settings.postgres_url)
    await listener.add_listener(CHANNEL, lambda *args: announcements.put_nowait(args[2]))
    try:
        await db.pool.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", record.id)
        await db.repositories().api_keys.revoke(other.id)
        await db.pool.execute("UPDATE api_keys SET scope = 'operator' WHERE id = $1", record.id)
        await db.pool.execute("DELETE FROM api_keys WHERE id = $1", record.id)

        # Delivered in commit order: three announcements, none of them for the recorded use.
        async with asyncio.timeout(5):
            assert [await announcements.get() for _ in range(3)] == [CHANNEL] * 3
        assert announcements.empty()
    finally:
        await listener.close()


async def test_nothing_is_kept_while_nobody_listens(db: DatabaseManager, lookups: CountedLookups) -> None:
    cache = ApiKeyCache(lookups)
    _, key = await new_key(db)

    for _ in range(3):
        assert await cache.authenticate(key) is not None

    assert lookups.count == 3


async def test_a_lost_listening_connection_turns_the_cache_off_until_it_listens_again(
    db: DatabaseManager, listening: tuple[ApiKeyCache, ApiKeyChanges], lookups: CountedLookups
) -> None:
    cache, changes = listening
    record, key = await new_key(db)
    await cache.authenticate(key)

    await db.pool.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
    )

    async def still_listening() -> bool:
        return cache.is_listening

    await eventually(still_listening, lambda on: not on, timeout=5)
    await db.pool.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", record.id)  # while nobody listens
    assert await cache.authenticate(key) is None

    await changes.run_once()  # listens again
    fresh_record, fresh_key = await new_key(db)
    await cache.authenticate(fresh_key)
    counted = lookups.count
    assert await cache.authenticate(fresh_key) is not None and lookups.count == counted
    assert fresh_record.id != record.id


async def test_a_change_announced_while_a_lookup_runs_is_not_kept(db: DatabaseManager, lookups: CountedLookups) -> None:
    _, key = await new_key(db)

    async def lookup_overtaken_by_a_change(text: str) -> ApiKey | None:
        found = await lookups(text)
        cache.forget_all()  # the announcement arrives before the answer is used
        return found

    cache = ApiKeyCache(lookup_overtaken_by_a_change)
    cache.listening(True)
    await cache.authenticate(key)
    await cache.authenticate(key)

    assert lookups.count == 2
