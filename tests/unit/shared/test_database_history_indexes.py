"""The history's statements are served by indexes: over ~60,000 results, a window, a task, an agent cost what they
touch, not the tables. Each case asks the real server for the plan of the exact statement a repository sends."""

import re
from collections.abc import AsyncIterator

import pytest

from shared.database import DatabaseManager, Repositories
from tests.unit.shared.test_database_indexes import ListCall, StatementRecorder, generated_rows

HISTORY = [
    # 10,000 tasks in two tenants, one ending every minute over the last week; a few cancelled.
    """
    INSERT INTO tasks (id, description, status, created_at, updated_at, tenant_id)
    SELECT 'task_' || i, 'Generated task number ' || i,
           CASE WHEN i % 100 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'cancelled' ELSE 'completed' END,
           now() - i * interval '1 minute' - interval '30 seconds', now() - i * interval '1 minute',
           CASE WHEN i % 3 = 0 THEN 'other' ELSE 'default' END
    FROM generate_series(1, 10000) AS i
    """,
    # Three subtasks each; a handful still queued or running, those of cancelled tasks cancelled.
    """
    INSERT INTO subtasks (id, task_id, position, description, required_capabilities, status, attempt_count,
                          assigned_agent, queued_at, assigned_at, assignment_latency_ms, created_at, updated_at,
                          tenant_id)
    SELECT 'subtask_' || i || '_' || p, 'task_' || i, p, 'Step ' || p, '{DATA_ANALYSIS}',
           CASE WHEN p = 0 AND i % 1000 = 0 THEN 'queued' WHEN p = 0 AND i % 1000 = 1 THEN 'running'
                WHEN i % 97 = 0 THEN 'cancelled' ELSE 'completed' END,
           2, 'agent' || i % 50, now() - i * interval '1 minute' - interval '20 seconds',
           now() - i * interval '1 minute' - interval '19 seconds', 1000,
           now() - i * interval '1 minute' - interval '30 seconds', now() - i * interval '1 minute',
           CASE WHEN i % 3 = 0 THEN 'other' ELSE 'default' END
    FROM generate_series(1, 10000) AS i, generate_series(0, 2) AS p
    """,
    # Two attempts of each subtask, the first failed: 60,000 results from 50 agents.
    """
    INSERT INTO subtask_results (result_id, subtask_id, task_id, agent_id, attempt, status, output, error,
                                 execution_time, cost_usd, applied, queued_at, assigned_at, created_at, tenant_id)
    SELECT 'result_' || i || '_' || p || '_' || a, 'subtask_' || i || '_' || p, 'task_' || i, 'agent' || (i + a) % 50,
           a, CASE WHEN a = 1 THEN 'failed' ELSE 'completed' END, CASE WHEN a = 2 THEN 'done' END,
           CASE WHEN a = 1 THEN 'it broke' END, 1.5, 0.001, true,
           now() - i * interval '1 minute' - interval '20 seconds',
           now() - i * interval '1 minute' - interval '19 seconds',
           now() - i * interval '1 minute' - (3 - a) * interval '5 seconds',
           CASE WHEN i % 3 = 0 THEN 'other' ELSE 'default' END
    FROM generate_series(1, 10000) AS i, generate_series(0, 2) AS p, generate_series(1, 2) AS a
    """,
    """
    INSERT INTO agents_seen (agent_id, capabilities, first_seen, last_seen)
    SELECT 'agent' || i, '{DATA_ANALYSIS}', now() - interval '8 days', now() - i * interval '1 hour'
    FROM generate_series(0, 49) AS i
    """,
    "VACUUM ANALYZE tasks, subtasks, subtask_results, agents_seen",
]
# Small by nature (one row per agent ever seen): read whole.
SMALL_TABLES = ("agents_seen",)


@pytest.fixture(scope="module")
async def history(database: DatabaseManager) -> AsyncIterator[DatabaseManager]:
    async with generated_rows(database, HISTORY) as generated:
        yield generated


async def plan_of(db: DatabaseManager, call: ListCall) -> str:
    """The server's plan for the first statement `call` sends, with its arguments."""
    recorder = StatementRecorder()
    await call(Repositories(recorder, "default"))
    query, args = recorder.statements[0]
    rows = await db.pool.fetch(f"EXPLAIN {query}", *args)
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(
    ("call", "indexes"),
    [
        (
            lambda repos: repos.history.minute_buckets(60),
            [
                "subtask_results_tenant_created_at_idx",
                "tasks_tenant_ended_idx",
                "tasks_tenant_created_at_idx",
                "subtasks_live_status_idx",
                "subtasks_tenant_cancelled_idx",
            ],
        ),
        (lambda repos: repos.history.minute_buckets(1440), ["subtask_results_tenant_created_at_idx"]),
        (
            lambda repos: repos.attempts.task_timeline("task_7"),
            ["tasks_pkey", "subtask_results_task_id_idx", "subtasks_task_id_idx"],
        ),
        (
            lambda repos: repos.attempts.agent_attempts("agent7", 50),
            ["subtask_results_tenant_agent_idx", "subtasks_assigned_agent_idx"],
        ),
        (
            lambda repos: repos.agent_records.agent_histories(["agent7"]),
            ["subtask_results_tenant_agent_idx"],
        ),
    ],
    ids=["history-hour", "history-day", "task-timeline", "agent-attempts", "agent-histories"],
)
async def test_history_statement_uses_its_indexes(history: DatabaseManager, call: ListCall, indexes: list[str]) -> None:
    plan = await plan_of(history, call)

    assert [index for index in indexes if index not in plan] == [], plan
    scanned = set(re.findall(r"Seq Scan on (\w+)", plan))
    assert scanned <= set(SMALL_TABLES), plan
