"""Webhook delivery: signed, retried while it may succeed, filtered, refused for private addresses, ended by DELETE."""

import pytest
import standardwebhooks

from shared.database import DatabaseManager, Repositories
from shared.redis import EventType
from shared.redis_manager import RedisManager
from shared.webhooks import DeliveryStatus
from tests.factories import build_task
from tests.integration.orchestrator.webhooks.support import (
    Register,
    StartDeliverer,
    delivered_rows,
    event,
    outcome_of,
    pending,
    publish,
    trickling_endpoint,
)
from tests.polling import eventually
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(60)


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


async def test_events_no_webhook_wants_are_acknowledged_and_sent_nowhere(
    receiver: WebhookReceiver,
    register: Register,
    start_deliverer: StartDeliverer,
    test_redis: RedisManager,
    db: DatabaseManager,
) -> None:
    await register(receiver.url("/completions"), ["TASK_COMPLETED"])
    await start_deliverer()

    await publish(test_redis, *(event(EventType.SUBTASK_QUEUED, f"task_{n}") for n in range(20)))
    [ended_id] = await publish(test_redis, event(EventType.TASK_COMPLETED))

    # Read in stream order: once the last event reached its webhook, the deliverer has read the others too.
    await eventually(lambda: receiver.received("/completions"), lambda found: len(found) == 1)
    await eventually(lambda: pending(test_redis), lambda count: count == 0)
    assert [webhook_event for _, webhook_event in await delivered_rows(db)] == [ended_id]


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


async def test_a_named_host_is_reached_at_the_address_it_was_checked_at_under_its_own_name(
    receiver: WebhookReceiver, register: Register, start_deliverer: StartDeliverer, test_redis: RedisManager
) -> None:
    port = receiver.base_url.rsplit(":", 1)[1]
    await register(f"http://localhost:{port}/named")
    await start_deliverer()

    await publish(test_redis, event())

    [delivery] = await eventually(lambda: receiver.received("/named"), lambda found: len(found) == 1)
    assert delivery.headers["Host"] == f"localhost:{port}"


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


async def test_an_endpoint_that_trickles_its_answer_is_cut_off_at_the_timeout(
    register: Register,
    start_deliverer: StartDeliverer,
    test_redis: RedisManager,
    orchestrator_repositories: Repositories,
) -> None:
    # Each byte comes within the timeout, so a timeout per read never fires: the whole request must be bounded, or
    # one such endpoint holds a delivery slot as long as it likes.
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Padding: " + b"x" * 40 + b"\r\n\r\n"
    async with trickling_endpoint(answer, pause_seconds=0.1) as base_url:
        webhook, _ = await register(f"{base_url}/hook")
        await start_deliverer(webhook_timeout_seconds=1.0, webhook_max_attempts=1)

        await publish(test_redis, event())

        outcome = await outcome_of(orchestrator_repositories, webhook.id)
    assert (outcome.status, outcome.http_status) == (DeliveryStatus.FAILED, None)
    assert outcome.error == "no answer within 1 s"
