"""The cost ledger's roll-ups are served by its indexes: over 90 days of calls in two tenants, a task, a tenant's day
and today's spend of every tenant cost what they touch, not the table."""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.database import DatabaseManager
from tests.unit.shared.test_database_history_indexes import plan_of
from tests.unit.shared.test_database_indexes import ListCall, generated_rows

TODAY = datetime.now(UTC).date()
LEDGER = [
    # 90,000 calls over the last 90 days in ten tenants: 10,000 tasks of 3 subtasks, 3 turns each.
    """
    INSERT INTO model_calls (tenant_id, task_id, subtask_id, attempt, agent_id, purpose, model, input_tokens,
                             output_tokens, cost_usd, created_at)
    SELECT CASE WHEN i % 10 = 0 THEN 'default' ELSE 'tenant' || i % 10 END, 'task_' || i,
           'subtask_' || i || '_' || s, 1, 'agent' || i % 50, 'attempt', 'claude-sonnet-5-5', 1000, 100, 0.0045,
           now() - (i * 90 * 24 * 60 / 10000) * interval '1 minute'
    FROM generate_series(1, 10000) AS i, generate_series(0, 2) AS s, generate_series(1, 3) AS turn
    """,
    "VACUUM ANALYZE model_calls",
]


@pytest.fixture(scope="module")
async def ledger(database: DatabaseManager) -> AsyncIterator[DatabaseManager]:
    async with generated_rows(database, LEDGER) as generated:
        yield generated


@pytest.mark.parametrize(
    ("call", "index"),
    [
        (lambda repos: repos.ledger.task_rollup("task_70"), "model_calls_task_id_idx"),
        (lambda repos: repos.ledger.task_calls("task_70"), "model_calls_task_id_idx"),
        (lambda repos: repos.ledger.task_totals(["task_70", "task_80"]), "model_calls_task_id_idx"),
        (lambda repos: repos.ledger.tenant_spend_on(TODAY), "model_calls_tenant_created_at_idx"),
        (lambda repos: repos.ledger.daily_spend(TODAY - timedelta(days=6)), "model_calls_tenant_created_at_idx"),
        (lambda repos: repos.ledger.spend_by_tenant(TODAY, TODAY), "model_calls_created_at_idx"),
    ],
    ids=["task-rollup", "task-calls", "task-totals", "tenant-today", "tenant-week", "every-tenant-today"],
)
async def test_ledger_statement_uses_its_index(ledger: DatabaseManager, call: ListCall, index: str) -> None:
    plan = await plan_of(ledger, call)

    assert index in plan, plan
    assert set(re.findall(r"Seq Scan on (\w+)", plan)) <= {"model_prices"}, plan  # a row per price change: small


async def test_the_task_list_sums_each_task_s_calls_by_the_ledger_s_task_index(ledger: DatabaseManager) -> None:
    plan = await plan_of(ledger, lambda repos: repos.tasks.list_tasks())

    assert "model_calls_task_id_idx" in plan, plan
