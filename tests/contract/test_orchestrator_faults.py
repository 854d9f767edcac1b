"""The orchestrator API under pressure and faults: a full queue (429), an unreachable database (500, 503), Redis down.

Each test serves its own orchestrator; faults are real network faults between it and the real servers (CuttableLink).
"""

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.database import DatabaseManager
from tests.contract.conftest import AppFactory
from tests.contract.orchestrator_support import TWO_STEP_TASK
from tests.network import CuttableLink

HEALTHY_WAIT_SECONDS = 20.0


async def submit(client: httpx.AsyncClient, description: str) -> httpx.Response:
    return await client.post("/tasks", params={"description": description})


async def wait_until_healthy(client: httpx.AsyncClient) -> dict[str, Any]:
    """Polls /health until it answers 200 (the pools reconnect on their own once the link is back)."""
    async with asyncio.timeout(HEALTHY_WAIT_SECONDS):
        while True:
            response = await client.get("/health")
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            await asyncio.sleep(0.1)


async def test_submit_answers_429_with_retry_after_when_the_queue_is_full(
    orchestrator_settings_factory: Callable[..., Settings],
    orchestrator_app_factory: AppFactory,
    db: DatabaseManager,
) -> None:
    async with await orchestrator_app_factory(orchestrator_settings_factory(max_queue_depth=3)) as client:
        accepted = [await submit(client, TWO_STEP_TASK) for _ in range(3)]
        assert [response.status_code for response in accepted] == [200, 200, 200]
        assert [response.json()["initial_subtasks_queued"] for response in accepted] == [1, 1, 1]

        refused = await submit(client, TWO_STEP_TASK)
        refused_body = await client.post("/tasks", json={"description": TWO_STEP_TASK})

        for response in (refused, refused_body):
            assert response.status_code == 429, response.text
            assert int(response.headers["Retry-After"]) >= 1
            body = response.json()
            assert "queue is full" in body["error"]
            assert body["detail"] == {"queued_subtasks": 3, "max_queue_depth": 3}
        assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 3
        assert await db.pool.fetchval("SELECT count(*) FROM subtasks WHERE status = 'queued'") == 3

        # Backpressure lifts as soon as the queue has room again.
        assert (await client.post(f"/tasks/{accepted[0].json()['task_id']}/cancel")).status_code == 200
        assert (await submit(client, TWO_STEP_TASK)).status_code == 200


async def test_an_unreachable_database_gives_a_503_to_retry_and_no_traceback(
    settings: Settings,
    orchestrator_settings_factory: Callable[..., Settings],
    orchestrator_app_factory: AppFactory,
    orchestrator_link_factory: Callable[[str], tuple[CuttableLink, str]],
    db: DatabaseManager,
    orchestrator_plain_tracebacks: None,
) -> None:
    link, postgres_url = orchestrator_link_factory(settings.postgres_url)
    # A long recovery interval keeps the background loops off the database while it is cut: only requests meet it.
    app_settings = orchestrator_settings_factory(postgres_url=postgres_url, recovery_interval_seconds=3600)
    async with await orchestrator_app_factory(app_settings, 60) as client:
        link.cut()
        response = await submit(client, "Summarise last week's support tickets by theme")

        assert response.status_code == 503, response.text
        body = response.json()
        assert set(body) == {"error", "detail"}
        assert body["detail"] == {"store": "PostgreSQL"}
        assert body["error"].startswith("PostgreSQL cannot be reached right now") and "retry in 5 s" in body["error"]
        assert response.headers["retry-after"] == "5"
        for leak in ("Traceback", 'File "', "asyncpg", "postgres:", "127.0.0.1"):
            assert leak not in response.text

        link.restore()
        assert (await wait_until_healthy(client))["postgres"] == {"status": "up", "error": None}
        assert (await client.get("/tasks")).json()["total"] == 0


@pytest.mark.parametrize(("down", "up"), [("postgres", "redis"), ("redis", "postgres")])
async def test_health_answers_503_naming_the_dependency_that_is_unreachable(
    down: str,
    up: str,
    settings: Settings,
    orchestrator_settings_factory: Callable[..., Settings],
    orchestrator_app_factory: AppFactory,
    orchestrator_link_factory: Callable[[str], tuple[CuttableLink, str]],
    db: DatabaseManager,
    orchestrator_plain_tracebacks: None,
) -> None:
    link, url = orchestrator_link_factory(getattr(settings, f"{down}_url"))
    app_settings = orchestrator_settings_factory(**{f"{down}_url": url}, recovery_interval_seconds=3600)
    async with await orchestrator_app_factory(app_settings) as client:
        link.cut()
        response = await client.get("/health")

        assert response.status_code == 503, response.text
        body = response.json()
        assert (body["status"], body[down]["status"], body[up]) == (
            "unhealthy",
            "down",
            {"status": "up", "error": None},
        )
        assert body[down]["error"]

        link.restore()
        assert (await wait_until_healthy(client))["status"] == "healthy"
