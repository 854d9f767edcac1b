"""The agent's connections to its tenant's data source: the only database `database_query` can reach.

No connection is opened until a query needs one, so an agent starts, and its other tools work, while the data source
is missing or down; `database_query` then answers the model with the reason. Every connection is checked once to log
in as a least-privilege reader, and every connection handed back is reset (`DISCARD ALL`: session settings, advisory
locks, prepared statements, temporary tables), so nothing one query leaves behind reaches the next.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import structlog

from agent.tools.errors import ToolError
from shared.config import Settings
from shared.database.data_source import privilege_problem, reader_password

log = structlog.get_logger(__name__)

# A query's own statement_timeout is SET LOCAL per call; this bounds anything else a connection could be left doing.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_SECONDS = 5.0


class PrivilegedLoginError(Exception):
    """The data source's login role can do more than read: refused, whatever the query."""


async def _refuse_privileged_login(connection: asyncpg.Connection) -> None:
    problem = await privilege_problem(connection)
    if problem:
        raise PrivilegedLoginError(problem)


async def _discard_session(connection: asyncpg.Connection) -> None:
    await connection.execute("DISCARD ALL")


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    # Rebuilt from its parts: the password as written may be percent-encoded, so it is not replaced by search.
    address = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{address}").geturl()


class DataSourcePool:
    def __init__(self, settings: Settings) -> None:
        self.url = settings.data_url_for(settings.tenant_id)
        self._password = reader_password(settings, self.url)
        self._max_size = settings.agent_concurrency + 1
        self._command_timeout = settings.agent_query_timeout_ms / 1000 + 5
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        # min_size=0: creating the pool opens no connection, so it cannot fail on an absent data source.
        self._pool = await asyncpg.create_pool(
            self.url,
            password=self._password,
            min_size=0,
            max_size=self._max_size,
            command_timeout=self._command_timeout,
            timeout=CONNECT_TIMEOUT_SECONDS,
            # Unnamed statements only: the model's queries are one-offs, and DISCARD ALL would drop a cache anyway.
            statement_cache_size=0,
            server_settings={
                "default_transaction_read_only": "on",
                "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_TIMEOUT_MS),
            },
            init=_refuse_privileged_login,
            reset=_discard_session,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A reader's connection, or a ToolError saying why the data source cannot be reached."""
        if self._pool is None:
            raise RuntimeError("DataSourcePool.open() has not been awaited")
        try:
            connection = await self._pool.acquire()
        except (OSError, asyncpg.PostgresError, PrivilegedLoginError) as error:
            log.warning("data_source_unavailable", url=redacted(self.url), error=str(error))
            raise ToolError(
                f"the data source is not available ({error}); this is a deployment problem, tell the operator "
                "(docs/security.md says how to set it up)"
            ) from None
        try:
            yield connection
        finally:
            await self._pool.release(connection)
