"""API keys per tenant, and audit entries (agent logs, tool calls) that belong to a tenant.

Every caller of the orchestrator's API now authenticates with a key of its tenant. A key is stored only as the
SHA-256 of its text: a leaked table gives nobody a usable key. `key_hash` is unique, so a request's lookup is one
index probe. `last_used_at` is refreshed at most once a minute per key (see api_key_repository).

Agent logs and tool calls carry the tenant whose fleet wrote them, so `GET /logs` and a task's tool calls list only
their own tenant's entries (tasks and subtasks already had theirs, in 0002). Existing entries take their task's
tenant, or the default tenant when they name no task; the log listing's indexes lead with the tenant, as the task
listing's do (a task's tool calls are found by the task's index, the tenant then only confirms).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_keys (
            id              TEXT PRIMARY KEY,
            tenant_id       TEXT NOT NULL CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
            name            TEXT NOT NULL DEFAULT '' CHECK (length(name) <= 200),
            scope           TEXT NOT NULL CHECK (scope IN ('client', 'operator')),
            key_hash        BYTEA NOT NULL UNIQUE CHECK (length(key_hash) = 32),
            created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
            last_used_at    TIMESTAMPTZ,
            revoked_at      TIMESTAMPTZ
        );
        CREATE INDEX api_keys_tenant_created_at_idx ON api_keys (tenant_id, created_at);

        ALTER TABLE agent_logs ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'default'
            CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,31}$');
        UPDATE agent_logs SET tenant_id = tasks.tenant_id FROM tasks WHERE tasks.id = agent_logs.task_id;
        DROP INDEX agent_logs_created_at_idx, agent_logs_agent_id_created_at_idx;
        CREATE INDEX agent_logs_tenant_created_at_idx ON agent_logs (tenant_id, created_at DESC);
        CREATE INDEX agent_logs_tenant_agent_id_created_at_idx ON agent_logs (tenant_id, agent_id, created_at DESC);

        ALTER TABLE tool_calls ADD COLUMN tenant_id TEXT NOT NULL DEFAULT 'default'
            CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,31}$');
        UPDATE tool_calls SET tenant_id = tasks.tenant_id FROM tasks WHERE tasks.id = tool_calls.task_id;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE tool_calls DROP COLUMN tenant_id;
        DROP INDEX agent_logs_tenant_created_at_idx, agent_logs_tenant_agent_id_created_at_idx;
        ALTER TABLE agent_logs DROP COLUMN tenant_id;
        CREATE INDEX agent_logs_created_at_idx ON agent_logs (created_at DESC);
        CREATE INDEX agent_logs_agent_id_created_at_idx ON agent_logs (agent_id, created_at DESC);
        DROP TABLE api_keys;
        """
    )
