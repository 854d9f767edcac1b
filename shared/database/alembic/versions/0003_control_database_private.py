"""The control database is not open to every role of the server: PUBLIC loses CONNECT and TEMPORARY on it.

PostgreSQL grants both to PUBLIC on every new database, so the agents' data-source reader (a login role on the same
server by default) could otherwise log in here. It still could read nothing, but it has no business here at all. The
fleet's own login owns the database (or is a superuser) and keeps its rights; a login that owns nothing here only gets
a warning from REVOKE, so this never fails a migration.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DO $$ BEGIN EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()); END $$"
    )


def downgrade() -> None:
    op.execute(
        "DO $$ BEGIN EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO PUBLIC', current_database()); END $$"
    )
