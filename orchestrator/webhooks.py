"""Registering, listing and deleting the tenant's webhooks (delivery: orchestrator/webhook_deliverer.py)."""

from orchestrator.webhook_addresses import checked_address
from orchestrator.webhook_signing import secret_text, webhook_key
from shared.config import Settings
from shared.database import DatabaseManager
from shared.errors import ConflictError, InvalidInputError, NotFoundError
from shared.fleet_trust import require_fleet_secret
from shared.webhooks import MAX_WEBHOOKS_PER_TENANT, Webhook, new_webhook_id


class WebhookService:
    def __init__(self, settings: Settings, db: DatabaseManager) -> None:
        self._settings = settings
        self._db = db

    async def register(self, url: str, events: list[str], task_id: str | None) -> tuple[Webhook, str]:
        """A new webhook and its signing secret. 400 for an address webhooks may not go to, or an unknown task;
        409 when the tenant has MAX_WEBHOOKS_PER_TENANT already."""
        await checked_address(url, allow_private=self._settings.webhook_allow_private)
        repositories = self._db.repositories()
        if task_id is not None and not await repositories.tasks.task_exists(task_id):
            raise InvalidInputError(f"task_id: there is no task {task_id!r}")
        if await repositories.webhooks.count() >= MAX_WEBHOOKS_PER_TENANT:
            raise ConflictError(f"there are {MAX_WEBHOOKS_PER_TENANT} webhooks already, the most allowed: delete one")
        webhook_id = new_webhook_id()
        key = webhook_key(require_fleet_secret(self._settings), self._settings.tenant_id, webhook_id)
        webhook = await repositories.webhooks.create(webhook_id, url, events, task_id)
        return webhook, secret_text(key)

    async def list_webhooks(self) -> list[Webhook]:
        return await self._db.repositories().webhooks.list_webhooks()

    async def delete(self, webhook_id: str) -> None:
        if not await self._db.repositories().webhooks.delete(webhook_id):
            raise NotFoundError(f"there is no webhook {webhook_id!r}")
