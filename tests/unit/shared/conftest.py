"""Redis fixtures: the real server, a fresh tenant per test, and every key of that tenant deleted afterwards.

Tests share one Redis server with other suites, so isolation is by tenant prefix, never FLUSHDB. Fixture names
start with `redis_` so they cannot shadow the project-wide fixtures of tests/conftest.py.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from shared.config import Settings, load_settings
from shared.models import DEFAULT_AGENT_PORT_RANGE, AgentCapability, AgentStatus
from shared.redis import RedisKeys, create_client
from shared.redis_manager import RedisManager

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"

TenantFactory = Callable[[], str]
ManagerFactory = Callable[..., Awaitable[RedisManager]]
AgentStatusFactory = Callable[..., AgentStatus]


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = create_client(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_tenant_factory(redis_client: Redis) -> AsyncIterator[TenantFactory]:
    """Hands out fresh tenant ids and deletes each tenant's keys after the test."""
    tenants: list[str] = []

    def new_tenant() -> str:
        tenants.append(f"test-{uuid.uuid4().hex[:16]}")
        return tenants[-1]

    yield new_tenant
    for tenant in tenants:
        keys = [key async for key in redis_client.scan_iter(match=RedisKeys(tenant).pattern(), count=500)]
        if keys:
            await redis_client.delete(*keys)


@pytest.fixture
def redis_tenant(redis_tenant_factory: TenantFactory) -> str:
    return redis_tenant_factory()


@pytest.fixture
def redis_keys(redis_tenant: str) -> RedisKeys:
    return RedisKeys(redis_tenant)


@pytest.fixture
def redis_settings(redis_url: str, redis_tenant: str) -> Settings:
    return load_settings(_env_file=None, redis_url=redis_url, tenant_id=redis_tenant)


@pytest.fixture
async def redis_manager_factory(redis_url: str, redis_tenant_factory: TenantFactory) -> AsyncIterator[ManagerFactory]:
    """Connected managers, each on a fresh tenant unless `tenant_id` is given; all disconnected afterwards."""
    managers: list[RedisManager] = []

    async def connect(tenant_id: str | None = None, **settings: Any) -> RedisManager:
        tenant = tenant_id or redis_tenant_factory()
        manager = RedisManager(load_settings(_env_file=None, redis_url=redis_url, tenant_id=tenant, **settings))
        await manager.connect()
        managers.append(manager)
        return manager

    yield connect
    for manager in managers:
        await manager.disconnect()


@pytest.fixture
async def redis_manager(redis_manager_factory: ManagerFactory, redis_tenant: str) -> RedisManager:
    return await redis_manager_factory(redis_tenant)


@pytest.fixture
def redis_agent_status() -> AgentStatusFactory:
    """Builds a valid AgentStatus; each test states only the fields it cares about."""

    def build(
        agent_id: str = "agent1", *, port_range: tuple[int, int] = DEFAULT_AGENT_PORT_RANGE, **fields: Any
    ) -> AgentStatus:
        port = fields.pop("port", 8001)
        values: dict[str, Any] = {
            "agent_id": agent_id,
            "url": f"http://localhost:{port}",
            "port": port,
            "is_available": True,
            "capabilities": [AgentCapability.DATA_ANALYSIS],
        }
        return AgentStatus.model_validate({**values, **fields}, context={"agent_port_range": port_range})

    return build


@pytest.fixture
def redis_wait_expired(redis_client: Redis) -> Callable[[str], Awaitable[None]]:
    """Waits out a key's remaining TTL (read from Redis) and checks the key is gone."""

    async def wait(key: str) -> None:
        remaining_ms = await redis_client.pttl(key)
        assert remaining_ms > 0, f"{key} has no TTL ({remaining_ms})"
        await asyncio.sleep(remaining_ms / 1000 + 0.05)
        assert not await redis_client.exists(key)

    return wait
