"""Webhook delivery on the real Redis stream and PostgreSQL, to a real HTTP receiver on this machine."""

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import standardwebhooks
from redis.exceptions import ResponseError
from structlog.testing import capture_logs

from orchestrator.webhook_deliverer import GROUP, WebhookDeliverer
from orchestrator.webhook_sender import WebhookSender, webhook_client
from orchestrator.webhooks import WebhookService
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.redis import EventType, TaskEvent
from shared.redis_manager import RedisManager
from shared.webhooks import DeliveryOutcome, DeliveryStatus, Webhook
from tests.factories import build_task
from tests.network import link_to
from tests.polling import eventually
from tests.webhook_receiver import WebhookReceiver, running_receiver

pytestmark = pytest.mark.timeout(60)

Register = Callable[..., Awaitable[tuple[Webhook, str]]]


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


@dataclass
class RunningDeliverer:
    deliverer: WebhookDeliverer
    task: asyncio.Task[None]
    client: httpx.AsyncClient

    @property
    def consumer(self) -> str:
        return self.deliverer.consumer

    async def die(self) -> None:
        """Stop dead, wherever it is: nothing it was doing is finished or acknowledged."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


StartDeliverer = Callable[..., Awaitable[RunningDeliverer]]


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


async def publish(redis: RedisManager, *events: TaskEvent) -> list[str]:
    return await redis.events.publish(list(events))


def event(event_type: EventType = EventType.AGENT_COMPLETED, task_id: str = "task_1", **data: Any) -> TaskEvent:
    return TaskEvent(event_type, task_id, data or {"result": "done"}, subtask_id="subtask_1", trace_id="trace-1")


async def outcome_of(repositories: Repositories, webhook_id: str) -> DeliveryOutcome:
    """The webhook's last delivery outcome, once there is one."""

    async def last() -> DeliveryOutcome | None:
        found = {webhook.id: webhook for webhook in await repositories.webhooks.list_webhooks()}
        return found[webhook_id].last_delivery

    outcome = await eventually(last, lambda found: found is not None)
    assert outcome is not None
    return outcome


async def delivered_rows(db: DatabaseManager) -> list[tuple[str, str]]:
    rows = await db.pool.fetch("SELECT webhook_id, event_id FROM webhook_deliveries ORDER BY webhook_id, event_id")
    return [(row["webhook_id"], row["event_id"]) for row in rows]


async def pending(redis: RedisManager) -> int:
    """Events the group has handed out and not had acknowledged; -1 before a deliverer created the group."""
    try:
        summary = await redis.client.xpending(redis.keys.events(), GROUP)
    except ResponseError:
        return -1
    count: int = summary["pending"]
    return count


async def test_an_event_reaches_its_webhook_signed_so_that_a_receiver_verifies_it(
    receiver: WebhookReceiver, register: Register, start_deliverer: StartDeliverer, test_redis: RedisManager
) -> None:
    _, secret = await register(receiver.url())
    await start_deliverer()

    sent = event(tokens=1200)
    [event_id] = await publish(test_redis, sent)

    [delivery] = await eventually(receiver.received, lambda found: len(found) == 1)
    verifier = standardwebhooks.Webhook(secret)
    assert verifier.verify(delivery.body, delivery.headers) == sent.as_json(event_id)
    assert delivery.headers["webhook-id"] == event_id
    assert delivery.headers["Content-Type"] == "application/json"
    with pytest.raises(standardwebhooks.WebhookVerificationError):  # a body changed on the way
        verifier.verify(delivery.body.replace(b"1200", b"1201"), delivery.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):  # another webhook's secret
        standardwebhooks.Webhook((await register(receiver.url("/other")))[1]).verify(delivery.body, delivery.headers)
    await eventually(lambda: pending(test_redis), lambda count: count == 0)


