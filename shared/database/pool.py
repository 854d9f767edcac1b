"""The asyncpg connection pool and the manager that hands out repositories over it."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
import structlog

from shared.config import Settings
from shared.database.repositories import Repositories

log = structlog.get_logger(__name__)


def _encode_json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


async def _init_connection(connection: asyncpg.Connection) -> None:
    # orjson: a task's detail is mostly JSON built by PostgreSQL, and the standard library's decoder was a
    # sixth of the orchestrator's CPU per GET /tasks/{id}.
    for json_type in ("json", "jsonb"):
        await connection.set_type_codec(json_type, encoder=_encode_json, decoder=orjson.loads, schema="pg_catalog")


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool: this code never changes session state (no
    session-level SET, LISTEN or advisory lock; `SET LOCAL` ends with its transaction), so asyncpg's default
    reset, a round trip on every release, buys nothing."""


async def create_pool(
    postgres_url: str, *, min_size: int = 2, max_size: int = 20, command_timeout: float = 60.0
) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(
        postgres_url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        init=_init_connection,
        reset=_keep_session,
    )
    return pool


class DatabaseManager:
    """Owns the pool; `repositories()` and `transaction()` give typed access to the tables."""

    def __init__(self, settings: Settings, *, warm: bool = False) -> None:
        """`warm`: open every connection (DB_POOL_MAX_SIZE) at connect, for a process whose bursts use them all (the
        orchestrator): one opened during a burst pays its start-up, type introspection and an empty statement cache
        on the burst's time. asyncpg keeps the connections up to the minimum open however long they idle."""
        self._settings = settings
        self._warm = warm
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("DatabaseManager.connect() has not been awaited")
        return self._pool

    async def connect(self) -> None:
        self._pool = await create_pool(
            self._settings.postgres_url,
            min_size=self._settings.db_pool_max_size if self._warm else self._settings.db_pool_min_size,
            max_size=self._settings.db_pool_max_size,
            command_timeout=self._settings.db_command_timeout_seconds,
        )
        log.info("database_connected", min_size=self._pool.get_min_size(), max_size=self._pool.get_max_size())

    async def disconnect(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def repositories(self) -> Repositories:
        return Repositories(self.pool, self._settings.tenant_id)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Repositories]:
        """Repositories bound to one connection inside one transaction, committed on clean exit."""
        async with self.pool.acquire() as connection, connection.transaction():
            yield Repositories(connection, self._settings.tenant_id)

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")
