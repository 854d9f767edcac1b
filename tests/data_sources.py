"""Data sources of the tests' own: another tenant's, provisioned like the default one and dropped afterwards."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from shared.config import Settings
from shared.database.data_source import DataSource, provision


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to `url` for the block: the tests' superuser login, or a reader's."""
    connection = await asyncpg.connect(url)
    try:
        yield connection
    finally:
        await connection.close()


async def provisioned_data_source(settings: Settings, name: str) -> DataSource:
    """Database `mats_data_<name>` read by role `mats_reader_<name>`, on the test server, with the demo's data."""
    default = DataSource.of_tenant(settings, settings.tenant_id)
    source = default.with_names(role=f"mats_reader_{name}", database=f"mats_data_{name}")
    await provision(settings.postgres_url, source, connection_limit=5, password=None, sample_data=True)
    return source


def source_admin_url(settings: Settings, source: DataSource) -> str:
    """The test server's superuser login, in the data source's database."""
    return settings.postgres_url.rpartition("/")[0] + f"/{source.database}"


async def drop_data_source(settings: Settings, source: DataSource) -> None:
    async with connected(settings.postgres_url) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{source.database}" WITH (FORCE)')
        await admin.execute(f'DROP ROLE IF EXISTS "{source.role}"')
