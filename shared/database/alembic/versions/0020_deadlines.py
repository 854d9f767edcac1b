"""Tasks may carry a deadline: `tasks.deadline_at`, and a partial index for the loop that fails the tasks past it.

The index holds only the tasks that have a deadline and have not ended, by tenant, so the watch reads a handful of
rows however many tasks have ended.

Revision ID: 0020_deadlines
Revises: 0019_budgets
Create Date: 2026-12-02
"""

from alembic import op

revision = "0020_deadlines"
down_revision = "0019_budgets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE tasks ADD COLUMN deadline_at TIMESTAMPTZ;
        CREATE INDEX tasks_deadline_watch ON tasks (tenant_id, deadline_at)
            WHERE deadline_at IS NOT NULL AND status NOT IN ('completed', 'failed', 'cancelled');
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX tasks_deadline_watch;
        ALTER TABLE tasks DROP COLUMN deadline_at;
        """
    )
