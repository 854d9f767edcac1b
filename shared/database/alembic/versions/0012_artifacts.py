"""Artifacts: each file an applied, completed attempt produced, recorded in the transaction that applies it.

A row names the task, subtask, attempt and agent that made the file, its path in the task's output, its kind
(report, patch, data, code, other), media type, size and SHA-256; the content itself is the orchestrator's copy in
ARTIFACTS_DIR, addressed by that hash (shared/artifact_store.py). Like every table a client reads, the rows carry
their tenant, and the listing's index leads with it, so one tenant's lookups never read another's rows.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE artifacts (
            artifact_id     TEXT PRIMARY KEY,
            tenant_id       TEXT NOT NULL CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
            task_id         TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            subtask_id      TEXT NOT NULL REFERENCES subtasks (id) ON DELETE CASCADE,
            attempt         INTEGER NOT NULL CHECK (attempt >= 1),
            agent_id        TEXT NOT NULL,
            name            TEXT NOT NULL CHECK (name <> ''),
            type            TEXT NOT NULL CHECK (type IN ('report', 'patch', 'data', 'code', 'other')),
            media_type      TEXT NOT NULL,
            size            BIGINT NOT NULL CHECK (size >= 0),
            sha256          TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
            -- an attempt promotes each path once
            UNIQUE (subtask_id, attempt, name)
        );
        CREATE INDEX artifacts_tenant_task_idx ON artifacts (tenant_id, task_id, created_at, name);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE artifacts")