async def test_an_endpoint_that_fails_twice_receives_the_event_on_the_third_try(
    receiver: WebhookReceiver,
    register: Register,
    start_deliverer: StartDeliverer,
    test_redis: RedisManager,
    orchestrator_repositories: Repositories,
) -> None:
    webhook, _ = await register(receiver.url())
    receiver.answer("/hook", 503, 429)
    await start_deliverer()

    [event_id] = await publish(test_redis, event())

    outcome = await outcome_of(orchestrator_repositories, webhook.id)
    assert (outcome.status, outcome.http_status, outcome.attempts, outcome.event_id) == (
        DeliveryStatus.DELIVERED,
        200,
        3,
        event_id,
    )
    assert [request.answered for request in await receiver.arrived()] == [503, 429, 200]
    assert {request.headers["webhook-id"] for request in await receiver.arrived()} == {event_id}


async def test_an_endpoint_that_keeps_failing_is_given_up_and_that_is_its_last_outcome(
    receiver: WebhookReceiver,
    register: Register,
    start_deliverer: StartDeliverer,
    test_redis: RedisManager,
    orchestrator_repositories: Repositories,
) -> None:
    webhook, _ = await register(receiver.url())
    receiver.answer("/hook", 500, 502, 503)
    await start_deliverer()

    await publish(test_redis, event())

    outcome = await outcome_of(orchestrator_repositories, webhook.id)
    assert (outcome.status, outcome.http_status, outcome.attempts) == (DeliveryStatus.FAILED, 503, 3)
    assert outcome.error == "answered HTTP 503"
    await eventually(lambda: pending(test_redis), lambda count: count == 0)  # given up is done with
    assert len(await receiver.arrived()) == 3


async def test_a_4xx_answer_other_than_429_is_final(
    receiver: WebhookReceiver,
    register: Register,
    start_deliverer: StartDeliverer,
    test_redis: RedisManager,
    orchestrator_repositories: Repositories,
) -> None:
    webhook, _ = await register(receiver.url())
    receiver.answer("/hook", 410)
    await start_deliverer()

    await publish(test_redis, event())

    outcome = await outcome_of(orchestrator_repositories, webhook.id)
    assert (outcome.status, outcome.http_status, outcome.attempts) == (DeliveryStatus.FAILED, 410, 1)
    assert [request.answered for request in await receiver.arrived()] == [410]


async def test_events_go_to_the_webhooks_whose_types_and_task_they_match(
    receiver: WebhookReceiver,
    register: Register,
    start_deliverer: StartDeliverer,
    test_redis: RedisManager,
    db: DatabaseManager,
    orchestrator_repositories: Repositories,
) -> None:
    task = await orchestrator_repositories.tasks.create_task(build_task())
    completions, _ = await register(receiver.url("/completions"), ["AGENT_COMPLETED", "TASK_COMPLETED"])
    of_task, _ = await register(receiver.url("/task"), task_id=task.id)
    everything, _ = await register(receiver.url("/all"))
    await start_deliverer()

    started_id, other_id, ended_id = await publish(
        test_redis,
        event(EventType.AGENT_STARTED, task.id),
        event(EventType.AGENT_COMPLETED, "task_other"),
        event(EventType.TASK_COMPLETED, task.id),
    )

    await eventually(lambda: delivered_rows(db), lambda rows: len(rows) == 7)
    await eventually(lambda: pending(test_redis), lambda count: count == 0)
    ids = {
        path: sorted(r.headers["webhook-id"] for r in await receiver.received(path))
        for path in ("/completions", "/task")
    }
    assert ids == {"/completions": sorted([other_id, ended_id]), "/task": sorted([started_id, ended_id])}
    assert len(await receiver.received("/all")) == 3
    assert {webhook_id for webhook_id, _ in await delivered_rows(db)} == {completions.id, of_task.id, everything.id}


async def test_a_webhook_gets_only_the_events_published_after_it_was_created(
    receiver: WebhookReceiver, register: Register, start_deliverer: StartDeliverer, test_redis: RedisManager
) -> None:
    await publish(test_redis, event(EventType.AGENT_STARTED))
    await register(receiver.url())
    await start_deliverer()

    [later_id] = await publish(test_redis, event())

    await eventually(lambda: pending(test_redis), lambda count: count == 0)
    assert [request.headers["webhook-id"] for request in await receiver.arrived()] == [later_id]


