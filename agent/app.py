"""The agent service: its lifespan connects the clients, runs the heartbeat and drains subtasks on shutdown."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI

from agent import api
from agent.executors import build_executor
from agent.heartbeat import Heartbeat
from agent.metrics import AgentMetrics
from agent.offers import OfferBook
from agent.reporting import ResultReporter
from agent.runner import SubtaskRunner
from agent.tools.commands import RUN_COMMAND, sandbox_problem
from agent.tools.data_source import DataSourcePool
from shared.config import Settings
from shared.database import DatabaseManager
from shared.errors import PoolFullError, install_error_handlers
from shared.fleet_trust import FleetTrust
from shared.redis_manager import RedisManager
from shared.request_limits import RequestLimits
from shared.roles import ROLES_DIR, RoleBook, load_roles

log = structlog.get_logger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.trust = FleetTrust.from_settings(settings)  # no FLEET_SECRET: the agent does not start
    db = DatabaseManager(settings)
    await db.connect()
    redis = RedisManager(settings)
    data_source = DataSourcePool(settings)
    try:
        await redis.connect()
        await data_source.open()
        async with _serving(app, settings, db, redis, data_source):
            yield
    finally:
        await data_source.close()
        await redis.disconnect()
        await db.disconnect()
        log.info("agent_stopped", agent_id=settings.agent_id)


@asynccontextmanager
async def _serving(
    app: FastAPI, settings: Settings, db: DatabaseManager, redis: RedisManager, data_source: DataSourcePool
) -> AsyncIterator[None]:
    """Registered and heartbeating while serving; on exit drain, stop the loops, write what they held, deregister."""
    executor = build_executor(settings, db, redis, data_source)
    heartbeat = Heartbeat(settings, redis)
    reporter = ResultReporter(settings, db, redis, executor.name)
    runner = SubtaskRunner(settings, app.state.roles, executor, reporter, heartbeat.notify, app.state.metrics)
    app.state.metrics.watch(runner)
    heartbeat.attach(runner)
    app.state.runner = runner
    app.state.offers = OfferBook(db, settings.agent_id)
    loops = (heartbeat, *reporter.background_loops)
    try:
        await heartbeat.run_once()  # registered before the first request can arrive
    except PoolFullError as refusal:
        # One line and an exit code (agent/__main__.py), not a failed start-up's traceback: nothing is wrong with
        # this agent, the pool has no room for it.
        log.error("agent_refused_pool_full", agent_id=settings.agent_id, error=refusal.message)
        app.state.refusal = refusal
        server = getattr(app.state, "server", None)
        if server is not None:
            server.should_exit = True
        yield
        return
    app.state.executor = executor
    try:
        # The roles this agent serves, one per capability: the SDK executor starts warm CLIs of each.
        await executor.start([app.state.roles[capability] for capability in settings.agent_capabilities])
        async with asyncio.TaskGroup() as group:
            for loop in loops:
                group.create_task(loop.start(), name=loop.name)
            log.info("agent_started", agent_id=settings.agent_id, executor=executor.name, url=settings.agent_url)
            try:
                yield
            finally:
                # Heartbeats go on while draining, so the registry shows the agent busy, not gone.
                await runner.shutdown(settings.agent_shutdown_grace_seconds)
                for loop in loops:
                    loop.stop()
    finally:
        await executor.close()  # after the drain: no attempt uses a warm CLI any more; every CLI child is reaped
        await reporter.flush()  # the records of the last attempts, before the pool and the Redis client close
        await _deregister(redis, settings.agent_id)


async def _deregister(redis: RedisManager, agent_id: str) -> None:
    try:
        await redis.registry.deregister_agent(agent_id)
        log.info("agent_deregistered", agent_id=agent_id)
    except Exception as error:  # the entry expires with its TTL anyway
        log.warning("agent_deregister_failed", agent_id=agent_id, error=repr(error))


def offered_roles(settings: Settings, roles: RoleBook) -> RoleBook:
    """The roles with only the tools this agent can offer: run_command needs a sandbox that starts here."""
    problem = sandbox_problem(settings)
    if problem is None:
        return roles
    if settings.code_sandbox == "off":
        log.warning("code_sandbox_off", agent_id=settings.agent_id, tool_not_offered=RUN_COMMAND.name)
    else:
        log.error(
            "code_sandbox_unavailable",
            agent_id=settings.agent_id,
            tool_not_offered=RUN_COMMAND.name,
            problem=problem,
            fix="install bubblewrap (apt-get install bubblewrap) on a host that allows user namespaces, "
            "or set CODE_SANDBOX=off to run without run_command",
        )
    return roles.without_tools({RUN_COMMAND.name})


def create_app(settings: Settings, *, roles: RoleBook | None = None, roles_dir: Path = ROLES_DIR) -> FastAPI:
    """The agent app; role files are loaded (and validated) here, so a bad one stops the agent before it serves."""
    app = FastAPI(
        title="Multi-Agent Task Execution System — Agent",
        version="1.0.0",
        description="Runs subtasks with the Claude Agent SDK and in-process MCP tools; reports results to Redis.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    # Before the lifespan: GET /metrics answers from the first request.
    app.state.metrics = AgentMetrics(settings.tenant_id)
    app.state.roles = offered_roles(settings, roles or load_roles(roles_dir))
    install_error_handlers(app)
    app.add_middleware(RequestLimits, max_body_bytes=api.MAX_OFFER_BYTES)
    app.include_router(api.router)
    return app
