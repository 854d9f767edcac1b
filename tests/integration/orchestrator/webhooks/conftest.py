"""Webhook tests run deliverers in the test's loop against the real Redis stream and PostgreSQL, and a real HTTP
receiver on this machine (tests/webhook_receiver.py)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.webhook_deliverer import WebhookDeliverer
from orchestrator.webhook_sender import WebhookSender, webhook_client
from orchestrator.webhooks import WebhookService
from shared.config import Settings
from shared.database import DatabaseManager
from shared.redis_manager import RedisManager
from shared.webhooks import Webhook
from tests.integration.orchestrator.webhooks.support import (
    Register,
    RunningDeliverer,
    StartDeliverer,
)
from tests.webhook_receiver import WebhookReceiver, running_receiver


@pytest.fixture
def webhook_settings(orchestrator_settings: Settings) -> Settings:
    """A receiver on this machine, quick retries, and events taken over after a second without a sign of life."""
    return orchestrator_settings.model_copy(
        update={
            "webhook_allow_private": True,
            "webhook_retry_backoff_seconds": 0.01,
            "webhook_max_attempts": 3,
            "webhook_claim_idle_seconds": 1.0,
            "webhook_timeout_seconds": 5.0,
        }
    )


@pytest.fixture
async def tenant_db(webhook_settings: Settings, db: DatabaseManager) -> AsyncIterator[DatabaseManager]:
    """The database as the test's orchestrator sees it: its repositories are its tenant's (`db` empties the tables)."""
    manager = DatabaseManager(webhook_settings.model_copy(update={"db_pool_min_size": 1, "db_pool_max_size": 4}))
    await manager.connect()
    yield manager
    await manager.disconnect()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
def register(webhook_settings: Settings, tenant_db: DatabaseManager) -> Register:
    """Register a webhook as POST /webhooks does: its record and its secret."""
    service = WebhookService(webhook_settings, tenant_db)

    async def create(url: str, events: list[str] | None = None, task_id: str | None = None) -> tuple[Webhook, str]:
        return await service.register(url, events or ["*"], task_id)

    return create


@pytest.fixture
async def start_deliverer(
    webhook_settings: Settings, tenant_db: DatabaseManager, test_redis: RedisManager
) -> AsyncIterator[StartDeliverer]:
    """Deliverers running in the test's loop, as an orchestrator runs one; each stopped (or already dead) at the end."""
    running: list[RunningDeliverer] = []

    async def start(**overrides: Any) -> RunningDeliverer:
        settings = webhook_settings.model_copy(update=overrides)
        client = webhook_client(settings)
        sender = WebhookSender(settings, client, tenant_db.repositories().webhooks.exists)
        deliverer = WebhookDeliverer(settings, tenant_db, test_redis.events, sender)
        running.append(RunningDeliverer(deliverer, asyncio.create_task(deliverer.start()), client))
        return running[-1]

    yield start
    for each in running:
        each.deliverer.stop()
        await asyncio.gather(each.task, return_exceptions=True)
        await each.client.aclose()
