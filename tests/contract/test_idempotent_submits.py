"""POST /tasks with an Idempotency-Key against a live orchestrator: one task per key and body, however often and however
concurrently it is sent; another body is a 409; a failed or abandoned first request does not hold the key.

Each test serves its own orchestrator against a simulator of its own whose request log counts the decompositions.
"""

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.idempotent_submits import request_fingerprint
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import TaskCreateRequest
from shared.redis_manager import RedisManager
from simulator.testing import SimulatorHandle, running_simulator
from tests.contract.conftest import AppFactory, LinkFactory
from tests.contract.orchestrator_support import assert_error
from tests.polling import eventually

SLOW_TASK = "Plan the slow idempotent rollout of the reporting service"
# Planning takes this long, so duplicates sent together arrive while the first is still being planned.
PLAN_DELAY_MS = 800
SCENARIOS: dict[str, Any] = {
    "plans": [
        {
            "name": "slow-plan",
            "match": "(?i)slow idempotent rollout",
            "delay_ms": PLAN_DELAY_MS,
            "plan": {
                "subtasks": [
                    {"id": "s1", "description": "Roll it out", "required_capabilities": ["DATA_ANALYSIS"]},
                ]
            },
        }
    ]
}
ServeOrchestrator = Callable[..., Any]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with running_simulator(SCENARIOS, request_log=tmp_path / "requests.jsonl") as handle:
        yield handle


@pytest.fixture
def idempotent_settings(
    orchestrator_settings_factory: Callable[..., Settings], simulator: SimulatorHandle
) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        return orchestrator_settings_factory(anthropic_base_url=simulator.base_url, **overrides)

    return build


def decompositions(simulator: SimulatorHandle) -> int:
    """The forced-tool calls the simulator answered: one per plan asked for."""
    return sum(1 for request in simulator.requests() if request["tool_choice"])


async def count_tasks(db: DatabaseManager, tenant_id: str) -> int:
    count: int = await db.pool.fetchval("SELECT count(*) FROM tasks WHERE tenant_id = $1", tenant_id)
    return count


def submit(client: httpx.AsyncClient, key: str, description: str = SLOW_TASK, **params: str) -> Any:
    return client.post("/tasks", params={"description": description, **params}, headers={"Idempotency-Key": key})


async def test_twenty_concurrent_submits_with_one_key_create_one_task(
    idempotent_settings: Callable[..., Settings],
    orchestrator_app_factory: AppFactory,
    simulator: SimulatorHandle,
    db: DatabaseManager,
) -> None:
    settings = idempotent_settings()
    async with await orchestrator_app_factory(settings) as client:
        # The key is looked up once and cached: the burst below then needs no PostgreSQL connection per request, on
        # a server other test runs share.
        assert (await client.get("/tasks")).status_code == 200
        responses = await asyncio.gather(*(submit(client, "order-7f3a") for _ in range(20)))

    assert [response.status_code for response in responses] == [200] * 20, [r.text for r in responses]
    assert len({response.json()["task_id"] for response in responses}) == 1
    assert len({response.text for response in responses}) == 1  # the same answer, trace id included
    assert sum(response.headers.get("Idempotent-Replayed") == "true" for response in responses) == 19
    assert await count_tasks(db, settings.tenant_id) == 1
    assert decompositions(simulator) == 1


async def test_a_duplicate_sent_while_the_first_is_planned_waits_and_gets_its_task(
    idempotent_settings: Callable[..., Settings],
    orchestrator_app_factory: AppFactory,
    simulator: SimulatorHandle,
    db: DatabaseManager,
) -> None:
    settings = idempotent_settings()
    redis = RedisManager(settings)
    await redis.connect()
    try:
        async with await orchestrator_app_factory(settings) as client:
            first = asyncio.ensure_future(submit(client, "rollout-1", user_id="ana"))
            # The first request holds the key and is still planning: its record has no answer yet.
            record = await eventually(lambda: redis.idempotency.read("rollout-1"), lambda found: found is not None)
            assert record is not None and record.response is None
            # The same request in its JSON form is the same request.
            duplicate = await client.post(
                "/tasks", json={"description": SLOW_TASK, "user_id": "ana"}, headers={"Idempotency-Key": "rollout-1"}
            )
            original = await first
    finally:
        await redis.disconnect()

    assert (original.status_code, duplicate.status_code) == (200, 200), duplicate.text
    assert duplicate.json() == original.json()
    assert duplicate.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in original.headers
    assert await count_tasks(db, settings.tenant_id) == 1
    assert decompositions(simulator) == 1


