"""POST/GET/DELETE /webhooks on a live orchestrator, and its deliveries to a receiver on this machine."""

from typing import Any

import httpx
import pytest
import standardwebhooks

from shared.database import Repositories
from shared.redis import EventType, TaskEvent
from shared.redis_manager import RedisManager
from tests.contract.orchestrator_support import assert_error
from tests.factories import build_task
from tests.orchestrator_harness import OrchestratorFactory
from tests.polling import eventually
from tests.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(60)

# Addresses webhooks may not go to without WEBHOOK_ALLOW_PRIVATE=true, as URLs and as the reason the answer gives.
REFUSED_URLS = [
    ("http://127.0.0.1:9/", "loopback"),
    ("http://localhost:9/", "loopback"),
    ("http://2130706433/", "loopback"),  # 127.0.0.1 as one number
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "inside the IPv6 address"),
    ("http://[2002:7f00:1::]/", "inside the IPv6 address"),  # 6to4 of 127.0.0.1
    ("https://10.1.2.3/hook", "private"),
    ("http://192.168.0.10/", "private"),
    ("http://[fd00::1]/", "private"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://100.64.0.1/", "non-public"),  # carrier-grade NAT
]


async def create(client: httpx.AsyncClient, url: str, events: list[str] | None = None, **fields: Any) -> httpx.Response:
    return await client.post("/webhooks", json={"url": url, "events": events or ["*"], **fields})


async def test_a_webhook_is_created_with_its_secret_shown_once_listed_without_it_and_deleted(
    orchestrator: OrchestratorFactory, receiver: WebhookReceiver, orchestrator_repositories: Repositories
) -> None:
    task = await orchestrator_repositories.tasks.create_task(build_task())
    async with orchestrator({}, webhook_allow_private=True) as client:
        created = await create(client, receiver.url(), ["AGENT_COMPLETED", "AGENT_FAILED"], task_id=task.id)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["secret"].startswith("whsec_")
        assert (body["url"], body["events"], body["task_id"]) == (
            receiver.url(),
            ["AGENT_COMPLETED", "AGENT_FAILED"],
            task.id,
        )

        listed = (await client.get("/webhooks")).json()["webhooks"]
        assert listed == [{key: value for key, value in body.items() if key != "secret"}]
        assert listed[0]["last_delivery"] is None
        assert body["secret"] not in (await client.get("/webhooks")).text

        assert (await client.delete(f"/webhooks/{body['id']}")).status_code == 204
        assert (await client.get("/webhooks")).json() == {"webhooks": []}
        assert_error(await client.delete(f"/webhooks/{body['id']}"), 404, body["id"])


async def test_a_registered_webhook_receives_events_and_lists_its_last_outcome(
    orchestrator: OrchestratorFactory, receiver: WebhookReceiver, test_redis: RedisManager
) -> None:
    async with orchestrator({}, webhook_allow_private=True) as client:
        created = (await create(client, receiver.url())).json()
        sent = TaskEvent(EventType.TASK_COMPLETED, "task_1", {"result": "ok"})
        [event_id] = await test_redis.events.publish([sent])

        [delivery] = await eventually(receiver.received, lambda found: len(found) == 1)
        assert standardwebhooks.Webhook(created["secret"]).verify(delivery.body, delivery.headers) == sent.as_json(
            event_id
        )

        async def last_delivery() -> Any:
            return (await client.get("/webhooks")).json()["webhooks"][0]["last_delivery"]

        outcome = await eventually(last_delivery, lambda found: found is not None)
        assert {key: outcome[key] for key in ("event_id", "status", "http_status", "error", "attempts")} == {
            "event_id": event_id,
            "status": "delivered",
            "http_status": 200,
            "error": None,
            "attempts": 1,
        }


async def test_a_url_of_a_non_public_address_is_refused_naming_the_setting(
    orchestrator: OrchestratorFactory, orchestrator_repositories: Repositories
) -> None:
    async with orchestrator({}) as client:  # one orchestrator for them all: each start costs seconds
        for url, reason in REFUSED_URLS:
            assert_error(await create(client, url), 400, reason, "WEBHOOK_ALLOW_PRIVATE=true")
    assert await orchestrator_repositories.webhooks.list_webhooks() == []


INVALID_WEBHOOKS: list[tuple[dict[str, Any], list[str]]] = [
    ({"url": "ftp://example.com/", "events": ["*"]}, ["url", "http"]),
    ({"url": "http://user:pw@127.0.0.1/", "events": ["*"]}, ["credentials"]),
    ({"url": "http://127.0.0.1/" + "a" * 2100, "events": ["*"]}, ["url"]),
    ({"url": "http://127.0.0.1/", "events": ["AGENT_EXPLODED"]}, ["unknown event type 'AGENT_EXPLODED'"]),
    ({"url": "http://127.0.0.1/", "events": []}, ["events"]),
    ({"url": "http://127.0.0.1/", "events": ["*", "AGENT_FAILED"]}, ["list it alone"]),
    ({"url": "http://127.0.0.1/", "events": ["*"], "task_id": "task_nope"}, ["no task 'task_nope'"]),
    ({"url": "http://127.0.0.1/", "events": ["*"], "secret": "mine"}, ["secret"]),
    ({"events": ["*"]}, ["url"]),
]


async def test_an_invalid_webhook_is_refused_with_a_reason(
    orchestrator: OrchestratorFactory, orchestrator_repositories: Repositories
) -> None:
    async with orchestrator({}, webhook_allow_private=True) as client:
        for fields, words in INVALID_WEBHOOKS:
            assert_error(await client.post("/webhooks", json=fields), 400, *words)
    assert await orchestrator_repositories.webhooks.list_webhooks() == []
