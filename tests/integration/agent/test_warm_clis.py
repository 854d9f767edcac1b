"""Warm CLIs (agent/executors/warm_pool.py) with the real SDK, the real CLI and the simulator over HTTP: attempts run
on CLIs started ahead of need, and nothing of one attempt reaches any request of the next, whether each process
serves one attempt or several (a fresh session each); a warm CLI that dies while it waits is replaced."""

import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from fastapi import FastAPI

from agent.executors.warm_pool import WarmCliPool
from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, ResultStatus, SubTaskResult, TaskExecutionRequest
from shared.redis_manager import RedisManager
from shared.roles import LoadedRole
from simulator.testing import SimulatorHandle, running_simulator
from tests.integration.agent.test_sdk_execution import FACTORIAL, SCENARIOS, run_subtask
from tests.polling import eventually
from tests.unit.agent.fixtures import OfferFactory, SettingsFactory, serving

pytestmark = pytest.mark.sdk

ROLE = AgentCapability.DATABASE_OPERATIONS


@pytest.fixture
def simulator(tmp_path: Path) -> Any:
    with running_simulator(SCENARIOS, request_log=tmp_path / "requests.jsonl") as handle:
        yield handle


WarmAgent = Callable[..., Any]


@pytest.fixture
def warm_agent(agent_settings_factory: SettingsFactory, simulator: SimulatorHandle) -> WarmAgent:
    """An SDK agent serving one role, with its warm pool and that role; `warm_agent(**settings)` serves it."""

    @asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, WarmCliPool, LoadedRole]]:
        settings = agent_settings_factory(
            agent_executor="sdk",
            anthropic_base_url=simulator.base_url,
            claude_simulated=True,
            agent_capabilities=[ROLE],
            **overrides,
        )
        app: FastAPI
        async with serving(settings) as (app, client):
            pool = app.state.executor.warm_pool
            assert pool is not None
            yield client, pool, app.state.roles[ROLE]
        assert cli_processes() == [], "the agent stopped with CLIs still running"

    return serve


def cli_processes() -> list[psutil.Process]:
    return [child for child in psutil.Process().children(recursive=True) if child.name() == "claude"]


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def gone(pid: int) -> None:
    async def probe() -> bool:
        return running(pid)

    await eventually(probe, lambda alive: not alive)


async def run_factorial(
    client: httpx.AsyncClient, redis: RedisManager, offered_request: OfferFactory
) -> tuple[TaskExecutionRequest, SubTaskResult]:
    request = await offered_request(FACTORIAL, required_capabilities=[ROLE])
    result = await run_subtask(client, redis, request)
    assert result.status is ResultStatus.COMPLETED, result.error
    assert result.output == "factorial_10 = 3628800"
    return request, result


async def completion_timings(db: DatabaseManager, tenant: str, task_id: str) -> dict[str, Any]:
    audit = Repositories(db.pool, tenant).audit

    async def probe() -> list[Any]:
        return [entry for entry in await audit.list_agent_logs(task_id=task_id) if entry.message == "subtask completed"]

    (completed,) = await eventually(probe, bool)
    return dict(completed.metadata)


def session_of(request: dict[str, Any]) -> str | None:
    """The session the CLI names in a request's `metadata.user_id` (a JSON object, or text ending in the id)."""
    user_id = str((request.get("metadata") or {}).get("user_id") or "")
    try:
        found = json.loads(user_id).get("session_id")
        return str(found) if found else None
    except (ValueError, AttributeError):
        return user_id.rsplit("session_", 1)[-1] or None


