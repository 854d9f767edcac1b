"""API keys in PostgreSQL: stored only as their hash, found by the key's text while live, revoked at once."""

import hashlib
import uuid

import pytest

from shared.api_keys import KEY_PREFIX, ApiKeyScope
from shared.database import DatabaseManager
from shared.database.api_key_repository import ApiKeyRepository


@pytest.fixture
def keys(db: DatabaseManager) -> ApiKeyRepository:
    return db.repositories().api_keys


@pytest.fixture
def tenant() -> str:
    """The keys table outlives each test's emptying: every test works in a tenant of its own."""
    return f"keys-{uuid.uuid4().hex[:10]}"


async def test_a_key_is_random_recognisable_and_stored_only_as_its_sha256(
    keys: ApiKeyRepository, db: DatabaseManager, tenant: str
) -> None:
    record, key = await keys.create(tenant, "dashboard", ApiKeyScope.OPERATOR)
    _, another = await keys.create(tenant, "dashboard", ApiKeyScope.OPERATOR)

    assert key.startswith(KEY_PREFIX) and len(key) >= len(KEY_PREFIX) + 43 and key != another
    stored = await db.pool.fetchrow("SELECT * FROM api_keys WHERE id = $1", record.id)
    assert stored["key_hash"] == hashlib.sha256(key.encode()).digest()
    assert key not in str(dict(stored))
    assert (record.tenant_id, record.name, record.scope, record.last_used_at) == (
        tenant,
        "dashboard",
        ApiKeyScope.OPERATOR,
        None,
    )


async def test_authenticate_finds_a_live_key_by_its_text_only(keys: ApiKeyRepository, tenant: str) -> None:
    record, key = await keys.create(tenant, "", ApiKeyScope.CLIENT)

    found = await keys.authenticate(key)

    assert found is not None and (found.id, found.scope) == (record.id, ApiKeyScope.CLIENT)
    assert await keys.authenticate(key + "x") is None
    assert await keys.authenticate(KEY_PREFIX + "unknown") is None


async def test_last_use_is_recorded_at_most_once_a_minute(
    keys: ApiKeyRepository, db: DatabaseManager, tenant: str
) -> None:
    record, key = await keys.create(tenant, "", ApiKeyScope.CLIENT)
    last_used = "SELECT last_used_at FROM api_keys WHERE id = $1"

    await keys.authenticate(key)
    first = await db.pool.fetchval(last_used, record.id)
    await keys.authenticate(key)
    assert first is not None and await db.pool.fetchval(last_used, record.id) == first

    await db.pool.execute("UPDATE api_keys SET last_used_at = now() - interval '61 seconds' WHERE id = $1", record.id)
    aged = await db.pool.fetchval(last_used, record.id)
    await keys.authenticate(key)
    assert await db.pool.fetchval(last_used, record.id) > aged


async def test_a_revoked_key_is_found_no_more_and_listed_only_on_request(keys: ApiKeyRepository, tenant: str) -> None:
    kept, _ = await keys.create(tenant, "kept", ApiKeyScope.CLIENT)
    revoked, key = await keys.create(tenant, "revoked", ApiKeyScope.OPERATOR)

    first = await keys.revoke(revoked.id)
    again = await keys.revoke(revoked.id)

    assert first is not None and again is not None and first.revoked_at == again.revoked_at
    assert await keys.authenticate(key) is None
    assert await keys.revoke("key_unknown") is None
    assert [k.id for k in await keys.list_keys() if k.tenant_id == tenant] == [kept.id]
    listed = [k for k in await keys.list_keys(include_revoked=True) if k.tenant_id == tenant]
    assert [(k.id, k.revoked_at is not None) for k in listed] == [(kept.id, False), (revoked.id, True)]
