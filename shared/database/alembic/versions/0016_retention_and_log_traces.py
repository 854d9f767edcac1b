"""Retention and log filters: agent_logs rows carry the trace id of the attempt they are about, and the purge finds
the late audit rows of the tasks it removed. (It reads expired tasks through 0015's index of ended tasks.)

- `agent_logs.trace_id`: the trace of the task the entry is about (GET /logs?trace_id=...); null for entries written
  before this revision and for entries about no task.
- `agent_logs (tenant_id, subtask_id, ...)` and `(tenant_id, trace_id, ...)`: the log view's filters by subtask and by
  trace, newest first.
- `removed_tasks`: the ids of tasks removed lately (DELETE /tasks/{id} or the purge), so that agent logs and tool
  calls an agent writes a moment after its task went are found and removed too, and nothing else: an audit row
  naming a task that never existed here is not the retention's to remove.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE agent_logs ADD COLUMN trace_id TEXT;  -- no CHECK: an audit entry is never lost to a constraint
        CREATE INDEX agent_logs_tenant_subtask_created_at_idx ON agent_logs (tenant_id, subtask_id, created_at DESC)
            WHERE subtask_id IS NOT NULL;
        CREATE INDEX agent_logs_tenant_trace_created_at_idx ON agent_logs (tenant_id, trace_id, created_at DESC)
            WHERE trace_id IS NOT NULL;
        CREATE TABLE removed_tasks (
            task_id     TEXT PRIMARY KEY,
            tenant_id   TEXT NOT NULL CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
            removed_at  TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX removed_tasks_tenant_removed_at_idx ON removed_tasks (tenant_id, removed_at);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE removed_tasks;
        DROP INDEX agent_logs_tenant_trace_created_at_idx,
            agent_logs_tenant_subtask_created_at_idx;
        ALTER TABLE agent_logs DROP COLUMN trace_id;
        """
    )
