"""Agent sightings are kept per tenant: `agents_seen` is keyed by (tenant_id, agent_id).

Agent ids are unique within a tenant's registry only, and two tenants' fleets may well both run an `agent1`. Keyed by
agent id alone, one row held both agents' sightings: each tenant's `GET /agents/history` showed the other's agent's
capabilities, role and times. Now each orchestrator writes and reads its own tenant's rows.

The rows of before this revision cannot be told apart, so they are rebuilt from each tenant's applied results (as
0015 first built them); an agent that is live records its capabilities again at its next sighting, within a minute.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        DELETE FROM agents_seen;
        ALTER TABLE agents_seen DROP CONSTRAINT agents_seen_pkey,
            ADD COLUMN tenant_id TEXT NOT NULL CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
            ADD PRIMARY KEY (tenant_id, agent_id);
        INSERT INTO agents_seen (tenant_id, agent_id, first_seen, last_seen)
        SELECT tenant_id, agent_id, min(created_at), max(created_at) FROM subtask_results WHERE applied
        GROUP BY tenant_id, agent_id;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        CREATE TEMPORARY TABLE agents_seen_merged AS
        SELECT DISTINCT ON (agent_id) agent_id, role, capabilities,
               min(first_seen) OVER (PARTITION BY agent_id) AS first_seen,
               max(last_seen) OVER (PARTITION BY agent_id) AS last_seen
        FROM agents_seen ORDER BY agent_id, last_seen DESC;
        DELETE FROM agents_seen;
        ALTER TABLE agents_seen DROP CONSTRAINT agents_seen_pkey, DROP COLUMN tenant_id, ADD PRIMARY KEY (agent_id);
        INSERT INTO agents_seen (agent_id, role, capabilities, first_seen, last_seen)
        SELECT agent_id, role, capabilities, first_seen, last_seen FROM agents_seen_merged;
        DROP TABLE agents_seen_merged;
        """
    )
