"""POST /drain: only the fleet's signed order for this very agent process drains it; a drained agent refuses offers
(409), stops what it runs and heartbeats `draining`. Anything else is refused and changes nothing."""

import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.database import DatabaseManager
from shared.fleet_trust import ASSIGNMENT_LIFETIME_SECONDS, FleetTrust
from shared.models import AgentState, ResultStatus
from shared.redis_manager import RedisManager
from tests.unit.agent.fixtures import OfferFactory, SettingsFactory, registered_until, serving

REASON = "agent agent1 was declared failed by an operator"
Agent = tuple[FastAPI, httpx.AsyncClient]


@pytest.fixture
async def agent(agent_settings_factory: SettingsFactory, db: DatabaseManager) -> AsyncIterator[Agent]:
    """An agent whose subtasks take long (stub executor), with room for two."""
    settings = agent_settings_factory(agent_stub_delay_seconds=60, agent_concurrency=2, heartbeat_interval_seconds=0.2)
    async with serving(settings) as served:
        yield served


def runner_of(app: FastAPI) -> SubtaskRunner:
    runner: SubtaskRunner = app.state.runner
    return runner


def drain_command(app: FastAPI, **changes: Any) -> dict[str, Any]:
    """The orchestrator's signed order to drain this agent process, as JSON."""
    settings: Settings = app.state.settings
    command = FleetTrust.from_settings(settings).sign_drain(settings.agent_id, runner_of(app).started_at, REASON)
    return command.model_copy(update=changes).model_dump(mode="json")


async def running(client: httpx.AsyncClient, offered_request: OfferFactory) -> str:
    request = await offered_request()
    accepted = await client.post("/execute", json=request.model_dump(mode="json"))
    assert accepted.status_code == 200, accepted.text
    return request.subtask.id


async def test_a_signed_drain_stops_running_attempts_refuses_offers_and_heartbeats_draining(
    agent: Agent, agent_settings: Settings, agent_redis: RedisManager, offered_request: OfferFactory
) -> None:
    app, client = agent
    subtask_id = await running(client, offered_request)

    answer = await client.post("/drain", json=drain_command(app))

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"agent_id": agent_settings.agent_id, "state": "draining", "attempts_stopped": 1}
    delivery = await agent_redis.dequeue_result("test-consumer", 10.0)
    assert delivery is not None
    stopped = delivery[1]
    assert (stopped.subtask_id, stopped.status, stopped.retryable) == (subtask_id, ResultStatus.FAILED, True)
    assert stopped.error == f"agent drained: {REASON}"
    refused = await client.post("/execute", json=(await offered_request()).model_dump(mode="json"))
    assert refused.status_code == 409, refused.text
    assert "told to drain" in refused.json()["error"] and REASON in refused.json()["error"]
    assert (await client.get("/health")).json()["is_available"] is False
    status = await registered_until(agent_redis, agent_settings.agent_id, lambda s: s.state is AgentState.DRAINING)
    assert status.is_available is False and status.current_tasks == []


async def test_draining_again_stops_nothing_more(agent: Agent, offered_request: OfferFactory) -> None:
    app, client = agent
    await running(client, offered_request)
    first = await client.post("/drain", json=drain_command(app))

    again = await client.post("/drain", json=drain_command(app))

    assert (first.json()["attempts_stopped"], again.status_code, again.json()["attempts_stopped"]) == (1, 200, 0)


def another_fleets(app: FastAPI, command: dict[str, Any]) -> dict[str, Any]:
    settings: Settings = app.state.settings
    other = FleetTrust(SecretStr("not-this-fleets-secret-but-long-enough-000"), settings.tenant_id)
    return other.sign_drain(settings.agent_id, runner_of(app).started_at, REASON).model_dump(mode="json")


def unsigned(app: FastAPI, command: dict[str, Any]) -> dict[str, Any]:
    return {**command, "signature": "0" * 64}


def another_agents(app: FastAPI, command: dict[str, Any]) -> dict[str, Any]:
    settings: Settings = app.state.settings
    trust = FleetTrust.from_settings(settings)
    return trust.sign_drain("agent9", runner_of(app).started_at, REASON).model_dump(mode="json")


def an_earlier_processes(app: FastAPI, command: dict[str, Any]) -> dict[str, Any]:
    settings: Settings = app.state.settings
    earlier = runner_of(app).started_at - timedelta(minutes=3)
    return FleetTrust.from_settings(settings).sign_drain(settings.agent_id, earlier, REASON).model_dump(mode="json")


def expired(app: FastAPI, command: dict[str, Any]) -> dict[str, Any]:
    settings: Settings = app.state.settings
    long_ago = time.time() - ASSIGNMENT_LIFETIME_SECONDS - 1
    trust = FleetTrust.from_settings(settings)
    return trust.sign_drain(settings.agent_id, runner_of(app).started_at, REASON, now=long_ago).model_dump(mode="json")


def another_reason(app: FastAPI, command: dict[str, Any]) -> dict[str, Any]:
    return {**command, "reason": "whatever a stranger would say"}


Forgery = Callable[[FastAPI, dict[str, Any]], dict[str, Any]]


@pytest.mark.parametrize(
    ("forge", "reason"),
    [
        (another_fleets, "not signed with this fleet's FLEET_SECRET"),
        (unsigned, "not signed with this fleet's FLEET_SECRET"),
        (another_reason, "not signed with this fleet's FLEET_SECRET"),
        (another_agents, "for agent 'agent9'"),
        (an_earlier_processes, "earlier process"),
        (expired, "expired"),
    ],
)
async def test_a_drain_the_fleet_did_not_sign_for_this_process_is_refused_and_the_agent_works_on(
    agent: Agent,
    agent_redis: RedisManager,
    agent_settings: Settings,
    offered_request: OfferFactory,
    forge: Forgery,
    reason: str,
) -> None:
    app, client = agent
    subtask_id = await running(client, offered_request)

    answer = await client.post("/drain", json=forge(app, drain_command(app)))

    assert answer.status_code == 401, answer.text
    assert reason in answer.json()["error"]
    runner = runner_of(app)
    assert runner.state is AgentState.ACTIVE and runner.current_tasks == [subtask_id]
    assert await agent_redis.result_queue.length() == 0
    another = await client.post("/execute", json=(await offered_request()).model_dump(mode="json"))
    assert another.status_code == 200, another.text


async def test_a_drain_command_missing_its_signature_is_a_400(agent: Agent) -> None:
    app, client = agent
    command = drain_command(app)
    del command["signature"]

    answer = await client.post("/drain", json=command)

    assert answer.status_code == 400, answer.text
    assert "signature" in answer.json()["error"]
    assert runner_of(app).state is AgentState.ACTIVE
