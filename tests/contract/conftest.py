"""Contract-test fixtures for the orchestrator: a live app over real HTTP, PostgreSQL, Redis and the simulator.

Fixture names start with `orchestrator_` so they cannot clash with the agent API's contract fixtures here.
Each test gets empty tables (the `db` fixture); each orchestrator gets its own Redis tenant, deleted at the end.
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
import structlog
from redis.asyncio import Redis

from orchestrator.app import create_app
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import AgentCapability, AgentStatus
from shared.redis import RedisKeys, create_client
from shared.redis_manager import RedisManager
from shared.serving import serve_in_thread
from simulator.testing import SimulatorHandle, running_simulator
from tests.api_keys import bearer, issue_key
from tests.contract.orchestrator_support import SCENARIOS
from tests.network import CuttableLink, link_to

# High enough that schemathesis' valid submissions never fill the queue of the shared orchestrator.
ORCHESTRATOR_MAX_QUEUE_DEPTH = 10_000

SettingsFactory = Callable[..., Settings]
# `await serve(settings, timeout=30)`: a client (to be entered by the test) of a new orchestrator with those settings.
AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def orchestrator_simulator() -> Iterator[SimulatorHandle]:
    with running_simulator(SCENARIOS) as simulator:
        yield simulator


@pytest.fixture(scope="session")
async def orchestrator_redis(settings: Settings) -> AsyncIterator[Redis]:
    """The test's own Redis connection; every tenant handed out below is deleted through it at the end."""
    client = create_client(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def orchestrator_tenants(orchestrator_redis: Redis) -> AsyncIterator[list[str]]:
    tenants: list[str] = []
    yield tenants
    for tenant in tenants:
        keys = [key async for key in orchestrator_redis.scan_iter(match=RedisKeys(tenant).pattern(), count=500)]
        if keys:
            await orchestrator_redis.delete(*keys)


@pytest.fixture(scope="session")
def orchestrator_settings_factory(
    settings: Settings, orchestrator_simulator: SimulatorHandle, orchestrator_tenants: list[str]
) -> SettingsFactory:
    """Settings for one orchestrator: the simulator as Claude, a fresh tenant, no client retries, then `overrides`."""

    def build(**overrides: Any) -> Settings:
        tenant = f"contract-{uuid.uuid4().hex[:12]}"
        orchestrator_tenants.append(tenant)
        values = {
            "anthropic_base_url": orchestrator_simulator.base_url,
            "anthropic_max_retries": 0,
            "tenant_id": tenant,
            "max_queue_depth": ORCHESTRATOR_MAX_QUEUE_DEPTH,
            "dispatch_concurrency": 2,
            "result_concurrency": 1,
            # schemathesis posts to POST /agents and /pool/initialize: they answer 409 here instead of starting
            # processes; the tests of a real start serve an orchestrator of their own.
            "agent_launcher": "none",
        }
        return settings.model_copy(update={**values, **overrides})

    return build


@pytest.fixture(scope="session")
def orchestrator_settings(orchestrator_settings_factory: SettingsFactory) -> Settings:
    return orchestrator_settings_factory()


@pytest.fixture(scope="package")
def orchestrator_url(orchestrator_settings: Settings, database: DatabaseManager) -> Iterator[str]:
    """The base URL of the orchestrator every contract test shares (no agents: its subtasks stay queued).

    It depends on `database` so it starts after the test database exists, and lives only as long as the contract
    tests: its loops have no business running under the other suites.
    """
    with serve_in_thread(create_app(orchestrator_settings), name="orchestrator") as base_url:
        yield base_url


@pytest.fixture(scope="session")
async def orchestrator_api_key(orchestrator_settings: Settings, database: DatabaseManager) -> str:
    """An operator key of the shared orchestrator's tenant (the `db` fixture leaves the keys alone)."""
    return await issue_key(database, orchestrator_settings.tenant_id)


@pytest.fixture
async def orchestrator_client(
    orchestrator_url: str, orchestrator_api_key: str, db: DatabaseManager
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the shared orchestrator with an operator key; the tables are emptied before the test (`db`)."""
    async with httpx.AsyncClient(base_url=orchestrator_url, headers=bearer(orchestrator_api_key), timeout=30) as client:
        yield client


@pytest.fixture
async def orchestrator_app_factory(db: DatabaseManager) -> AsyncIterator[AppFactory]:
    """Serves extra orchestrators with their own settings for one test; returns a client of each, with an operator
    key of its tenant."""
    with ExitStack() as stack:

        async def serve(settings: Settings, timeout: float = 30) -> httpx.AsyncClient:
            base_url = stack.enter_context(serve_in_thread(create_app(settings), name="orchestrator-extra"))
            headers = bearer(await issue_key(db, settings.tenant_id))
            return httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)

        yield serve


@pytest.fixture
async def orchestrator_redis_manager(orchestrator_settings: Settings) -> AsyncIterator[RedisManager]:
    """A RedisManager on the shared orchestrator's tenant; agents it registers are removed after the test."""
    manager = RedisManager(orchestrator_settings)
    await manager.connect()
    yield manager
    for agent in await manager.get_agents():
        await manager.registry.deregister_agent(agent.agent_id)
    await manager.disconnect()


@pytest.fixture
def orchestrator_agent_status(orchestrator_settings: Settings) -> Callable[..., AgentStatus]:
    """A valid AgentStatus whose URL answers nothing, so a dispatcher can never hand it work by accident."""

    def build(agent_id: str, *capabilities: AgentCapability, **fields: Any) -> AgentStatus:
        values: dict[str, Any] = {
            "agent_id": agent_id,
            "url": "http://127.0.0.1:9",
            "port": 8001,
            "is_available": True,
            "capabilities": list(capabilities),
        }
        return AgentStatus.model_validate(
            {**values, **fields}, context={"agent_port_range": orchestrator_settings.agent_port_range}
        )

    return build


LinkFactory = Callable[[str], tuple[CuttableLink, str]]


@pytest.fixture
def orchestrator_link_factory() -> Iterator[LinkFactory]:
    """`open_link(url)` puts a CuttableLink in front of the server of `url`; returns it and the URL through it."""
    links: list[CuttableLink] = []

    def open_link(url: str) -> tuple[CuttableLink, str]:
        link, through = link_to(url)
        links.append(link)
        return link, through

    yield open_link
    for link in links:
        link.close()


@pytest.fixture
def orchestrator_plain_tracebacks() -> Iterator[None]:
    """Logs exceptions with plain tracebacks for the test, then puts the logging configuration back.

    Unconfigured structlog renders them with rich (installed with schemathesis; production has no rich), locals
    included: seconds of CPU per exception, which stall an app's event loop while a dependency is down.
    """
    saved = structlog.get_config()
    plain = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    processors = [plain if isinstance(p, structlog.dev.ConsoleRenderer) else p for p in saved["processors"]]
    structlog.configure(processors=processors)
    yield
    structlog.configure(**saved)


# What schemathesis ran, per operation; printed in the terminal summary.
SCHEMATHESIS_CASES = pytest.StashKey[dict[str, int]]()


@pytest.fixture(scope="session")
def orchestrator_schemathesis_cases(pytestconfig: pytest.Config) -> dict[str, int]:
    return pytestconfig.stash.setdefault(SCHEMATHESIS_CASES, {})


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    cases = config.stash.get(SCHEMATHESIS_CASES, {})
    if cases:
        terminalreporter.section("schemathesis: orchestrator API")
        for operation, count in sorted(cases.items()):
            terminalreporter.write_line(f"{operation}: {count} cases")
        terminalreporter.write_line(f"total: {sum(cases.values())} cases over {len(cases)} operations")
