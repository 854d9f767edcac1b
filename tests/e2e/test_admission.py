"""Backpressure through HTTP, against a real orchestrator process: concurrent submits at the limit never overshoot it.

No agent runs, so nothing leaves the queue: what is admitted stays queued, and the rest must be refused with 429 and
a Retry-After, however the 50 requests interleave inside the orchestrator.
"""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from shared.config import Settings
from shared.database import DatabaseManager
from shared.database.task_search import TaskSearch
from shared.local_fleet import LocalFleet, fleet_environment
from tests.e2e.conftest import api_client, e2e_scenarios

pytestmark = pytest.mark.e2e

MAX_QUEUE_DEPTH = 10
SUBMITS = 50


@pytest.fixture(scope="module")
def unattended_orchestrator(fleet_settings: Settings, fleet_settings_dir: Path) -> Iterator[LocalFleet]:
    """The simulator and an orchestrator with a small queue limit, and no agent to drain its queue."""
    work = fleet_settings_dir
    base_env = {
        **fleet_environment(fleet_settings.postgres_url, fleet_settings.redis_url, fleet_settings.tenant_id, work),
        "MAX_QUEUE_DEPTH": str(MAX_QUEUE_DEPTH),
        "ANTHROPIC_MAX_RETRIES": "0",
    }
    with LocalFleet(base_env, work / "logs") as local:
        simulator = local.add_simulator(e2e_scenarios(work / "scenarios.yaml"))
        local.start("simulator")
        local.base_env["ANTHROPIC_BASE_URL"] = simulator.url
        local.add_orchestrator()
        local.start("orchestrator")
        yield local


@pytest.fixture
async def unattended_api(unattended_orchestrator: LocalFleet) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(unattended_orchestrator) as client:
        yield client


async def test_fifty_concurrent_submits_at_the_limit_never_overshoot_it(
    unattended_api: httpx.AsyncClient, fleet_database: DatabaseManager
) -> None:
    params = {"description": "Calculate factorial of 10", "user_id": "e2e"}  # one subtask, queued at once

    answers = await asyncio.gather(*(unattended_api.post("/tasks", params=params) for _ in range(SUBMITS)))

    codes = Counter(answer.status_code for answer in answers)
    assert set(codes) <= {200, 429}, [answer.text for answer in answers if answer.status_code not in (200, 429)]
    accepted = [answer.json() for answer in answers if answer.status_code == 200]
    queued_by_accepted = sum(created["initial_subtasks_queued"] for created in accepted)
    assert queued_by_accepted == MAX_QUEUE_DEPTH, codes  # up to the limit, and not one beyond it
    for refused in (answer for answer in answers if answer.status_code == 429):
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["detail"]["max_queue_depth"] == MAX_QUEUE_DEPTH
    assert await fleet_database.repositories().subtasks.count_queued() == MAX_QUEUE_DEPTH
    assert await fleet_database.repositories().tasks.count_tasks(TaskSearch(user_id="e2e")) == len(accepted)
