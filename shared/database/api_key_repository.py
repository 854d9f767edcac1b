"""API keys of every tenant: created, listed, revoked, and looked up by the hash a request's key has."""

from datetime import timedelta

from shared.api_keys import ApiKey, ApiKeyScope, generate_key, hash_key, new_key_id
from shared.database.executor import Executor
from shared.models import utc_now

KEY_COLUMNS = "id, tenant_id, name, scope, created_at, last_used_at, revoked_at"
# Recording each request's use would be a row write per request (and row-lock contention on a busy key) for a
# column people read in minutes; it is refreshed when it is older than this, so at most once a minute per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyRepository:
    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def create(self, tenant_id: str, name: str, scope: ApiKeyScope) -> tuple[ApiKey, str]:
        """A new key of `tenant_id`: its record and the key itself, which nothing stores."""
        key = generate_key()
        row = await self._executor.fetchrow(
            f"""
            INSERT INTO api_keys (id, tenant_id, name, scope, key_hash) VALUES ($1, $2, $3, $4, $5)
            RETURNING {KEY_COLUMNS}
            """,
            new_key_id(),
            tenant_id,
            name,
            scope.value,
            hash_key(key),
        )
        return ApiKey.model_validate(dict(row)), key

    async def list_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """Every tenant's keys, by tenant then age."""
        rows = await self._executor.fetch(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL OR $1 ORDER BY tenant_id, created_at, id",
            include_revoked,
        )
        return [ApiKey.model_validate(dict(row)) for row in rows]

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key from its next request on; None when no such key exists. Revoking twice keeps the first date."""
        row = await self._executor.fetchrow(
            f"""
            UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
            RETURNING {KEY_COLUMNS}
            """,
            key_id,
        )
        return None if row is None else ApiKey.model_validate(dict(row))

    async def authenticate(self, key: str) -> ApiKey | None:
        """The live (unrevoked) key whose text is `key`, its last use recorded; None for an unknown or revoked key.

        A plain read, one index probe, on nearly every request; the write happens only when the recorded use is
        older than LAST_USED_RESOLUTION (and the UPDATE checks that again, so concurrent requests write it once).
        """
        row = await self._executor.fetchrow(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash_key(key)
        )
        if row is None:
            return None
        found = ApiKey.model_validate(dict(row))
        if found.last_used_at is None or utc_now() - found.last_used_at > LAST_USED_RESOLUTION:
            await self._executor.execute(
                "UPDATE api_keys SET last_used_at = now() "
                "WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                found.id,
                utc_now() - LAST_USED_RESOLUTION,
            )
        return found
