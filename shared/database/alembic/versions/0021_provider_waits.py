"""Work waits on the provider instead of failing: a subtask's `not_before` and its provider waits in a row, a result's
`provider_wait`, and a task's planning that waits (`plan_not_before`, `plan_waits`).

A 429, 529, 5xx or unreachable provider no longer spends one of a subtask's attempts: the attempt goes back to the
queue with the same number, to be offered again at `not_before`; its result row says why (`provider_wait`), so
history tells it from a genuine failure. A task whose planning call the provider could not serve is stored without
subtasks and planned at `plan_not_before` by the planning loop, which finds such tasks through a partial index.

Revision ID: 0021_provider_waits
Revises: 0020_deadlines
Create Date: 2026-12-01
"""

from alembic import op

revision = "0021_provider_waits"
down_revision = "0020_deadlines"
branch_labels = None
depends_on = None

PROVIDER_WAIT_SHAPE = """
    provider_wait IS NULL OR (
        jsonb_typeof(provider_wait) = 'object'
        AND provider_wait ->> 'kind' IN ('rate_limited', 'overloaded', 'server_error', 'connection', 'timeout')
    )
"""


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE subtasks
            ADD COLUMN not_before TIMESTAMPTZ,
            ADD COLUMN provider_waits INTEGER NOT NULL DEFAULT 0 CHECK (provider_waits >= 0);
        ALTER TABLE subtask_results ADD COLUMN provider_wait JSONB CHECK ({PROVIDER_WAIT_SHAPE});
        ALTER TABLE tasks
            ADD COLUMN plan_not_before TIMESTAMPTZ,
            ADD COLUMN plan_waits INTEGER NOT NULL DEFAULT 0 CHECK (plan_waits >= 0);
        CREATE INDEX tasks_awaiting_plan_idx ON tasks (tenant_id, plan_not_before) WHERE plan_not_before IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX tasks_awaiting_plan_idx;
        ALTER TABLE tasks DROP COLUMN plan_not_before, DROP COLUMN plan_waits;
        ALTER TABLE subtask_results DROP COLUMN provider_wait;
        ALTER TABLE subtasks DROP COLUMN not_before, DROP COLUMN provider_waits;
        """
    )
