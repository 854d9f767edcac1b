"""Fixtures of the agent's tests (unit and integration): settings on a fresh Redis tenant, clients, tool contexts.

Tests share one Redis server with other suites, so each test gets its own tenant prefix and its keys are deleted
afterwards; workspaces and the CLI's config dir live under the test's tmp_path.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agent.app import create_app, lifespan
from agent.runner import SubtaskRunner
from agent.tools import ToolContext, Workspace, build_tools
from agent.tools.data_source import DataSourcePool
from shared.config import Settings, load_settings
from shared.database import DatabaseManager
from shared.fleet_trust import FleetTrust
from shared.models import AgentCapability, AgentStatus, SubTask, Task, TaskExecutionRequest
from shared.redis import RedisKeys, create_client
from shared.redis_manager import RedisManager
from shared.roles import RoleBook

SettingsFactory = Callable[..., Settings]
ContextFactory = Callable[..., ToolContext]
RequestFactory = Callable[..., TaskExecutionRequest]


@pytest.fixture
async def agent_tenant(settings: Settings) -> AsyncIterator[str]:
    tenant = f"test-{uuid.uuid4().hex[:16]}"
    yield tenant
    client = create_client(settings.redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=RedisKeys(tenant).pattern(), count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def agent_settings_factory(settings: Settings, agent_tenant: str, tmp_path: Path) -> SettingsFactory:
    """Agent settings on the test's tenant and tmp_path, stub executor and every capability unless overridden."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "postgres_url": settings.postgres_url,
            "redis_url": settings.redis_url,
            "tenant_id": agent_tenant,
            "shared_files_dir": str(tmp_path / "shared_files"),
            "agent_claude_config_root": str(tmp_path / "claude"),
            "agent_executor": "stub",
            "agent_capabilities": list(AgentCapability),
            "heartbeat_interval_seconds": 1.0,
            "heartbeat_ttl_seconds": 10,
            "agent_shutdown_grace_seconds": 1.0,
        }
        return load_settings(_env_file=None, **{**values, **overrides})

    return build


@pytest.fixture
def agent_settings(agent_settings_factory: SettingsFactory) -> Settings:
    return agent_settings_factory()


@pytest.fixture
async def agent_redis(agent_settings: Settings) -> AsyncIterator[RedisManager]:
    manager = RedisManager(agent_settings)
    await manager.connect()
    yield manager
    await manager.disconnect()


@pytest.fixture
async def agent_data_source(agent_settings: Settings) -> AsyncIterator[DataSourcePool]:
    pool = DataSourcePool(agent_settings)
    await pool.open()
    yield pool
    await pool.close()


@pytest.fixture
def tool_context_factory(
    agent_settings: Settings, db: DatabaseManager, agent_redis: RedisManager, agent_data_source: DataSourcePool
) -> ContextFactory:
    """A tool context of one subtask attempt, its workspace created."""

    def build(task_id: str = "task_tools", subtask_id: str = "subtask_tools", **overrides: Any) -> ToolContext:
        workspace = Workspace(agent_settings.shared_files_dir, task_id, attempt_token=f"token-{subtask_id}")
        workspace.create()
        values: dict[str, Any] = {
            "settings": agent_settings,
            "db": db,
            "redis": agent_redis,
            "data_source": agent_data_source,
            "workspace": workspace,
            "agent_id": agent_settings.agent_id,
            "task_id": task_id,
            "subtask_id": subtask_id,
            "attempt": 1,
        }
        return ToolContext(**{**values, **overrides})

    return build


@pytest.fixture
def execution_request() -> RequestFactory:
    """A request for one attempt of a fresh subtask; each test states only the fields it cares about."""

    def build(description: str = "Summarise the figures", **subtask_fields: Any) -> TaskExecutionRequest:
        task_id = subtask_fields.pop("task_id", f"task_{uuid.uuid4().hex}")
        context = subtask_fields.pop("task_context", {"task_description": "A task of the agent's tests"})
        values: dict[str, Any] = {
            "required_capabilities": [AgentCapability.DATA_ANALYSIS],
            "attempt_count": 1,
            "status": "running",
        }
        subtask = SubTask(task_id=task_id, description=description, **{**values, **subtask_fields})
        return TaskExecutionRequest(task_id=task_id, subtask=subtask, task_context=context)

    return build


OfferFactory = Callable[..., Awaitable[TaskExecutionRequest]]


@pytest.fixture
def offered_request(execution_request: RequestFactory, db: DatabaseManager, agent_settings: Settings) -> OfferFactory:
    """A request for an offer the orchestrator really made: its task stored, its attempt claimed for `agent_id`
    (this test's agent by default) and signed, so the agent can accept it under its delivery token."""

    async def build(
        description: str = "Summarise the figures", agent_id: str | None = None, **fields: Any
    ) -> TaskExecutionRequest:
        request = execution_request(description, status="pending", attempt_count=0, **fields)
        task = Task(
            id=request.task_id,
            description="A task of the agent's tests",
            subtasks=[request.subtask],
            trace_id=request.subtask.trace_id,  # stored with the task: its subtasks carry the task's
        )
        repos = db.repositories()
        await repos.tasks.create_task(task)
        [queued] = await repos.subtasks.queue_ready(task.id)
        claimed = await repos.subtasks.claim(queued.id, queued.attempt_count, agent_id or agent_settings.agent_id)
        assert claimed is not None
        offer = request.model_copy(update={"subtask": claimed})
        offer.assignment = FleetTrust.from_settings(agent_settings).sign_offer(offer)
        return offer

    return build


def fleet_status_headers(settings: Settings) -> dict[str, str]:
    """What the orchestrator's side sends to read an agent's GET /status."""
    return {"Authorization": f"Bearer {FleetTrust.from_settings(settings).status_token}"}


@asynccontextmanager
async def serving(
    settings: Settings, roles: RoleBook | None = None
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The agent app (with `roles`, else the role files) with its lifespan running, and a client talking to it
    in-process."""
    app = create_app(settings, roles=roles)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
            yield app, client


def run_attempt(runner: SubtaskRunner, request: TaskExecutionRequest) -> bool:
    """What /execute does once the offer is this agent's: reserve a slot and start the attempt; False when this very
    attempt already runs here (a repeated delivery)."""
    reservation = runner.reserve(request)
    if reservation is None:
        return False
    runner.start(reservation)
    return True


async def call_tool(context: ToolContext, tool_name: str, **arguments: Any) -> tuple[str, bool]:
    """Call one of the agent's tools the way the SDK does; returns its text and is_error."""
    (tool,) = build_tools(context, [tool_name])
    answer = await tool.handler(arguments)
    return answer["content"][0]["text"], answer["is_error"]


async def registered_until(
    redis: RedisManager, agent_id: str, condition: Callable[[AgentStatus], bool], timeout: float = 30.0
) -> AgentStatus:
    """The agent's registry entry once it meets `condition`, woken by registry changes; fails after `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            status = await redis.registry.get_agent(agent_id)
            if status is not None and condition(status):
                return status
            await redis.registry.wait_for_registry_change(timeout=1.0)
