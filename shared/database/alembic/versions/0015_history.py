"""History that survives restarts: each attempt's queue and assignment times, and every agent the fleet has seen.

A subtask keeps only its current attempt's `queued_at` and `assigned_at`; a retry overwrites them. The result row of
each attempt now carries both, copied in the INSERT that records it, so a task's timeline (queued -> assigned ->
running -> done per attempt) and the per-minute history (latency, queue depth) are read from PostgreSQL alone.

`agents_seen` remembers every agent the orchestrators have read from the registry (its capabilities, first and last
sighting), so an agent that is gone still has a record; its counts come from its results. Agents that reported
results before this revision are recorded from them.

Results carry their task's tenant, like subtasks, so a tenant's results of a window or of an agent are read through
indexes that lead with the tenant instead of through every tenant's rows. Ended tasks are indexed by when they ended,
cancelled subtasks by when they were cancelled (their last wait on the queue counts toward the queue depth).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE subtask_results ADD COLUMN queued_at TIMESTAMPTZ, ADD COLUMN assigned_at TIMESTAMPTZ,
            ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'default';
        UPDATE subtask_results r SET tenant_id = t.tenant_id FROM tasks t
        WHERE t.id = r.task_id AND t.tenant_id <> 'default';

        CREATE TABLE agents_seen (
            agent_id        TEXT PRIMARY KEY,
            role            TEXT,
            capabilities    TEXT[] NOT NULL DEFAULT '{}',
            first_seen      TIMESTAMPTZ NOT NULL DEFAULT now(),
            last_seen       TIMESTAMPTZ NOT NULL DEFAULT now(),
            CHECK (first_seen <= last_seen)
        );
        INSERT INTO agents_seen (agent_id, first_seen, last_seen)
        SELECT agent_id, min(created_at), max(created_at) FROM subtask_results WHERE applied GROUP BY agent_id;

        CREATE INDEX subtask_results_tenant_created_at_idx ON subtask_results (tenant_id, created_at) WHERE applied;
        CREATE INDEX subtask_results_tenant_agent_idx ON subtask_results (tenant_id, agent_id, created_at DESC)
            INCLUDE (status) WHERE applied;
        CREATE INDEX tasks_tenant_ended_idx ON tasks (tenant_id, updated_at)
            WHERE status IN ('completed', 'failed', 'cancelled');
        CREATE INDEX subtasks_tenant_cancelled_idx ON subtasks (tenant_id, updated_at) WHERE status = 'cancelled';
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX subtask_results_tenant_created_at_idx, subtask_results_tenant_agent_idx, tasks_tenant_ended_idx,
            subtasks_tenant_cancelled_idx;
        DROP TABLE agents_seen;
        ALTER TABLE subtask_results DROP COLUMN queued_at, DROP COLUMN assigned_at, DROP COLUMN tenant_id;
        """
    )
