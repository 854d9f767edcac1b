"""Tasks belong to a tenant: each orchestrator lists and recovers only its own tenant's work.

Tenants already had separate Redis keys, but several tenants' orchestrators on one database would requeue and
retry each other's subtasks. Existing tasks belong to the default tenant. The listing indexes lead with the tenant,
so one tenant's page never reads another's rows. Subtasks carry their task's tenant too: the index of live
subtasks leads with it, so counting a tenant's queue (on every submit) stays an index-only scan.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE tasks ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'default'
            CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,31}$');
        DROP INDEX tasks_created_at_idx, tasks_status_created_at_idx, tasks_user_id_created_at_idx;
        CREATE INDEX tasks_tenant_created_at_idx ON tasks (tenant_id, created_at DESC);
        CREATE INDEX tasks_tenant_status_created_at_idx ON tasks (tenant_id, status, created_at DESC);
        CREATE INDEX tasks_tenant_user_id_created_at_idx ON tasks (tenant_id, user_id, created_at DESC);

        ALTER TABLE subtasks ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'default';
        DROP INDEX subtasks_live_status_idx;
        CREATE INDEX subtasks_live_status_idx ON subtasks (tenant_id, status) WHERE status IN ('queued', 'running');
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP INDEX tasks_tenant_created_at_idx, tasks_tenant_status_created_at_idx, tasks_tenant_user_id_created_at_idx,
                   subtasks_live_status_idx;
        ALTER TABLE tasks DROP COLUMN tenant_id;
        ALTER TABLE subtasks DROP COLUMN tenant_id;
        CREATE INDEX subtasks_live_status_idx ON subtasks (status) WHERE status IN ('queued', 'running');
        CREATE INDEX tasks_created_at_idx ON tasks (created_at DESC);
        CREATE INDEX tasks_status_created_at_idx ON tasks (status, created_at DESC);
        CREATE INDEX tasks_user_id_created_at_idx ON tasks (user_id, created_at DESC);
        """
    )
