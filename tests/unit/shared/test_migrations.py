"""Migrations on brand-new databases: they build the schema, change nothing the second time, and tolerate company."""

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from alembic import command

from shared.config import Settings
from shared.database import apply_migrations, ensure_database_exists
from shared.database.migrations import alembic_config

REPO_ROOT = Path(__file__).resolve().parents[3]
TABLES = [
    "agent_logs",
    "agents_seen",
    "alembic_version",
    "api_keys",
    "artifacts",
    "context_pack_files",
    "context_packs",
    "model_calls",
    "model_prices",
    "removed_tasks",
    "subtask_results",
    "subtasks",
    "tasks",
    "tool_calls",
    "webhook_deliveries",
    "webhooks",
]
HEAD_REVISION = "0021_provider_waits"

# Everything a migration could change: tables, columns, constraints, indexes and the recorded revision.
SCHEMA_QUERIES = [
    """
    SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns
    WHERE table_schema = 'public' ORDER BY table_name, column_name
    """,
    """
    SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2
    """,
    "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
    "SELECT version_num FROM alembic_version",
]


def database_url(settings: Settings, name: str) -> str:
    return f"{settings.postgres_url.rsplit('/', 1)[0]}/{name}"


async def admin_execute(settings: Settings, statement: str) -> None:
    """Run one statement on the server's `postgres` database (where databases are created and dropped)."""
    admin = await asyncpg.connect(database_url(settings, "postgres"))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@pytest.fixture
