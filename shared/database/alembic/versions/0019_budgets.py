"""Budgets that pause, not kill: a task may carry `max_cost_usd`, and a task over its budget (or over its tenant's
daily budget) is `paused` until it is resumed.

- `tasks.max_cost_usd`: what the task may spend in USD (decomposition and every attempt); null: no budget.
- `tasks.status` takes `paused` (not an ending: its running attempts finish, nothing queued is offered).
- `tasks (tenant_id) WHERE status = 'paused'`: the loop that resumes a tenant's paused tasks when the UTC day turns.

Revision ID: 0019_budgets
Revises: 0018_cost_ledger
Create Date: 2026-12-02
"""

from alembic import op

revision = "0019_budgets"
down_revision = "0018_cost_ledger"
branch_labels = None
depends_on = None

STATUSES = "'pending', 'in_progress', 'completed', 'failed', 'cancelled'"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE tasks DROP CONSTRAINT tasks_status_check,
            ADD CONSTRAINT tasks_status_check CHECK (status IN ({STATUSES}, 'paused')),
            ADD COLUMN max_cost_usd DOUBLE PRECISION CHECK (max_cost_usd > 0 AND max_cost_usd <= 1000000);
        CREATE INDEX tasks_tenant_paused_idx ON tasks (tenant_id) WHERE status = 'paused';
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DROP INDEX tasks_tenant_paused_idx;
        UPDATE tasks SET status = 'in_progress' WHERE status = 'paused';
        ALTER TABLE tasks DROP COLUMN max_cost_usd, DROP CONSTRAINT tasks_status_check,
            ADD CONSTRAINT tasks_status_check CHECK (status IN ({STATUSES}));
        """
    )