def assert_isolated(
    simulator: SimulatorHandle,
    attempts: list[tuple[TaskExecutionRequest, SubTaskResult]],
) -> None:
    """Each attempt's requests are in its own session, and none of them holds anything of another attempt."""
    requests = [entry for entry in simulator.requests() if entry["path"].startswith("/v1/messages?")]
    sessions = [result.claude_session_id for _, result in attempts]
    assert len(set(sessions)) == len(attempts) and all(sessions)
    by_session = {session: [entry for entry in requests if session_of(entry) == session] for session in sessions}
    # Three model turns each (the database query, the file, the answer), every request of an attempt in its session.
    assert [len(entries) for entries in by_session.values()] == [3] * len(attempts)
    assert sum(len(entries) for entries in by_session.values()) == len(requests)
    for (request, _), session in zip(attempts, sessions, strict=True):
        own = by_session[session]
        # A fresh conversation: the first request holds the attempt's prompt only, as a cold CLI's would.
        first_user = [message for message in own[0]["messages"] if message["role"] == "user"]
        assert len(first_user) == 1 and request.subtask.id in json.dumps(first_user)
        marks = {request.task_id, request.subtask.id, str(request.subtask.delivery_token)}
        marks |= {block["id"] for entry in own for block in tool_uses(entry)}
        for other in requests:
            if session_of(other) != session:
                text = json.dumps(other["messages"])
                assert not [mark for mark in marks if mark in text], "a request of another attempt holds this one's"


def tool_uses(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        block
        for message in request["messages"]
        if message["role"] == "assistant" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_use"
    ]


async def test_two_attempts_back_to_back_each_on_a_warm_cli_of_its_own_share_nothing(
    warm_agent: WarmAgent,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    simulator: SimulatorHandle,
    db: DatabaseManager,
    agent_tenant: str,
) -> None:
    async with warm_agent(agent_warm_cli_attempts=1) as (client, pool, role):
        (first_pid,) = await pool.wait_ready(role)
        first = await run_factorial(client, agent_redis, offered_request)
        # The process that served the first attempt is gone; a new one waits for the next.
        await gone(first_pid)
        (second_pid,) = await pool.wait_ready(role)
        assert second_pid != first_pid
        second = await run_factorial(client, agent_redis, offered_request)
        await gone(second_pid)

    for request, _ in (first, second):
        timings = await completion_timings(db, agent_tenant, request.task_id)
        assert "warm_cli_wait_seconds" in timings  # served by a warm CLI, not one started for it
    assert_isolated(simulator, [first, second])


async def test_one_warm_cli_serves_attempts_in_fresh_sessions_that_share_nothing(
    warm_agent: WarmAgent,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    simulator: SimulatorHandle,
    db: DatabaseManager,
    agent_tenant: str,
) -> None:
    async with warm_agent(agent_warm_cli_attempts=2) as (client, pool, role):
        (pid,) = await pool.wait_ready(role)
        first = await run_factorial(client, agent_redis, offered_request)
        assert await pool.wait_ready(role) == [pid]  # reset (/clear) and back, the same process
        second = await run_factorial(client, agent_redis, offered_request)
        # Its second attempt was its last: it is replaced.
        await gone(pid)
        (replacement,) = await pool.wait_ready(role)
        assert replacement != pid

    for request, _ in (first, second):
        assert "warm_cli_wait_seconds" in await completion_timings(db, agent_tenant, request.task_id)
    assert_isolated(simulator, [first, second])


async def test_a_warm_cli_killed_while_waiting_is_replaced_and_its_slot_still_serves(
    warm_agent: WarmAgent,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
    db: DatabaseManager,
    agent_tenant: str,
) -> None:
    async with warm_agent() as (client, pool, role):
        (killed,) = await pool.wait_ready(role)
        os.kill(killed, signal.SIGKILL)

        async def ready() -> list[int]:
            return pool.ready_pids(role)

        # Replaced without an attempt asking for it.
        await eventually(ready, lambda pids: len(pids) == 1 and killed not in pids)
        assert not running(killed)
        request, _ = await run_factorial(client, agent_redis, offered_request)
        assert "warm_cli_wait_seconds" in await completion_timings(db, agent_tenant, request.task_id)

        # Killed just before an attempt takes it: the attempt still runs, on its replacement or a cold CLI.
        (killed,) = await pool.wait_ready(role)
        os.kill(killed, signal.SIGKILL)
        await run_factorial(client, agent_redis, offered_request)
