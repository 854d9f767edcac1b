"""Task types on tasks and subtasks, and a status reason on both.

`subtasks.task_type` was free text (default 'general') that routing ignored; it becomes one of the TaskType members:
a stored value that matches a member in any case becomes that member, anything else GENERAL, and a CHECK keeps
invalid values out from now on. Tasks get the same column (a client may name the type of its task). `status_reason`
(JSONB `{"code", "message"}`, NULL when there is nothing to say) says why a task or subtask is where it is, e.g. a
subtask waiting for an agent. Routing reads each agent's recent results per task type at start (the affinity),
which an index on the applied results keeps cheap.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TASK_TYPES = "('DISCOVERY', 'MIGRATION', 'HEARTBEAT', 'INGEST', 'RESEARCH', 'GENERAL')"
REASON_SHAPE = "jsonb_typeof({column}) = 'object' AND {column} ? 'code' AND {column} ? 'message'"


def upgrade() -> None:
    op.execute(
        f"""
        UPDATE subtasks SET task_type = CASE WHEN upper(btrim(task_type)) IN {TASK_TYPES}
                                             THEN upper(btrim(task_type)) ELSE 'GENERAL' END
        WHERE task_type NOT IN {TASK_TYPES};
        ALTER TABLE subtasks ALTER COLUMN task_type SET DEFAULT 'GENERAL',
            ADD CONSTRAINT subtasks_task_type_check CHECK (task_type IN {TASK_TYPES}),
            ADD COLUMN status_reason JSONB CHECK ({REASON_SHAPE.format(column="status_reason")});
        ALTER TABLE tasks ADD COLUMN task_type TEXT NOT NULL DEFAULT 'GENERAL' CHECK (task_type IN {TASK_TYPES}),
            ADD COLUMN status_reason JSONB CHECK ({REASON_SHAPE.format(column="status_reason")});
        CREATE INDEX subtask_results_applied_agent_idx ON subtask_results (agent_id, created_at DESC) WHERE applied;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX subtask_results_applied_agent_idx;
        ALTER TABLE tasks DROP COLUMN task_type, DROP COLUMN status_reason;
        ALTER TABLE subtasks DROP CONSTRAINT subtasks_task_type_check, DROP COLUMN status_reason,
            ALTER COLUMN task_type SET DEFAULT 'general';
        """
    )
