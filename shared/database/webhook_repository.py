"""A tenant's webhooks, and the record of which events reached which webhook (one row per webhook and event)."""

from datetime import datetime
from typing import Any

import asyncpg

from shared.database.executor import Executor
from shared.webhooks import ALL_EVENTS, DeliveryOutcome, Webhook

WEBHOOK_COLUMNS = (
    "id, url, events, task_id, created_at, last_event_id, last_status, last_http_status, last_error, last_attempts, "
    "last_finished_at"
)


def webhook_from_row(row: asyncpg.Record) -> Webhook:
    fields: dict[str, Any] = {name: row[name] for name in ("id", "url", "events", "task_id", "created_at")}
    if row["last_event_id"] is not None:
        fields["last_delivery"] = DeliveryOutcome(
            event_id=row["last_event_id"],
            status=row["last_status"],
            http_status=row["last_http_status"],
            error=row["last_error"],
            attempts=row["last_attempts"],
            finished_at=row["last_finished_at"],
        )
    return Webhook.model_validate(fields)


class WebhookRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def create(self, webhook_id: str, url: str, events: list[str], task_id: str | None) -> Webhook:
        row = await self._executor.fetchrow(
            f"""
            INSERT INTO webhooks (id, tenant_id, url, events, task_id) VALUES ($1, $2, $3, $4, $5)
            RETURNING {WEBHOOK_COLUMNS}
            """,
            webhook_id,
            self._tenant_id,
            url,
            events,
            task_id,
        )
        return webhook_from_row(row)

    async def count(self) -> int:
        found: int = await self._executor.fetchval(
            "SELECT count(*) FROM webhooks WHERE tenant_id = $1", self._tenant_id
        )
        return found

    async def list_webhooks(self) -> list[Webhook]:
        """The tenant's webhooks, oldest first, each with its last delivery's outcome."""
        rows = await self._executor.fetch(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 ORDER BY created_at, id", self._tenant_id
        )
        return [webhook_from_row(row) for row in rows]

    async def delete(self, webhook_id: str) -> bool:
        """Delete the webhook and its deliveries' record; False when the tenant has no such webhook."""
        deleted = await self._executor.fetchval(
            "DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2 RETURNING id", webhook_id, self._tenant_id
        )
        return deleted is not None

    async def exists(self, webhook_id: str) -> bool:
        found = await self._executor.fetchval(
            "SELECT EXISTS (SELECT FROM webhooks WHERE id = $1 AND tenant_id = $2)", webhook_id, self._tenant_id
        )
        return bool(found)

    async def awaiting(self, event_id: str, event_type: str, task_id: str, occurred_at: datetime) -> list[Webhook]:
        """The webhooks an event is for and has not reached yet: they want its type, of every task or of its task,
        and were created before it happened."""
        rows = await self._executor.fetch(
            f"""
            SELECT {WEBHOOK_COLUMNS} FROM webhooks w
            WHERE w.tenant_id = $1 AND ($2 = ANY (w.events) OR $3 = ANY (w.events))
              AND (w.task_id IS NULL OR w.task_id = $4) AND w.created_at <= $5
              AND NOT EXISTS (SELECT FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.event_id = $6)
            ORDER BY w.created_at, w.id
            """,
            self._tenant_id,
            ALL_EVENTS,
            event_type,
            task_id,
            occurred_at,
            event_id,
        )
        return [webhook_from_row(row) for row in rows]

    async def record_delivery(self, webhook_id: str, outcome: DeliveryOutcome) -> bool:
        """Record how delivering an event to a webhook ended, as its last outcome too; False when the event was
        recorded for it already (another deliverer got there first) or the webhook is gone."""
        try:
            recorded = await self._executor.fetchval(
                """
                WITH recorded AS (
                    INSERT INTO webhook_deliveries (webhook_id, event_id, status, http_status, error, attempts,
                                                    finished_at)
                    SELECT id, $3, $4, $5, $6, $7, $8 FROM webhooks WHERE id = $1 AND tenant_id = $2
                    ON CONFLICT DO NOTHING
                    RETURNING webhook_id
                )
                UPDATE webhooks w SET last_event_id = $3, last_status = $4, last_http_status = $5, last_error = $6,
                                      last_attempts = $7, last_finished_at = $8
                FROM recorded WHERE w.id = recorded.webhook_id
                RETURNING w.id
                """,
                webhook_id,
                self._tenant_id,
                outcome.event_id,
                outcome.status.value,
                outcome.http_status,
                outcome.error,
                outcome.attempts,
                outcome.finished_at,
            )
        except asyncpg.ForeignKeyViolationError:  # deleted between the check and the insert
            return False
        return recorded is not None

    async def prune_deliveries(self, finished_before: datetime) -> int:
        """Forget deliveries that finished before then: their events have long left the capped stream."""
        result: str = await self._executor.execute(
            "DELETE FROM webhook_deliveries d USING webhooks w "
            "WHERE w.id = d.webhook_id AND w.tenant_id = $1 AND d.finished_at < $2",
            self._tenant_id,
            finished_before,
        )
        return int(result.rsplit(" ", 1)[-1])
