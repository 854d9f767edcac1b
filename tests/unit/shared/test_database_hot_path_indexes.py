"""The statements every subtask goes through (its claim, its result batch, its task's ending) cost what they touch,
not the history: over ~60,000 stored results each is served by indexes, and the claim's look-up of dependency
outputs stays an index probe even in a plan made while subtask_results was empty (a connection keeps such a
generic plan for its prepared statement, so a plan that scans would scan more with every stored result)."""

import re
from collections.abc import AsyncIterator

import asyncpg
import pytest

from shared.database import DatabaseManager, Repositories
from tests.unit.shared.test_database_history_indexes import HISTORY
from tests.unit.shared.test_database_indexes import ListCall, StatementRecorder, generated_rows

GROWING_TABLES = {"tasks", "subtasks", "subtask_results", "model_calls", "agent_logs"}


@pytest.fixture(scope="module")
async def history(database: DatabaseManager) -> AsyncIterator[DatabaseManager]:
    async with generated_rows(database, HISTORY) as generated:
        yield generated


async def statement_of(call: ListCall) -> tuple[str, tuple[object, ...]]:
    recorder = StatementRecorder()
    await call(Repositories(recorder, "default"))
    [statement] = recorder.statements
    return statement


@pytest.mark.parametrize(
    "call",
    [
        lambda repos: repos.subtasks.claim_for_delivery([("subtask_7_1", 2, "agent1"), ("subtask_8_2", 2, "agent2")]),
        lambda repos: repos.subtasks.lock_tasks_of(["subtask_7_1", "subtask_8_2"]),
        lambda repos: repos.subtasks.complete_attempts_and_queue_ready([("subtask_7_1", 2, "token")]),
        lambda repos: repos.subtasks.queue_ready_in(["task_7", "task_8"]),
        lambda repos: repos.subtasks.count_by_status_in(["task_7", "task_8"]),
        lambda repos: repos.results.recorded(["result_7_1_2"]),
        lambda repos: repos.budgets.budgets_of(["task_7"]),
        lambda repos: repos.tasks.get_task_details(["task_7"], applied_only=True),
    ],
    ids=["claim", "lock", "complete-and-queue", "queue-ready", "count", "recorded", "budgets", "task-details"],
)
async def test_hot_statement_reads_no_growing_table_whole(history: DatabaseManager, call: ListCall) -> None:
    query, args = await statement_of(call)
    plan = "\n".join(row[0] for row in await history.pool.fetch(f"EXPLAIN {query}", *args))

    assert not set(re.findall(r"Seq Scan on (\w+)", plan)) & GROWING_TABLES, plan


async def literal(connection: asyncpg.Connection, type_oid: int, value: object) -> str:
    """`value` as an SQL literal of the type: EXPLAIN EXECUTE takes no parameters."""
    type_name = await connection.fetchval("SELECT format_type($1, NULL)", type_oid)
    quoted = await connection.fetchval(f"SELECT quote_nullable(($1::{type_name})::text)", value)
    return f"{quoted}::{type_name}"


async def generic_plan(db: DatabaseManager, call: ListCall) -> str:
    """The plan a connection keeps for the statement `call` sends once it stops planning it for each call's values:
    made without them, from what the server knows of the tables now."""
    query, args = await statement_of(call)
    async with db.pool.acquire() as connection:
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        try:
            await connection.execute(f"PREPARE hot AS {query}")
            literals = [
                await literal(connection, parameter.oid, value)
                for parameter, value in zip((await connection.prepare(query)).get_parameters(), args, strict=True)
            ]
            rows = await connection.fetch(f"EXPLAIN EXECUTE hot({', '.join(literals)})")
        finally:
            await connection.execute("DEALLOCATE hot; RESET plan_cache_mode")
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(
    ("call", "scanned"),
    [
        # Marking the claimed subtasks' tasks in progress still reads tasks whole in such a plan (an UPDATE's target
        # is not reached through a lateral probe); analyzed, it goes by the primary key (above).
        (lambda repos: repos.subtasks.claim_for_delivery([("subtask_1", 1, "agent1")]), {"tasks"}),
        (lambda repos: repos.subtasks.lock_tasks_of(["subtask_1", "subtask_2"]), set()),
        (lambda repos: repos.subtasks.complete_attempts_and_queue_ready([("subtask_1", 1, "token")]), set()),
        (lambda repos: repos.subtasks.count_by_status_in(["task_1", "task_2"]), set()),
        (lambda repos: repos.results.recorded(["result_1", "result_2"]), set()),
    ],
    ids=["claim", "lock", "complete-and-queue", "count", "recorded"],
)
async def test_hot_statement_probes_by_key_in_a_plan_made_on_empty_tables(
    db: DatabaseManager, call: ListCall, scanned: set[str]
) -> None:
    plan = await generic_plan(db, call)

    assert set(re.findall(r"Seq Scan on (\w+)", plan)) & GROWING_TABLES <= scanned, plan
