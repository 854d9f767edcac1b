"""Tasks and their subtasks keep the trace id of the request that submitted them.

Every log line about a task carries its `trace_id` (shared/tracing.py), in the orchestrator and in the agents; the
subtasks keep a copy so each queue item, offer and result of theirs carries it without a join on the hot path. The
checks repeat the model's limits (shared.models.TraceId). Tasks stored before have none.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TRACE_ID_CHECK = "CHECK (trace_id ~ '^[!-~]{1,128}$')"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE tasks ADD COLUMN trace_id TEXT {TRACE_ID_CHECK};
        ALTER TABLE subtasks ADD COLUMN trace_id TEXT {TRACE_ID_CHECK};
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE tasks DROP COLUMN trace_id;
        ALTER TABLE subtasks DROP COLUMN trace_id;
        """
    )
