"""The orchestrator service: its lifespan wires clients and background loops around the API."""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anthropic
import structlog
from fastapi import FastAPI

from orchestrator.agent_client import AgentClient
from orchestrator.api import fleet, tasks
from orchestrator.detail_cache import TaskDetailCache
from orchestrator.dispatcher import AgentDirectory, Dispatcher, RegistryWatcher
from orchestrator.recovery import RecoveryService
from orchestrator.result_processor import ResultProcessor
from orchestrator.scheduling import AgentLoadTracker, SuccessHistory
from orchestrator.state import OrchestratorState
from orchestrator.task_analyzer import TaskAnalyzer
from orchestrator.task_service import TaskService
from shared.config import ConfigurationError, Settings
from shared.database import DatabaseManager, apply_migrations
from shared.errors import install_error_handlers
from shared.loop_service import LoopService
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)


def anthropic_client(settings: Settings) -> anthropic.AsyncAnthropic:
    if settings.anthropic_api_key is None and settings.anthropic_base_url is None:
        raise ConfigurationError(
            "invalid configuration: ANTHROPIC_API_KEY is not set; set it, or point ANTHROPIC_BASE_URL at the simulator"
        )
    # The simulator accepts any key; a real endpoint refuses a missing one with its own clear error.
    api_key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else "offline-simulator"
    return anthropic.AsyncAnthropic(
        api_key=api_key,
        # aiohttp under the SDK's client: decomposition is on the POST /tasks path, and httpx's own transport
        # costs several times more CPU per request.
        http_client=anthropic.DefaultAioHttpClient(),
        base_url=settings.anthropic_base_url,
        max_retries=settings.anthropic_max_retries,
        timeout=settings.anthropic_timeout_seconds,
    )


@dataclass
class BackgroundWork:
    """The orchestrator's loops and the state they share."""

    load: AgentLoadTracker
    recovery: RecoveryService
    dispatcher: Dispatcher
    loops: list[LoopService]

    def coroutines(self) -> list[Coroutine[Any, Any, None]]:
        return [loop.start() for loop in self.loops] + [self.dispatcher.run_matcher()]

    async def prepare(self, db: DatabaseManager, directory: AgentDirectory) -> None:
        """Before the loops start: take back our in-flight items and count the work agents already run."""
        await self.recovery.recover_own_inflight()
        await directory.refresh()
        for subtask in await db.repositories().subtasks.list_running():
            if subtask.assigned_agent:
                self.load.restore(subtask.assigned_agent, subtask.id)


def build_background_work(
    settings: Settings,
    db: DatabaseManager,
    redis: RedisManager,
    agents: AgentClient,
    directory: AgentDirectory,
    details: TaskDetailCache,
) -> BackgroundWork:
    load, history = AgentLoadTracker(), SuccessHistory()
    instance = settings.orchestrator_instance_id
    result_processors = [
        ResultProcessor(settings, db, redis, load, history, f"{instance}-results-{n}", details)
        for n in range(settings.result_concurrency)
    ]
    dispatcher = Dispatcher(db, redis, agents, directory, load, history, f"{instance}-dispatch")
    consumer_ids = [processor.consumer_id for processor in result_processors] + [dispatcher.consumer_id]
    recovery = RecoveryService(
        settings, db, redis, result_processors[0], directory, consumer_ids, settings.recovery_interval_seconds
    )
    watcher = RegistryWatcher(redis, directory, load)
    return BackgroundWork(load, recovery, dispatcher, [recovery, watcher, *result_processors, dispatcher])


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    claude = anthropic_client(settings)
    await apply_migrations(settings.postgres_url)
    db = DatabaseManager(settings)
    await db.connect()
    redis = RedisManager(settings)
    await redis.connect()
    agents = AgentClient()
    await agents.start()
    details = TaskDetailCache()
    task_service = TaskService(settings, db, redis, TaskAnalyzer(claude, settings), details)
    app.state.orchestrator = OrchestratorState(settings=settings, db=db, redis=redis, tasks=task_service)
    directory = AgentDirectory(redis, settings.heartbeat_ttl_seconds)
    work = build_background_work(settings, db, redis, agents, directory, details)
    await work.prepare(db, directory)
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in work.coroutines():
                group.create_task(coroutine)
            log.info("orchestrator_started", loops=len(work.loops))
            try:
                yield
            finally:
                for loop in work.loops:
                    loop.stop()
    finally:
        await agents.close()
        await claude.close()
        await redis.disconnect()
        await db.disconnect()
        log.info("orchestrator_stopped")


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Multi-Agent Task Execution System — Orchestrator",
        version="1.0.0",
        description="Decomposes tasks through Claude and runs their subtasks on capability-tagged agents.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(tasks.router)
    app.include_router(fleet.router)
    return app