async def missing_database(settings: Settings) -> AsyncIterator[str]:
    """The URL of a database that does not exist yet; dropped afterwards whoever created it, even on failure."""
    name = f"mats_mig_{uuid.uuid4().hex[:12]}"
    yield database_url(settings, name)
    await admin_execute(settings, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def create_database(settings: Settings, url: str) -> None:
    await admin_execute(settings, f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')


@pytest.fixture
async def empty_database(settings: Settings, missing_database: str) -> str:
    """The URL of a brand-new database without any table."""
    await create_database(settings, missing_database)
    return missing_database


async def fetch_all(url: str, *queries: str) -> list[list[asyncpg.Record]]:
    connection = await asyncpg.connect(url)
    try:
        return [await connection.fetch(query) for query in queries]
    finally:
        await connection.close()


async def table_names(url: str) -> list[str]:
    [rows] = await fetch_all(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    return [row["tablename"] for row in rows]


async def test_migrations_build_the_schema_on_an_empty_database(empty_database: str) -> None:
    assert await table_names(empty_database) == []

    await apply_migrations(empty_database)

    assert await table_names(empty_database) == TABLES
    [revisions] = await fetch_all(empty_database, "SELECT version_num FROM alembic_version")
    assert [row["version_num"] for row in revisions] == [HEAD_REVISION]


async def test_migrating_again_changes_nothing(empty_database: str) -> None:
    await apply_migrations(empty_database)
    connection = await asyncpg.connect(empty_database)
    try:
        await connection.execute("INSERT INTO tasks (id, description) VALUES ('task_kept', 'A task that must stay')")
    finally:
        await connection.close()
    schema_before = await fetch_all(empty_database, *SCHEMA_QUERIES)

    await apply_migrations(empty_database)

    assert await fetch_all(empty_database, *SCHEMA_QUERIES) == schema_before
    [kept] = await fetch_all(empty_database, "SELECT id FROM tasks")
    assert [row["id"] for row in kept] == ["task_kept"]


async def test_tasks_stored_before_tenants_existed_belong_to_the_default_tenant(empty_database: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(empty_database), "0001")
    connection = await asyncpg.connect(empty_database)
    try:
        await connection.execute("INSERT INTO tasks (id, description) VALUES ('task_old', 'A task from before')")
        await apply_migrations(empty_database)
        assert await connection.fetchval("SELECT tenant_id FROM tasks WHERE id = 'task_old'") == "default"
    finally:
        await connection.close()


async def test_results_stored_before_0015_keep_their_tenant_and_their_agents_a_record(empty_database: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(empty_database), "0014")
    connection = await asyncpg.connect(empty_database)
    try:
        await connection.execute(
            """
            INSERT INTO tasks (id, description, tenant_id) VALUES ('task_old', 'A task from before', 'acme');
            INSERT INTO subtasks (id, task_id, position, description, required_capabilities, tenant_id)
            VALUES ('subtask_old', 'task_old', 0, 'A step', '{DATA_ANALYSIS}', 'acme');
            INSERT INTO subtask_results (result_id, subtask_id, task_id, agent_id, attempt, status, output,
                                         execution_time, applied, created_at)
            VALUES ('result_old', 'subtask_old', 'task_old', 'agent7', 1, 'completed', 'done', 1.5, true,
                    '2026-11-01T10:00:00Z');
            """
        )
        await apply_migrations(empty_database)
        assert await connection.fetchval("SELECT tenant_id FROM subtask_results") == "acme"
        assert [
            tuple(row) for row in await connection.fetch("SELECT tenant_id, agent_id, first_seen FROM agents_seen")
        ] == [("acme", "agent7", datetime(2026, 11, 1, 10, tzinfo=UTC))]
    finally:
        await connection.close()


async def test_spend_recorded_before_the_ledger_is_carried_into_it(empty_database: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(empty_database), "0017")
    connection = await asyncpg.connect(empty_database)
    try:
        await connection.execute(
            """
            INSERT INTO tasks (id, description, tenant_id, decomposition, created_at, updated_at) VALUES
                ('task_old', 'A task from before', 'acme',
                 '{"model": "claude-sonnet-5-5", "cost_usd": 0.006,
                   "token_usage": {"input_tokens": 1000, "output_tokens": 200}}', '2026-11-01T09:00:00Z',
                 '2026-11-01T09:00:00Z'),
                ('task_unplanned', 'A task with no recorded plan', 'acme', NULL, now(), now());
            INSERT INTO subtasks (id, task_id, position, description, required_capabilities, tenant_id)
            VALUES ('subtask_old', 'task_old', 0, 'A step', '{DATA_ANALYSIS}', 'acme');
            INSERT INTO subtask_results (result_id, subtask_id, task_id, agent_id, attempt, status, output, error,
                                         execution_time, input_tokens, output_tokens, cost_usd, applied, created_at,
                                         tenant_id)
            VALUES ('result_paid', 'subtask_old', 'task_old', 'agent7', 1, 'failed', NULL, 'boom', 1.5, 500, 50, 0.25,
                    true, '2026-11-01T10:00:00Z', 'acme'),
                   ('result_free', 'subtask_old', 'task_old', 'agent7', 2, 'completed', 'done', NULL, 0.1, 0, 0, 0,
                    true, '2026-11-01T10:05:00Z', 'acme');
            """
        )
        await apply_migrations(empty_database)
        rows = await connection.fetch(
            """
            SELECT tenant_id, task_id, subtask_id, attempt, agent_id, purpose, model, input_tokens, output_tokens,
                   cost_usd::float8, price_id, created_at
            FROM model_calls ORDER BY created_at
            """
        )
    finally:
        await connection.close()

    assert [tuple(row) for row in rows] == [
        (
            "acme",
            "task_old",
            None,
            None,
            None,
            "decomposition",
            "claude-sonnet-5-5",
            1000,
            200,
            0.006,
            None,
            datetime(2026, 11, 1, 9, tzinfo=UTC),
        ),
        (
            "acme",
            "task_old",
            "subtask_old",
            1,
            "agent7",
            "attempt",
            "unknown",
            500,
            50,
            0.25,
            None,
            datetime(2026, 11, 1, 10, tzinfo=UTC),
        ),
    ]  # the free attempt and the unplanned task spent nothing: no rows


@pytest.mark.parametrize("created_first", [True, False], ids=["empty-database", "missing-database"])
async def test_concurrent_migrations_both_succeed(
    settings: Settings, missing_database: str, created_first: bool
) -> None:
    if created_first:
        await create_database(settings, missing_database)

    await asyncio.gather(apply_migrations(missing_database), apply_migrations(missing_database))

    assert await table_names(missing_database) == TABLES
    [revisions] = await fetch_all(missing_database, "SELECT version_num FROM alembic_version")
    assert [row["version_num"] for row in revisions] == [HEAD_REVISION]


async def migrate_in_a_process(url: str, workdir: Path) -> int:
    """Run the pre-start step (`python -m shared.database.migrations`) as a service would; its exit code."""
    environment = {**os.environ, "POSTGRES_URL": url, "PYTHONPATH": str(REPO_ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shared.database.migrations", cwd=workdir, env=environment
    )
    return await process.wait()


async def test_services_migrating_at_once_from_separate_processes_all_succeed(
    empty_database: str, tmp_path: Path
) -> None:
    # Separate processes share no Python state: only the advisory lock keeps their upgrades apart.
    exit_codes = await asyncio.gather(*(migrate_in_a_process(empty_database, tmp_path) for _ in range(3)))

    assert exit_codes == [0, 0, 0]
    assert await table_names(empty_database) == TABLES


async def test_ensure_database_exists_creates_a_missing_database(missing_database: str) -> None:
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(missing_database)

    await ensure_database_exists(missing_database)
    await ensure_database_exists(missing_database)  # and leaves an existing one alone

    assert await table_names(missing_database) == []


async def test_stored_free_text_task_types_become_task_types_and_invalid_ones_are_refused(empty_database: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(empty_database), "0006")
    connection = await asyncpg.connect(empty_database)
    try:
        await connection.execute("INSERT INTO tasks (id, description) VALUES ('task_old', 'A task from before')")
        labels = {"s_free": "database_query", "s_lower": "research", "s_mixed": " Ingest ", "s_default": "general"}
        for position, (subtask_id, label) in enumerate(labels.items()):
            await connection.execute(
                "INSERT INTO subtasks (id, task_id, position, description, required_capabilities, task_type) "
                "VALUES ($1, 'task_old', $2, 'a step', '{DATA_ANALYSIS}', $3)",
                subtask_id,
                position,
                label,
            )

        await apply_migrations(empty_database)

        rows = await connection.fetch("SELECT id, task_type FROM subtasks")
        assert {row["id"]: row["task_type"] for row in rows} == {
            "s_free": "GENERAL",
            "s_lower": "RESEARCH",
            "s_mixed": "INGEST",
            "s_default": "GENERAL",
        }
        assert await connection.fetchval("SELECT task_type FROM tasks WHERE id = 'task_old'") == "GENERAL"
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute("UPDATE subtasks SET task_type = 'database_query' WHERE id = 's_free'")
    finally:
        await connection.close()


async def test_two_tenants_sightings_of_one_agent_id_are_kept_apart_and_merged_by_a_downgrade(
    empty_database: str,
) -> None:
    await apply_migrations(empty_database)
    connection = await asyncpg.connect(empty_database)
    try:
        await connection.execute(
            """
            INSERT INTO agents_seen (tenant_id, agent_id, capabilities, first_seen, last_seen) VALUES
                ('acme', 'agent1', '{DATA_ANALYSIS}', '2026-11-01T10:00:00Z', '2026-11-01T11:00:00Z'),
                ('globex', 'agent1', '{WEB_SCRAPING}', '2026-11-01T09:00:00Z', '2026-11-01T10:00:00Z');
            """
        )
        await asyncio.to_thread(command.downgrade, alembic_config(empty_database), "0016")
        merged = await connection.fetch("SELECT agent_id, capabilities, first_seen, last_seen FROM agents_seen")
    finally:
        await connection.close()

    assert [tuple(row) for row in merged] == [
        ("agent1", ["DATA_ANALYSIS"], datetime(2026, 11, 1, 9, tzinfo=UTC), datetime(2026, 11, 1, 11, tzinfo=UTC))
    ]