async def test_a_deleted_webhook_gets_no_more_events(
    receiver: WebhookReceiver,
    register: Register,
    start_deliverer: StartDeliverer,
    test_redis: RedisManager,
    orchestrator_repositories: Repositories,
) -> None:
    deleted, _ = await register(receiver.url("/deleted"))
    await register(receiver.url("/kept"))
    await start_deliverer()
    [first_id] = await publish(test_redis, event())
    await eventually(lambda: receiver.received("/deleted"), lambda found: len(found) == 1)

    assert await orchestrator_repositories.webhooks.delete(deleted.id)
    [second_id] = await publish(test_redis, event())

    await eventually(lambda: receiver.received("/kept"), lambda found: len(found) == 2)
    await eventually(lambda: pending(test_redis), lambda count: count == 0)
    assert [r.headers["webhook-id"] for r in await receiver.arrived("/deleted")] == [first_id]
    assert [r.headers["webhook-id"] for r in await receiver.received("/kept")] == [first_id, second_id]


async def test_a_slow_endpoint_does_not_hold_back_the_other_webhooks(
    receiver: WebhookReceiver, register: Register, start_deliverer: StartDeliverer, test_redis: RedisManager
) -> None:
    await register(receiver.url("/slow"))
    await register(receiver.url("/fast"))
    release = receiver.hold_next("/slow")
    await start_deliverer()

    ids = await publish(test_redis, event(), event(EventType.TASK_COMPLETED))

    # Both events reach the fast endpoint while the slow one still holds the first request unanswered.
    await eventually(lambda: receiver.received("/fast"), lambda found: len(found) == 2)
    assert next(request.answered for request in await receiver.arrived("/slow")) is None
    release.set()
    await eventually(lambda: receiver.received("/slow"), lambda found: len(found) == 2)
    assert sorted(r.headers["webhook-id"] for r in await receiver.received("/slow")) == sorted(ids)


async def test_a_private_address_is_refused_at_delivery_without_the_setting(
    receiver: WebhookReceiver,
    register: Register,
    start_deliverer: StartDeliverer,
    test_redis: RedisManager,
    orchestrator_repositories: Repositories,
) -> None:
    webhook, _ = await register(receiver.url())  # allowed when it was registered
    await start_deliverer(webhook_allow_private=False)

    await publish(test_redis, event())

    outcome = await outcome_of(orchestrator_repositories, webhook.id)
    assert outcome.status is DeliveryStatus.FAILED
    assert outcome.http_status is None
    assert "127.0.0.1 is a loopback address" in (outcome.error or "")
    assert "WEBHOOK_ALLOW_PRIVATE=true" in (outcome.error or "")
    assert receiver.requests == []


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


async def test_a_named_host_is_reached_at_the_address_it_was_checked_at_under_its_own_name(
    receiver: WebhookReceiver, register: Register, start_deliverer: StartDeliverer, test_redis: RedisManager
) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    await register(f"http://localhost:{port}/named")
    await start_deliverer()

    await publish(test_redis, event())

    [delivery] = await eventually(lambda: receiver.received("/named"), lambda found: len(found) == 1)
    assert delivery.headers["Host"] == f"localhost:{port}"


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


async def test_a_webhook_deleted_between_two_tries_is_not_tried_again(
    receiver: WebhookReceiver,
    register: Register,
    start_deliverer: StartDeliverer,
    test_redis: RedisManager,
    orchestrator_repositories: Repositories,
) -> None:
    webhook, _ = await register(receiver.url())
    release = receiver.hold_next("/hook")
    receiver.answer("/hook", 503)
    await start_deliverer()
    await publish(test_redis, event())
    await eventually(receiver.arrived, lambda found: len(found) == 1)

    assert await orchestrator_repositories.webhooks.delete(webhook.id)
    release.set()  # the first try fails now: a retry would follow, were the webhook still there

    await eventually(lambda: pending(test_redis), lambda count: count == 0)
    assert [request.answered for request in await receiver.arrived()] == [503]
