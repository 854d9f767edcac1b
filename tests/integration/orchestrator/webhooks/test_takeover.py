"""Deliverers that die, run side by side, or lose PostgreSQL: every event still reaches each webhook once."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from orchestrator.webhook_deliverer import GROUP, WebhookDeliverer
from orchestrator.webhook_sender import WebhookSender, webhook_client
from orchestrator.webhooks import WebhookService
from shared.config import Settings
from shared.database import DatabaseManager
from shared.redis import EventType
from shared.redis_manager import RedisManager
from tests.integration.orchestrator.webhooks.support import (
    Register,
    StartDeliverer,
    delivered_rows,
    event,
    pending,
    publish,
)
from tests.network import link_to
from tests.polling import eventually
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(60)


async def test_a_deliverer_that_dies_mid_event_has_it_taken_over_and_each_webhook_gets_it_once(
    receiver: WebhookReceiver,
    register: Register,
    start_deliverer: StartDeliverer,
    test_redis: RedisManager,
    db: DatabaseManager,
) -> None:
    fast, _ = await register(receiver.url("/fast"))
    await register(receiver.url("/stuck"))
    receiver.hold_next("/stuck")  # never released: the first deliverer dies waiting for it
    first = await start_deliverer()
    [event_id] = await publish(test_redis, event())
    await eventually(lambda: delivered_rows(db), lambda rows: rows == [(fast.id, event_id)])
    await eventually(lambda: receiver.arrived("/stuck"), lambda found: len(found) == 1)

    await first.die()
    [entry] = await test_redis.client.xpending_range(test_redis.keys.events(), GROUP, "-", "+", 10)
    assert entry["consumer"] == first.consumer  # still pending, with the dead deliverer
    second = await start_deliverer()

    await eventually(lambda: receiver.received("/stuck"), lambda found: len(found) == 1)
    await eventually(lambda: pending(test_redis), lambda count: count == 0)
    assert second.consumer != first.consumer
    assert [r.headers["webhook-id"] for r in await receiver.received("/fast")] == [event_id]
    assert len(await delivered_rows(db)) == 2


async def test_two_live_deliverers_share_the_events_and_deliver_each_once(
    receiver: WebhookReceiver, register: Register, start_deliverer: StartDeliverer, test_redis: RedisManager
) -> None:
    await register(receiver.url())
    await start_deliverer()
    await start_deliverer()

    ids = await publish(test_redis, *(event(n=n) for n in range(30)))

    await eventually(lambda: pending(test_redis), lambda count: count == 0)
    await eventually(receiver.received, lambda found: len(found) == 30)
    assert sorted(json.loads(r.body)["id"] for r in await receiver.arrived()) == sorted(ids)


async def test_postgresql_going_away_is_logged_once_and_the_events_are_delivered_once_it_is_back(
    receiver: WebhookReceiver, webhook_settings: Settings, db: DatabaseManager, test_redis: RedisManager
) -> None:
    link, url = link_to(webhook_settings.postgres_url)
    settings = webhook_settings.model_copy(update={"postgres_url": url, "db_pool_min_size": 1, "db_pool_max_size": 4})
    through_link = DatabaseManager(settings)
    await through_link.connect()
    client = webhook_client(settings)
    deliverer = WebhookDeliverer(
        settings,
        through_link,
        test_redis.events,
        WebhookSender(settings, client, through_link.repositories().webhooks.exists),
    )
    try:
        await WebhookService(settings, through_link).register(receiver.url(), ["*"], None)
        running = asyncio.create_task(deliverer.start())
        with capture_logs() as logs:
            link.cut()
            ids = await publish(test_redis, event(), event(EventType.TASK_COMPLETED))
            await eventually(_async(lambda: [log for log in logs if log["event"] == "loop_store_unreachable"]), bool)
            ids += await publish(test_redis, event(EventType.TASK_FAILED))
            link.restore()
            await eventually(receiver.received, lambda found: len(found) == 3)
            await eventually(lambda: pending(test_redis), lambda count: count == 0)
        deliverer.stop()
        await running
    finally:
        link.close()
        await client.aclose()
        await through_link.disconnect()

    assert sorted(r.headers["webhook-id"] for r in await receiver.arrived()) == sorted(ids)
    warnings = [log for log in logs if log["log_level"] in ("warning", "error")]
    assert [(log["event"], log["store"]) for log in warnings] == [("loop_store_unreachable", "PostgreSQL")]


def _async(probe: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return probe()

    return call
