from datetime import timedelta

from shared.database import DatabaseManager, Repositories
from shared.models import utc_now
from shared.webhooks import DeliveryOutcome, DeliveryStatus


def outcome(event_id: str, status: DeliveryStatus = DeliveryStatus.DELIVERED) -> DeliveryOutcome:
    return DeliveryOutcome(event_id=event_id, status=status, http_status=200, attempts=1, finished_at=utc_now())


async def test_a_tenant_sees_and_deletes_only_its_own_webhooks(db: DatabaseManager) -> None:
    ours, theirs = Repositories(db.pool, "ours"), Repositories(db.pool, "theirs")
    mine = await ours.webhooks.create("wh_mine", "https://example.com/a", ["*"], None)

    assert await theirs.webhooks.list_webhooks() == []
    assert not await theirs.webhooks.exists(mine.id)
    assert not await theirs.webhooks.delete(mine.id)
    assert not await theirs.webhooks.record_delivery(mine.id, outcome("1-0"))
    assert [webhook.id for webhook in await ours.webhooks.list_webhooks()] == [mine.id]


async def test_an_event_is_recorded_once_per_webhook_and_is_its_last_outcome(db: DatabaseManager) -> None:
    repositories = Repositories(db.pool, "ours")
    webhook = await repositories.webhooks.create("wh_1", "https://example.com/a", ["AGENT_FAILED"], None)
    happened = utc_now()

    assert await repositories.webhooks.record_delivery(webhook.id, outcome("1-0"))
    assert not await repositories.webhooks.record_delivery(webhook.id, outcome("1-0", DeliveryStatus.FAILED))

    [listed] = await repositories.webhooks.list_webhooks()
    assert listed.last_delivery is not None
    assert (listed.last_delivery.event_id, listed.last_delivery.status) == ("1-0", DeliveryStatus.DELIVERED)
    assert await repositories.webhooks.awaiting("1-0", "AGENT_FAILED", "task_1", happened) == []
    assert [w.id for w in await repositories.webhooks.awaiting("2-0", "AGENT_FAILED", "task_1", happened)] == ["wh_1"]
    assert await repositories.webhooks.prune_deliveries(utc_now() + timedelta(seconds=1)) == 1
    assert await repositories.webhooks.delete(webhook.id)
    assert not await repositories.webhooks.record_delivery(webhook.id, outcome("3-0"))
