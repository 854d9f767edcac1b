"""The dashboard's and the scheduler's list queries are served by indexes, not by reading whole tables.

Each case captures the exact statement a repository method sends, then asks the real server for its plan
over a few thousand generated rows. Nothing is timed: the plan names the indexes it uses, or scans.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.database import DatabaseManager, Repositories
from shared.database.task_search import TaskSearch
from shared.models import TaskStatus
from tests.conftest import AUDITED_TABLES

HISTORY = [
    # 5,000 tasks from 250 users in two tenants, one in a hundred failed, a minute apart.
    """
    INSERT INTO tasks (id, user_id, description, status, created_at, updated_at, tenant_id)
    SELECT 'task_' || i, 'user_' || i % 250, 'Generated task number ' || i,
           CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'completed' END,
           now() - i * interval '1 minute', now() - i * interval '1 minute',
           CASE WHEN i % 3 = 0 THEN 'other' ELSE 'default' END
    FROM generate_series(1, 5000) AS i
    """,
    # Three subtasks each; a handful still queued or running.
    """
    INSERT INTO subtasks (id, task_id, position, description, required_capabilities, status, attempt_count,
                          queued_at, tenant_id)
    SELECT 'subtask_' || i || '_' || p, 'task_' || i, p, 'Step ' || p, '{DATA_ANALYSIS}',
           CASE WHEN p = 0 AND i % 1000 = 0 THEN 'queued' WHEN p = 0 AND i % 1000 = 1 THEN 'running'
                ELSE 'completed' END,
           1, now(), CASE WHEN i % 3 = 0 THEN 'other' ELSE 'default' END
    FROM generate_series(1, 5000) AS i, generate_series(0, 2) AS p
    """,
    """
    INSERT INTO subtask_results (result_id, subtask_id, task_id, agent_id, attempt, status, output, execution_time)
    SELECT 'result_' || i, 'subtask_' || i || '_0', 'task_' || i, 'agent' || i % 250, 1, 'completed', 'done', 1.5
    FROM generate_series(1, 5000) AS i
    """,
    """
    INSERT INTO agent_logs (agent_id, task_id, level, message, created_at)
    SELECT 'agent' || i % 250, 'task_' || i % 5000, 'INFO', 'entry ' || i, now() - i * interval '1 second'
    FROM generate_series(1, 5000) AS i
    """,
    """
    INSERT INTO tool_calls (agent_id, task_id, tool_name, created_at)
    SELECT 'agent' || i % 250, 'task_' || i % 5000, 'read_file', now() - i * interval '1 second'
    FROM generate_series(1, 5000) AS i
    """,
    "ANALYZE tasks, subtasks, subtask_results, agent_logs, tool_calls",
]


@contextlib.asynccontextmanager
async def generated_rows(database: DatabaseManager, statements: Sequence[str]) -> AsyncIterator[DatabaseManager]:
    """Rows written once for a module's read-only tests and removed afterwards."""
    await database.pool.execute(f"TRUNCATE {AUDITED_TABLES} RESTART IDENTITY CASCADE")
    for statement in statements:
        await database.pool.execute(statement)
    yield database
    await database.pool.execute(f"TRUNCATE {AUDITED_TABLES} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="module")
async def history(database: DatabaseManager) -> AsyncIterator[DatabaseManager]:
    async with generated_rows(database, HISTORY) as generated:
        yield generated


class StatementRecorder:
    """Takes the place of the pool to capture what a repository method sends; it answers with no rows."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        self.statements.append((query, args))
        return []

    async def fetchval(self, query: str, *args: Any) -> int:
        self.statements.append((query, args))
        return 0


ListCall = Callable[[Repositories], Awaitable[Any]]


async def plan_of(db: DatabaseManager, list_call: ListCall) -> str:
    """The server's plan for the one statement `list_call` sends, with the arguments it sends."""
    recorder = StatementRecorder()
    await list_call(Repositories(recorder, "default"))
    [(query, args)] = recorder.statements
    rows = await db.pool.fetch(f"EXPLAIN {query}", *args)
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(
    ("list_call", "indexes"),
    [
        (
            lambda repos: repos.tasks.list_tasks(),
            ["tasks_tenant_created_at_idx", "subtasks_task_id_idx", "model_calls_task_id_idx"],
        ),
        (
            lambda repos: repos.tasks.list_tasks(TaskSearch(status=TaskStatus.FAILED)),
            ["tasks_tenant_status_created_at_idx", "subtasks_task_id_idx"],
        ),
        (
            lambda repos: repos.tasks.list_tasks(TaskSearch(user_id="user_7")),
            ["tasks_tenant_user_id_created_at_idx", "subtasks_task_id_idx"],
        ),
        (
            lambda repos: repos.tasks.count_tasks(TaskSearch(status=TaskStatus.FAILED)),
            ["tasks_tenant_status_created_at_idx"],
        ),
        (
            lambda repos: repos.tasks.count_tasks(TaskSearch(created_after=datetime.now(UTC) - timedelta(hours=1))),
            ["tasks_tenant_created_at_idx"],
        ),
        (lambda repos: repos.subtasks.list_queued(), ["subtasks_live_status_idx"]),
        # Both partial indexes over running subtasks serve; the planner may pick either.
        (lambda repos: repos.subtasks.list_running(), [("subtasks_live_status_idx", "subtasks_assigned_agent_idx")]),
        (lambda repos: repos.subtasks.count_queued(), ["subtasks_live_status_idx"]),
        (lambda repos: repos.results.get_subtask_results("task_7"), ["subtask_results_task_id_idx"]),
        (lambda repos: repos.audit.list_agent_logs(), ["agent_logs_tenant_created_at_idx"]),
        (lambda repos: repos.audit.list_agent_logs(agent_id="agent7"), ["agent_logs_tenant_agent_id_created_at_idx"]),
        (lambda repos: repos.audit.list_agent_logs(task_id="task_7"), ["agent_logs_task_id_idx"]),
        (
            lambda repos: repos.audit.list_agent_logs(subtask_id="subtask_7_0"),
            ["agent_logs_tenant_subtask_created_at_idx"],
        ),
        (lambda repos: repos.audit.list_agent_logs(trace_id="trace_7"), ["agent_logs_tenant_trace_created_at_idx"]),
        (lambda repos: repos.audit.list_tool_calls("task_7"), ["tool_calls_task_id_idx"]),
        (
            lambda repos: repos.retention.expired_task_ids(datetime.now(UTC) - timedelta(days=2), 100),
            ["tasks_tenant_ended_idx"],
        ),
        (lambda repos: repos.isolation.latest_tool_calls(100), ["tool_calls_tenant_created_at_idx"]),
    ],
    ids=[
        "tasks-newest",
        "tasks-by-status",
        "tasks-by-user",
        "tasks-count-by-status",
        "tasks-count-since",
        "queued-subtasks",
        "running-subtasks",
        "queued-count",
        "results-of-task",
        "logs-newest",
        "logs-by-agent",
        "logs-by-task",
        "logs-by-subtask",
        "logs-by-trace",
        "tool-calls-of-task",
        "expired-tasks",
        "isolation-newest-tool-calls",
    ],
)
async def test_list_query_uses_its_indexes(
    history: DatabaseManager, list_call: ListCall, indexes: list[str | tuple[str, ...]]
) -> None:
    plan = await plan_of(history, list_call)

    alternatives = [index if isinstance(index, tuple) else (index,) for index in indexes]
    assert [names for names in alternatives if not any(name in plan for name in names)] == [], plan
    assert "Seq Scan" not in plan, plan
