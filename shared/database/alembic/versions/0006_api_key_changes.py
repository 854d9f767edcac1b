"""Every change of an API key is announced, so an orchestrator may keep the keys it looked up.

An orchestrator keeps the keys it looked up lately instead of asking PostgreSQL on every request, and forgets them
all when a key changes. The trigger announces each statement that revokes, deletes or otherwise changes a key on the
channel `api_keys_changed` (in its transaction, so it is delivered when the change commits), however the change is
made: `python -m orchestrator api-keys revoke`, or SQL by hand. Recording a key's last use changes nothing that
decides who may call, and is not announced.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION announce_api_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('api_keys_changed', '');
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER api_keys_changed
            AFTER UPDATE OF tenant_id, scope, key_hash, revoked_at OR DELETE OR TRUNCATE ON api_keys
            FOR EACH STATEMENT EXECUTE FUNCTION announce_api_key_change();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER api_keys_changed ON api_keys;
        DROP FUNCTION announce_api_key_change();
        """
    )
