"""Context packs: files and a manifest a client uploads once (POST /context-packs) and tasks name at submit.

A pack is its tenant's: its row and its files carry the tenant, and every lookup filters by it, so another tenant's
pack id is an unknown one. Files are kept as bytea beside the pack, in the tenant's database: a pack survives
restarts and moves with the database's backups, and a pack and its files are stored in one transaction or not at
all. A task keeps the id of its pack (not a foreign key: a task remembers which pack it was given even after the
pack is deleted, so its agents can say which pack vanished).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE context_packs (
            id TEXT PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,128}$'),
            tenant_id TEXT NOT NULL CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
            sha256 TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            file_count INTEGER NOT NULL CHECK (file_count >= 1),
            total_bytes BIGINT NOT NULL CHECK (total_bytes >= 0),
            manifest JSONB NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT now()
        );
        CREATE INDEX context_packs_tenant_created_at_idx ON context_packs (tenant_id, created_at DESC);
        CREATE TABLE context_pack_files (
            pack_id TEXT NOT NULL REFERENCES context_packs (id) ON DELETE CASCADE,
            path TEXT NOT NULL CHECK (length(path) BETWEEN 1 AND 1024),
            content BYTEA NOT NULL,
            sha256 TEXT NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            PRIMARY KEY (pack_id, path)
        );
        ALTER TABLE tasks ADD COLUMN context_pack_id TEXT CHECK (context_pack_id ~ '^[A-Za-z0-9_.-]{1,128}$');
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE tasks DROP COLUMN context_pack_id;
        DROP TABLE context_pack_files;
        DROP TABLE context_packs;
        """
    )