async def test_the_same_key_with_another_body_is_a_conflict(
    idempotent_settings: Callable[..., Settings], orchestrator_app_factory: AppFactory, db: DatabaseManager
) -> None:
    settings = idempotent_settings()
    async with await orchestrator_app_factory(settings) as client:
        assert (await submit(client, "key-1")).status_code == 200
        other_user = await submit(client, "key-1", user_id="someone-else")
        other_type = await submit(client, "key-1", task_type="RESEARCH")

    for response in (other_user, other_type):
        assert_error(response, 409, "Idempotency-Key was used for another request")
    assert await count_tasks(db, settings.tenant_id) == 1


async def test_a_key_is_free_again_after_a_failed_first_submit(
    idempotent_settings: Callable[..., Settings], orchestrator_app_factory: AppFactory, db: DatabaseManager
) -> None:
    # A lease far longer than the test: only the release on failure frees the key for the retry.
    settings = idempotent_settings(max_queue_depth=1, idempotency_lease_seconds=3600)
    async with await orchestrator_app_factory(settings) as client:
        filler = (await client.post("/tasks", params={"description": SLOW_TASK})).json()["task_id"]
        refused = await submit(client, "retry-me")
        assert_error(refused, 429, "queue is full")

        assert (await client.post(f"/tasks/{filler}/cancel")).status_code == 200
        retried = await submit(client, "retry-me")

    assert retried.status_code == 200, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert await count_tasks(db, settings.tenant_id) == 2


async def test_a_key_names_a_new_task_once_its_ttl_has_passed(
    idempotent_settings: Callable[..., Settings], orchestrator_app_factory: AppFactory, db: DatabaseManager
) -> None:
    settings = idempotent_settings(idempotency_ttl_seconds=1)
    redis = RedisManager(settings)
    await redis.connect()
    try:
        async with await orchestrator_app_factory(settings) as client:
            first = await submit(client, "short-lived")
            await eventually(lambda: redis.idempotency.read("short-lived"), lambda record: record is None)
            second = await submit(client, "short-lived", user_id="another-body-is-fine-now")
    finally:
        await redis.disconnect()

    assert (first.status_code, second.status_code) == (200, 200), second.text
    assert first.json()["task_id"] != second.json()["task_id"]
    assert await count_tasks(db, settings.tenant_id) == 2


async def test_a_claim_whose_owner_died_is_taken_over_after_its_lease(
    idempotent_settings: Callable[..., Settings],
    orchestrator_app_factory: AppFactory,
    simulator: SimulatorHandle,
    db: DatabaseManager,
) -> None:
    settings = idempotent_settings(idempotency_lease_seconds=1)
    redis = RedisManager(settings)
    await redis.connect()
    try:
        # An orchestrator claimed the key for this very request and died planning it: nobody renews its lease.
        fingerprint = request_fingerprint(TaskCreateRequest(description=SLOW_TASK))
        assert await redis.idempotency.claim("orphaned", fingerprint, "dead-orchestrator", lease_seconds=1)
        async with await orchestrator_app_factory(settings) as client:
            response = await submit(client, "orphaned")
        record = await redis.idempotency.read("orphaned")
    finally:
        await redis.disconnect()

    assert response.status_code == 200, response.text
    assert "Idempotent-Replayed" not in response.headers
    assert record is not None and record.owner != "dead-orchestrator"
    assert record.response is not None and response.json()["task_id"] in record.response
    assert await count_tasks(db, settings.tenant_id) == 1


@pytest.mark.parametrize("key", ["", "has space", "tab\there", "é-not-ascii", "k" * 256])
async def test_an_unusable_key_is_refused_with_what_a_key_may_hold(
    key: str, orchestrator_client: httpx.AsyncClient, db: DatabaseManager
) -> None:
    response = await orchestrator_client.post(
        "/tasks", params={"description": SLOW_TASK}, headers={"Idempotency-Key": key.encode()}
    )

    assert_error(response, 400, "Idempotency-Key must be 1-255 visible ASCII characters")
    assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 0


async def test_with_redis_down_a_keyed_submit_answers_503_and_an_unkeyed_one_goes_through(
    settings: Settings,
    idempotent_settings: Callable[..., Settings],
    orchestrator_app_factory: AppFactory,
    orchestrator_link_factory: LinkFactory,
    db: DatabaseManager,
    orchestrator_plain_tracebacks: None,
) -> None:
    link, redis_url = orchestrator_link_factory(settings.redis_url)
    app_settings = idempotent_settings(redis_url=redis_url, recovery_interval_seconds=3600)
    async with await orchestrator_app_factory(app_settings, 60) as client:
        link.cut()
        keyed = await submit(client, "during-outage")
        unkeyed = await client.post("/tasks", params={"description": SLOW_TASK})

    assert_error(keyed, 503, "Redis cannot be reached")
    assert unkeyed.status_code == 200, unkeyed.text
    assert await count_tasks(db, app_settings.tenant_id) == 1
