"""Fixtures for tests that run a live orchestrator (real HTTP, PostgreSQL, Redis, simulator) with fake agents."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.app import create_app
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.fleet_trust import FleetTrust
from shared.models import AgentCapability, ReportedResult, SubTaskResult, TaskStatus
from shared.redis_manager import RedisManager
from shared.serving import serve_in_thread
from simulator.testing import running_simulator
from tests.api_keys import bearer, issue_key
from tests.fake_agent import ANY_PORT, FakeAgent, serving
from tests.polling import eventually

HEARTBEAT_SECONDS = 0.3
# Generous against a loaded machine: a test's event loop can stall for a second while a server thread starts.
HEARTBEAT_TTL_SECONDS = 15
TERMINAL = {TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value}


def plan(*subtasks: tuple[str, str, list[str], list[str]]) -> dict[str, Any]:
    """A scenario plan from (id, description, capabilities, dependencies) tuples."""
    return {
        "subtasks": [
            {"id": sid, "description": text, "required_capabilities": caps, "dependencies": deps}
            for sid, text, caps, deps in subtasks
        ]
    }


@dataclass
class Fleet:
    """Fake agents with heartbeats the test can stop, and the test's own Redis connection."""

    redis: RedisManager
    stack: ExitStack
    trust: FleetTrust  # the fake agents are members of the fleet: they seal what they report
    db: DatabaseManager  # where they accept their offers, as real agents do
    heartbeats: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    intakes: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # each agent taking its offers
    agents: dict[str, FakeAgent] = field(default_factory=dict)

    async def add(self, agent_id: str, *capabilities: AgentCapability, slots: int = 1) -> FakeAgent:
        agent = self.stack.enter_context(serving(FakeAgent(agent_id, list(capabilities), slots)))
        self.agents[agent_id] = agent
        await self.redis.register_agent(agent.status())
        self.heartbeats[agent_id] = asyncio.create_task(self._heartbeat(agent))
        self.intakes[agent_id] = asyncio.create_task(agent.take_offers(self.redis, self.db))
        return agent

    async def _heartbeat(self, agent: FakeAgent) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await self.redis.register_agent(agent.status())

    def stop_heartbeat(self, agent_id: str) -> None:
        self.heartbeats.pop(agent_id).cancel()

    async def report(self, result: SubTaskResult) -> None:
        """Publish a result as the agent would: the slot frees first, then the result goes out, sealed when it
        answers an assignment (a plain SubTaskResult goes out as it is: what a stranger could push)."""
        if result.agent_id in self.agents:
            self.agents[result.agent_id].running.discard(result.subtask_id)
        if isinstance(result, ReportedResult) and result.report_signature is None:
            result = self.trust.seal(result)
        await self.redis.enqueue_result(result)

    def stop_taking_offers(self, agent_id: str) -> None:
        """The agent takes no more offers (as if dead): they stay in its queue."""
        self.intakes.pop(agent_id).cancel()

    async def close(self) -> None:
        tasks = [*self.heartbeats.values(), *self.intakes.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def orchestrator_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(
        update={
            "tenant_id": f"test-{uuid.uuid4().hex[:10]}",
            "shared_files_dir": str(tmp_path / "shared_files"),
            "artifacts_dir": str(tmp_path / "artifacts"),
            "anthropic_max_retries": 0,
            "heartbeat_interval_seconds": HEARTBEAT_SECONDS,
            "heartbeat_ttl_seconds": HEARTBEAT_TTL_SECONDS,
            "recovery_interval_seconds": 0.3,
            "agent_port_min": ANY_PORT[0],
            "agent_port_max": ANY_PORT[1],
            "result_concurrency": 2,
        }
    )


@pytest.fixture
async def test_redis(orchestrator_settings: Settings) -> AsyncIterator[RedisManager]:
    manager = RedisManager(orchestrator_settings)
    await manager.connect()
    yield manager
    keys = [key async for key in manager.client.scan_iter(match=manager.keys.pattern())]
    if keys:
        await manager.client.delete(*keys)
    await manager.disconnect()


@pytest.fixture
async def fleet(test_redis: RedisManager, orchestrator_settings: Settings, db: DatabaseManager) -> AsyncIterator[Fleet]:
    with ExitStack() as stack:
        fleet = Fleet(test_redis, stack, FleetTrust.from_settings(orchestrator_settings), db)
        yield fleet
        await fleet.close()


OrchestratorFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def orchestrator_repositories(orchestrator_settings: Settings, db: DatabaseManager) -> Repositories:
    """The repositories as the test's orchestrator sees them: its tenant's tasks, results and logs."""
    return Repositories(db.pool, orchestrator_settings.tenant_id)


@pytest.fixture
async def orchestrator_api_key(orchestrator_settings: Settings, db: DatabaseManager) -> str:
    """An operator key of the test's tenant: what the `orchestrator` clients send, and the dashboard under test."""
    return await issue_key(db, orchestrator_settings.tenant_id)


@pytest.fixture
def orchestrator(
    orchestrator_settings: Settings, db: DatabaseManager, orchestrator_api_key: str
) -> Iterator[OrchestratorFactory]:
    """`orchestrator(scenarios, **settings)` starts an orchestrator against a simulator answering with the given
    scenarios, with any settings overridden (another tenant, a Redis URL through a cuttable link); its client sends
    an operator key of the orchestrator's tenant."""
    with ExitStack() as stack:

        @contextlib.asynccontextmanager
        async def start(scenarios: dict[str, Any], **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
            simulator = stack.enter_context(running_simulator(scenarios))
            settings = orchestrator_settings.model_copy(update={"anthropic_base_url": simulator.base_url, **overrides})
            own_tenant = settings.tenant_id == orchestrator_settings.tenant_id
            key = orchestrator_api_key if own_tenant else await issue_key(db, settings.tenant_id)
            with serve_in_thread(create_app(settings), name="orchestrator") as base_url:
                async with httpx.AsyncClient(base_url=base_url, headers=bearer(key), timeout=10) as client:
                    yield client

        yield start


async def submit(client: httpx.AsyncClient, description: str, **fields: str) -> str:
    response = await client.post("/tasks", params={"description": description, **fields})
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


async def task_state(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_until_ended(client: httpx.AsyncClient, task_id: str, timeout: float = 20.0) -> dict[str, Any]:
    return await eventually(
        lambda: task_state(client, task_id), lambda state: state["task"]["status"] in TERMINAL, timeout=timeout
    )


async def wait_for_request(agent: FakeAgent, description: str, count: int = 1, timeout: float = 20.0) -> None:
    async def received() -> int:
        return len(agent.requests_for(description))

    await eventually(received, lambda n: n >= count, timeout=timeout)


async def wait_for_request_anywhere(fleet: Fleet, description: str) -> None:
    async def received() -> bool:
        return any(agent.requests_for(description) for agent in fleet.agents.values())

    await eventually(received, bool)


async def wait_for_results(db: DatabaseManager, task_id: str, count: int) -> None:
    async def stored() -> int:
        n: int = await db.pool.fetchval("SELECT count(*) FROM subtask_results WHERE task_id = $1", task_id)
        return n

    await eventually(stored, lambda n: n >= count)
