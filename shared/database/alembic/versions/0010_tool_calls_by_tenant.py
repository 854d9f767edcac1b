"""The isolation report reads a tenant's newest tool calls through an index rather than every tenant's rows.

`GET /isolation-report` takes the newest tool calls of one tenant (shared/database/isolation_repository.py); the
earlier indexes all start with the task or the agent, so PostgreSQL sorted the whole table to find them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX tool_calls_tenant_created_at_idx ON tool_calls (tenant_id, created_at DESC, id DESC)")


def downgrade() -> None:
    op.execute("DROP INDEX tool_calls_tenant_created_at_idx")
