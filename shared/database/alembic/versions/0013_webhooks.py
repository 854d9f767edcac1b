"""Webhooks of a tenant, and the deliveries made to each, so an event reaches each webhook once.

A webhook names a URL, the event types it wants (or `*`) and optionally one task. Its signing secret is not stored:
the orchestrator derives it from FLEET_SECRET and the webhook's id (orchestrator/webhook_signing.py), so a copy of
this table signs nothing. The last outcome of its deliveries is kept on the webhook itself for `GET /webhooks`.

`webhook_deliveries` has one row per (webhook, event) that was delivered or given up on: a deliverer that takes over
an event from one that died skips the webhooks the event already reached. Rows go with their webhook.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE webhooks (
            id                  TEXT PRIMARY KEY,
            tenant_id           TEXT NOT NULL CHECK (tenant_id ~ '^[a-z0-9][a-z0-9_-]{0,31}$'),
            url                 TEXT NOT NULL CHECK (length(url) <= 2048),
            events              TEXT[] NOT NULL CHECK (cardinality(events) >= 1),
            task_id             TEXT,
            created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
            last_event_id       TEXT,
            last_status         TEXT CHECK (last_status IN ('delivered', 'failed')),
            last_http_status    INTEGER,
            last_error          TEXT,
            last_attempts       INTEGER,
            last_finished_at    TIMESTAMPTZ
        );
        CREATE INDEX webhooks_tenant_created_at_idx ON webhooks (tenant_id, created_at, id);

        CREATE TABLE webhook_deliveries (
            webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
            event_id        TEXT NOT NULL,
            status          TEXT NOT NULL CHECK (status IN ('delivered', 'failed')),
            http_status     INTEGER,
            error           TEXT,
            attempts        INTEGER NOT NULL CHECK (attempts >= 0),
            finished_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
            PRIMARY KEY (webhook_id, event_id)
        );
        CREATE INDEX webhook_deliveries_finished_at_idx ON webhook_deliveries (finished_at);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE webhook_deliveries; DROP TABLE webhooks;")
