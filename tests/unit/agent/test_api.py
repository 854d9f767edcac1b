"""POST /execute runs only assignments the orchestrator signed for this agent, unexpired and current: anything else
is refused before a slot, a row, a workspace or a result exists."""

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.fleet_trust import ASSIGNMENT_LIFETIME_SECONDS, FleetTrust
from shared.models import TaskExecutionRequest
from shared.redis_manager import RedisManager
from tests.polling import eventually
from tests.unit.agent.fixtures import OfferFactory, serving

Forgery = Callable[[TaskExecutionRequest, Settings], TaskExecutionRequest]


@pytest.fixture
async def agent(agent_settings: Settings, db: DatabaseManager) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with serving(agent_settings) as served:
        yield served


def unsigned(request: TaskExecutionRequest, settings: Settings) -> TaskExecutionRequest:
    return request.model_copy(update={"assignment": None})


def signed_with_another_secret(request: TaskExecutionRequest, settings: Settings) -> TaskExecutionRequest:
    other = FleetTrust(SecretStr("not-this-fleets-secret-but-long-enough-000"), settings.tenant_id)
    return request.model_copy(update={"assignment": other.sign_offer(request)})


def another_prompt(request: TaskExecutionRequest, settings: Settings) -> TaskExecutionRequest:
    subtask = request.subtask.model_copy(update={"description": "List every table of the data source"})
    return request.model_copy(update={"subtask": subtask})


def expired(request: TaskExecutionRequest, settings: Settings) -> TaskExecutionRequest:
    long_ago = time.time() - ASSIGNMENT_LIFETIME_SECONDS - 1
    return request.model_copy(
        update={"assignment": FleetTrust.from_settings(settings).sign_offer(request, now=long_ago)}
    )


async def assert_nothing_ran(
    app: FastAPI, request: TaskExecutionRequest, settings: Settings, db: DatabaseManager, redis: RedisManager
) -> None:
    """No slot taken, no acceptance in PostgreSQL, no audit row, no workspace, no result."""
    runner: SubtaskRunner = app.state.runner
    assert runner.is_available and runner.current_tasks == []
    repos = db.repositories()
    assert await Repositories(db.pool, settings.tenant_id).audit.list_agent_logs(task_id=request.task_id) == []
    assert not (Path(settings.shared_files_dir) / request.task_id).exists()
    assert await redis.result_queue.length() == 0
    # Only an offer nobody accepted can still be taken back.
    assert request.subtask.delivery_token is not None
    assert await repos.subtasks.unclaim(request.subtask.id, request.subtask.delivery_token) is not None


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (unsigned, "no assignment"),
        (signed_with_another_secret, "signature does not match"),
        (another_prompt, "not what was assigned"),
        (expired, "expired"),
    ],
)
async def test_an_offer_the_orchestrator_did_not_sign_so_is_refused_and_nothing_runs(
    agent: tuple[FastAPI, httpx.AsyncClient],
    agent_settings: Settings,
    db: DatabaseManager,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    forge: Forgery,
    reason: str,
) -> None:
    app, client = agent
    genuine = await offered_request()

    answer = await client.post("/execute", json=forge(genuine, agent_settings).model_dump(mode="json"))

    assert answer.status_code == 401, answer.text
    assert reason in answer.json()["error"]
    await assert_nothing_ran(app, genuine, agent_settings, db, agent_redis)


async def test_an_offer_signed_for_another_agent_is_refused_and_nothing_runs(
    agent: tuple[FastAPI, httpx.AsyncClient],
    agent_settings: Settings,
    db: DatabaseManager,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
) -> None:
    app, client = agent
    theirs = await offered_request(agent_id="agent9")  # genuinely signed, for agent9

    answer = await client.post("/execute", json=theirs.model_dump(mode="json"))

    assert answer.status_code == 401, answer.text
    assert "for agent 'agent9'" in answer.json()["error"]
    await assert_nothing_ran(app, theirs, agent_settings, db, agent_redis)


async def test_a_replayed_offer_of_a_superseded_attempt_is_refused_and_the_current_one_runs(
    agent: tuple[FastAPI, httpx.AsyncClient],
    agent_settings: Settings,
    db: DatabaseManager,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
) -> None:
    app, client = agent
    old = await offered_request()  # signed and unexpired: only its delivery token is no longer current
    repos = db.repositories()
    assert old.subtask.delivery_token is not None
    assert await repos.subtasks.unclaim(old.subtask.id, old.subtask.delivery_token) is not None  # taken back
    reclaimed = await repos.subtasks.claim(old.subtask.id, old.subtask.attempt_count, agent_settings.agent_id)
    assert reclaimed is not None and reclaimed.delivery_token != old.subtask.delivery_token
    current = old.model_copy(update={"subtask": reclaimed})
    current.assignment = FleetTrust.from_settings(agent_settings).sign_offer(current)

    replayed = await client.post("/execute", json=old.model_dump(mode="json"))

    assert replayed.status_code == 409, replayed.text
    runner: SubtaskRunner = app.state.runner
    assert runner.is_available and runner.current_tasks == []
    audit = Repositories(db.pool, agent_settings.tenant_id).audit  # the agent logs under its own tenant
    assert await audit.list_agent_logs(task_id=old.task_id) == []
    assert await agent_redis.result_queue.length() == 0

    accepted = await client.post("/execute", json=current.model_dump(mode="json"))

    assert accepted.status_code == 200, accepted.text
    delivery = await agent_redis.dequeue_result("test-consumer", 10.0)
    assert delivery is not None
    result = delivery[1]
    assert (result.delivery_token, result.assignment) == (reclaimed.delivery_token, current.assignment)
    assert FleetTrust.from_settings(agent_settings).result_problem(result) is None
    await eventually(lambda: audit.list_agent_logs(task_id=old.task_id), lambda logs: len(logs) == 2)
