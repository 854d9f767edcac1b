"""Fixtures every test can use: settings pointing at the test servers and a migrated, emptied database."""

import os
from collections.abc import AsyncIterator

import asyncpg
import pytest
import structlog
from tenacity import retry, retry_if_exception_type, stop_after_attempt

from shared.config import Settings, load_settings
from shared.database import DatabaseManager, apply_migrations
from shared.database.data_source import set_up as set_up_data_source
from shared.logging import configure_logging

# Tests default to their own database and Redis database number (scripts/test.sh sets the same).
os.environ.setdefault("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/mats_test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# The orchestrator and the agents of a test sign and check assignments with it (shared/fleet_trust.py).
os.environ.setdefault("FLEET_SECRET", "test-fleet-secret-0123456789abcdef0123456789")
if os.environ.get("TEST_AGENT_DATA_URL"):
    os.environ["AGENT_DATA_URL"] = os.environ["TEST_AGENT_DATA_URL"]

# Live-orchestrator fixtures (orchestrator, fleet, test_redis, ...) for the integration, UI and browser tests,
# and the agent's fixtures (agent_settings, agent_redis, ...) for its unit and integration tests.
pytest_plugins = ["tests.orchestrator_harness", "tests.unit.agent.fixtures"]

# Once for the whole run, like a service's entry point: plain console output, plain tracebacks.
configure_logging("INFO", json_output=False)
# Services cache each logger on first use; tests do not, so structlog.testing.capture_logs reaches a module's logger
# even when an earlier test of the run has used it.
structlog.configure(cache_logger_on_first_use=False)

# Not `model_prices`: a price version is the same for every test, and the orchestrators a module shares keep the ids
# of the versions they synced (a test of price changes uses models of its own).
AUDITED_TABLES = (
    "tasks, subtasks, subtask_results, agent_logs, tool_calls, artifacts, context_packs, webhooks, webhook_deliveries, "
    "agents_seen, removed_tasks, model_calls"
)


def per_run_database_url(postgres_url: str) -> str:
    """The configured database name plus this run's PID: parallel test runs never empty each other's tables."""
    base, _, database = postgres_url.rpartition("/")
    name, _, query = database.partition("?")
    return f"{base}/{name}_{os.getpid()}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def settings() -> Settings:
    configured = load_settings(_env_file=None)
    return configured.model_copy(update={"postgres_url": per_run_database_url(configured.postgres_url)})


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[DatabaseManager]:
    await apply_migrations(settings.postgres_url)
    manager = DatabaseManager(settings)
    await manager.connect()
    yield manager
    await manager.disconnect()
    await drop_database(settings.postgres_url)


async def drop_database(postgres_url: str) -> None:
    base, _, database = postgres_url.rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database.partition("?")[0]}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session", autouse=True)
async def data_source(database: DatabaseManager, settings: Settings) -> str:
    """The agents' data source (AGENT_DATA_URL, by default mats_data on the test server), provisioned the way
    scripts/test.sh does, so that a plain `pytest` run has it too. Tests only read it, so runs may share it."""
    assert await set_up_data_source(settings) == 0, "the agents' data source could not be provisioned (see stderr)"
    return settings.data_url_for(settings.tenant_id)


@pytest.fixture
async def db(database: DatabaseManager) -> DatabaseManager:
    """The session's database with every table emptied before the test."""
    await empty_tables(database)
    return database


# TRUNCATE locks its tables one at a time while a live orchestrator's loops may be reading them in another order;
# PostgreSQL then aborts one of the two. The loop retries on its next tick, and so does this.
@retry(retry=retry_if_exception_type(asyncpg.DeadlockDetectedError), stop=stop_after_attempt(5), reraise=True)
async def empty_tables(database: DatabaseManager) -> None:
    await database.pool.execute(f"TRUNCATE {AUDITED_TABLES} RESTART IDENTITY CASCADE")
