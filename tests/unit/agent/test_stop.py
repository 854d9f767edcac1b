"""POST /stop: the fleet's signed order to stop one attempt this agent runs ends that attempt at once, reported failed
and not retryable with the reason, and frees its slot; an order for an attempt it does not run is a 404 that changes
nothing, and a forged order, or another agent's, is refused."""

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.database import DatabaseManager
from shared.fleet_trust import ASSIGNMENT_LIFETIME_SECONDS, FleetTrust
from shared.models import ResultStatus, RunningAttempt, TaskExecutionRequest
from shared.redis_manager import RedisManager
from tests.unit.agent.fixtures import OfferFactory, SettingsFactory, serving

REASON = "deadline exceeded: the task had to end by 2026-12-02T10:00:00+00:00 (deadline_seconds), and had not"
Agent = tuple[FastAPI, httpx.AsyncClient]


@pytest.fixture
async def agent(agent_settings_factory: SettingsFactory, db: DatabaseManager) -> AsyncIterator[Agent]:
    """An agent whose subtasks take long (stub executor), with room for two."""
    settings = agent_settings_factory(agent_stub_delay_seconds=60, agent_concurrency=2)
    async with serving(settings) as served:
        yield served


def runner_of(app: FastAPI) -> SubtaskRunner:
    runner: SubtaskRunner = app.state.runner
    return runner


def attempt_of(request: TaskExecutionRequest, **changes: Any) -> RunningAttempt:
    subtask = request.subtask
    attempt = RunningAttempt(
        task_id=request.task_id,
        subtask_id=subtask.id,
        attempt=subtask.attempt_count,
        delivery_token=subtask.delivery_token or "",
        agent_id=subtask.assigned_agent or "",
    )
    return attempt.model_copy(update=changes)


def stop_command(app: FastAPI, request: TaskExecutionRequest, *, now: float | None = None, **changes: Any) -> Any:
    """The orchestrator's signed order to stop the attempt `request` offered, as JSON."""
    settings: Settings = app.state.settings
    command = FleetTrust.from_settings(settings).sign_stop(attempt_of(request, **changes), REASON, now=now)
    return command.model_dump(mode="json")


async def running(client: httpx.AsyncClient, offered_request: OfferFactory) -> TaskExecutionRequest:
    request = await offered_request()
    accepted = await client.post("/execute", json=request.model_dump(mode="json"))
    assert accepted.status_code == 200, accepted.text
    return request


async def test_a_signed_stop_ends_the_attempt_not_retryable_with_the_reason_and_frees_its_slot(
    agent: Agent, agent_settings: Settings, agent_redis: RedisManager, offered_request: OfferFactory
) -> None:
    app, client = agent
    stopped, other = await running(client, offered_request), await running(client, offered_request)

    answer = await client.post("/stop", json=stop_command(app, stopped))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "agent_id": agent_settings.agent_id,
        "subtask_id": stopped.subtask.id,
        "attempt": 1,
        "stopping": True,
    }
    delivery = await agent_redis.dequeue_result("test-consumer", 10.0)
    assert delivery is not None
    result = delivery[1]
    assert (result.subtask_id, result.status, result.retryable) == (stopped.subtask.id, ResultStatus.FAILED, False)
    assert result.error == f"stopped by the orchestrator: {REASON}"
    # Only that attempt stopped: the other runs on, and the freed slot takes new work.
    assert runner_of(app).current_tasks == [other.subtask.id]
    assert (await client.get("/health")).json()["is_available"] is True
    again = await client.post("/stop", json=stop_command(app, stopped))
    assert again.status_code == 404, again.text
    assert "runs no attempt 1" in again.json()["error"]


async def test_a_stop_for_another_offer_of_the_attempt_or_one_never_run_here_is_a_404_and_stops_nothing(
    agent: Agent, agent_redis: RedisManager, offered_request: OfferFactory
) -> None:
    app, client = agent
    request = await running(client, offered_request)
    never_run = await offered_request()

    for command in (
        stop_command(app, request, delivery_token="another-offer"),
        stop_command(app, request, attempt=2),
        stop_command(app, never_run),
    ):
        answer = await client.post("/stop", json=command)
        assert answer.status_code == 404, answer.text

    assert runner_of(app).current_tasks == [request.subtask.id]
    assert await agent_redis.result_queue.length() == 0


def another_fleets(app: FastAPI, request: TaskExecutionRequest) -> Any:
    settings: Settings = app.state.settings
    other = FleetTrust(SecretStr("not-this-fleets-secret-but-long-enough-000"), settings.tenant_id)
    return other.sign_stop(attempt_of(request), REASON).model_dump(mode="json")


def unsigned(app: FastAPI, request: TaskExecutionRequest) -> Any:
    return {**stop_command(app, request), "signature": "0" * 64}


def another_reason(app: FastAPI, request: TaskExecutionRequest) -> Any:
    return {**stop_command(app, request), "reason": "whatever a stranger would say"}


def another_agents(app: FastAPI, request: TaskExecutionRequest) -> Any:
    return stop_command(app, request, agent_id="agent9")


def expired(app: FastAPI, request: TaskExecutionRequest) -> Any:
    return stop_command(app, request, now=time.time() - ASSIGNMENT_LIFETIME_SECONDS - 1)


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (another_fleets, "not signed with this fleet's FLEET_SECRET"),
        (unsigned, "not signed with this fleet's FLEET_SECRET"),
        (another_reason, "not signed with this fleet's FLEET_SECRET"),
        (another_agents, "for agent 'agent9'"),
        (expired, "expired"),
    ],
)
async def test_a_stop_the_fleet_did_not_sign_for_this_agent_is_refused_and_the_attempt_runs_on(
    agent: Agent,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    forge: Callable[[FastAPI, TaskExecutionRequest], Any],
    reason: str,
) -> None:
    app, client = agent
    request = await running(client, offered_request)

    answer = await client.post("/stop", json=forge(app, request))

    assert answer.status_code == 401, answer.text
    assert reason in answer.json()["error"]
    assert runner_of(app).current_tasks == [request.subtask.id]
    assert await agent_redis.result_queue.length() == 0
