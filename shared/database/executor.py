"""What a repository runs its SQL on, and the one way it opens a transaction there."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

import asyncpg

# A pool (each statement on its own) or one connection (typically inside a caller's transaction).
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection


@asynccontextmanager
async def transaction(executor: Executor) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on the executor: a new one from a pool, a savepoint inside a caller's."""
    if isinstance(executor, asyncpg.Pool):
        async with executor.acquire() as connection, connection.transaction():
            yield connection
    else:
        async with executor.transaction():
            yield executor
