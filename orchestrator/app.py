"""The orchestrator service: its lifespan wires clients and background loops around the API."""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from orchestrator.agent_client import AgentClient
from orchestrator.agent_failures import AgentFailures
from orchestrator.agent_launcher import build_launcher
from orchestrator.agent_sightings import AgentSightings
from orchestrator.api import (
    artifacts,
    context_packs,
    coordination,
    costs,
    events,
    fleet,
    health,
    history,
    isolation,
    pool,
    tasks,
    webhooks,
)
from orchestrator.api.auth import AUTH_RESPONSES, CLIENT_ACCESS, OPERATOR_ACCESS
from orchestrator.api.tasks import REPLAYED_HEADER
from orchestrator.api_key_cache import ApiKeyCache, ApiKeyChanges
from orchestrator.budget_resumer import BudgetResumer
from orchestrator.context_pack_upload import UPLOAD_PATH, upload_limit
from orchestrator.deadline_watch import DeadlineWatch
from orchestrator.dispatcher import Dispatcher
from orchestrator.estimates import CostEstimator
from orchestrator.event_streams import EventStreams
from orchestrator.fleet_view import FleetView, RegistryWatcher
from orchestrator.lifecycle import TaskLifecycle
from orchestrator.metrics import OrchestratorMetrics
from orchestrator.planning import Planner, PlanningLoop
from orchestrator.pool import AgentPool, PoolSupervisor
from orchestrator.recovery import RecoveryService
from orchestrator.result_processor import ResultProcessor
from orchestrator.retention import RetentionLoop
from orchestrator.scheduling import AFFINITY_WINDOW
from orchestrator.state import OrchestratorState
from orchestrator.task_analyzer import TaskAnalyzer
from orchestrator.task_folders import TaskFolders
from orchestrator.task_removal import TaskRemoval
from orchestrator.task_service import TaskService
from orchestrator.waiting import DependencyProbe, TaskTypeDependencies
from orchestrator.webhook_deliverer import WebhookDeliverer
from orchestrator.webhook_sender import WebhookSender, webhook_client
from orchestrator.webhooks import WebhookService
from shared.config import ConfigurationError, Settings
from shared.database import DatabaseManager, apply_migrations
from shared.errors import install_error_handlers
from shared.loop_service import LoopService
from shared.provider_limits import ProviderLimiter
from shared.redis import create_client
from shared.redis_manager import RedisManager
from shared.request_limits import RequestLimits
from shared.roles import load_roles
from shared.tracing import REQUEST_ID_HEADER, TraceRequests

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
    """The orchestrator's loops around the task lifecycle."""

    lifecycle: TaskLifecycle
    recovery: RecoveryService
    dispatcher: Dispatcher
    loops: list[LoopService]

    def coroutines(self) -> list[Coroutine[Any, Any, None]]:
        return [loop.start() for loop in self.loops] + [self.dispatcher.run_matcher()]

    async def prepare(self, db: DatabaseManager) -> None:
        """Before the loops start: take back our in-flight items and count the work agents already run."""
        await self.recovery.recover_own_inflight()
        await self.lifecycle.fleet.directory.refresh()
        self.lifecycle.fleet.history.load(await db.repositories().results.recent_outcomes(AFFINITY_WINDOW))
        for subtask in await db.repositories().subtasks.list_running():
            if subtask.assigned_agent:
                self.lifecycle.fleet.load.restore(subtask.assigned_agent, subtask.id)


def build_background_work(
    lifecycle: TaskLifecycle, db: DatabaseManager, redis: RedisManager, agents: AgentClient, planner: Planner
) -> BackgroundWork:
    settings = lifecycle.settings
    result_processors = [ResultProcessor(lifecycle, redis, n) for n in range(settings.result_concurrency)]
    dependencies = TaskTypeDependencies(settings.task_type_dependencies)
    probe = DependencyProbe(dependencies, lifecycle.fleet.load, settings.dependency_probe_interval_seconds)
    dispatcher = Dispatcher(lifecycle, redis, agents, dependencies)
    consumer_ids = [processor.consumer_id for processor in result_processors] + [dispatcher.consumer_id]
    recovery = RecoveryService(lifecycle, redis, consumer_ids)
    watcher = RegistryWatcher(redis, lifecycle.fleet)
    loops = [
        recovery,
        watcher,
        probe,
        DeadlineWatch(lifecycle),
        *result_processors,
        dispatcher,
        BudgetResumer(lifecycle),
        PlanningLoop(planner, db),
    ]
    return BackgroundWork(lifecycle, recovery, dispatcher, loops)


def build_webhook_deliverer(
    settings: Settings, db: DatabaseManager, redis: RedisManager, client: httpx.AsyncClient
) -> WebhookDeliverer:
    """The loop that delivers the tenant's events to its webhooks, through `client`."""
    sender = WebhookSender(settings, client, db.repositories().webhooks.exists)
    return WebhookDeliverer(settings, db, redis.events, sender)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Clients opened in order and closed in reverse, whatever step fails: nothing leaks on a partial start."""
    settings: Settings = app.state.settings
    async with AsyncExitStack() as stack:
        stack.callback(log.info, "orchestrator_stopped")
        claude = anthropic_client(settings)
        stack.push_async_callback(claude.close)
        await apply_migrations(settings.postgres_url)  # the one place they run; healthy means the schema is there
        db = DatabaseManager(settings, warm=True)
        await db.connect()
        stack.push_async_callback(db.disconnect)
        redis = RedisManager(settings)
        await redis.connect()
        stack.push_async_callback(redis.disconnect)
        # Streaming clients block on reads: a pool of their own, so they never hold the connections of the loops.
        streaming_redis = create_client(settings.redis_url, max_connections=settings.sse_max_clients)
        stack.push_async_callback(streaming_redis.aclose)
        agents = AgentClient()
        await agents.start()
        stack.push_async_callback(agents.close)
        webhook_http = webhook_client(settings)
        stack.push_async_callback(webhook_http.aclose)
        sightings = AgentSightings(db)
        stack.push_async_callback(sightings.written)  # before the pool closes
        fleet_view = FleetView.of(redis, settings.heartbeat_ttl_seconds, sightings)
        metrics = OrchestratorMetrics()
        lifecycle = TaskLifecycle(settings, db, redis, fleet_view, metrics, agents)
        await lifecycle.ledger.price_book()  # MODEL_PRICES as versioned prices, before anything is priced
        limiter = ProviderLimiter(redis.client, redis.keys, settings.provider_limits)
        estimator = CostEstimator(claude, settings, load_roles())
        analyzer = TaskAnalyzer(claude, settings, metrics, limiter)
        task_service = TaskService(lifecycle, db, redis, analyzer, estimator)
        api_keys = ApiKeyCache(lambda key: db.repositories().api_keys.authenticate(key))
        key_changes = ApiKeyChanges(settings, api_keys)
        stack.push_async_callback(key_changes.close)
        removal = TaskRemoval(db, redis, TaskFolders.of(settings), lifecycle.details)
        agent_pool = AgentPool(settings, redis, build_launcher(settings))
        stack.push_async_callback(agent_pool.close)  # the pool's agents outlive the orchestrator: a restart adopts them
        await agent_pool.adopt()
        app.state.orchestrator = OrchestratorState(
            settings=settings,
            db=db,
            redis=redis,
            tasks=task_service,
            api_keys=api_keys,
            pool=agent_pool,
            lifecycle=lifecycle,
            metrics=metrics,
            agent_failures=AgentFailures(lifecycle, redis, agents),
            webhooks=WebhookService(settings, db),
            event_streams=EventStreams(
                streaming_redis, redis.keys, db, settings.sse_max_clients, settings.sse_max_clients_per_key
            ),
            removal=removal,
        )
        work = build_background_work(lifecycle, db, redis, agents, task_service.planner)
        await work.prepare(db)
        supervisor = PoolSupervisor(agent_pool)
        deliverer = build_webhook_deliverer(settings, db, redis, webhook_http)
        retention = RetentionLoop(settings, db, removal)
        side_loops = [key_changes, supervisor, deliverer, retention]
        loops = [*work.loops, *side_loops]
        for loop in loops:
            loop.report_outages_to(metrics.store_outage)
        async with asyncio.TaskGroup() as group:
            for coroutine in [*work.coroutines(), *(loop.start() for loop in side_loops)]:
                group.create_task(coroutine)
            log.info("orchestrator_started", loops=len(loops))
            try:
                yield
            finally:
                for loop in loops:
                    loop.stop()


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Multi-Agent Task Execution System — Orchestrator",
        version="1.0.0",
        description="Decomposes tasks through Claude and runs their subtasks on capability-tagged agents.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RequestLimits, uploads={UPLOAD_PATH: upload_limit(settings)})
    if settings.cors_origins:
        # Added last, so outermost: a browser's preflight is answered before anything asks it for a key.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "traceparent", REQUEST_ID_HEADER, "Idempotency-Key"],
            expose_headers=[REQUEST_ID_HEADER, REPLAYED_HEADER],
        )
    # Around the whole stack, the handler of last resort included, so a 500 and its log line carry the trace too.
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: TraceRequests(build_stack())  # type: ignore[method-assign]
    # Every route but /health needs a key: given to the routers, so a new route cannot be added without it.
    app.include_router(tasks.router, dependencies=[CLIENT_ACCESS], responses=AUTH_RESPONSES)
    app.include_router(artifacts.router, dependencies=[CLIENT_ACCESS], responses=AUTH_RESPONSES)
    app.include_router(context_packs.router, dependencies=[CLIENT_ACCESS], responses=AUTH_RESPONSES)
    app.include_router(events.router, dependencies=[CLIENT_ACCESS], responses=AUTH_RESPONSES)
    app.include_router(fleet.registry, dependencies=[OPERATOR_ACCESS], responses=AUTH_RESPONSES)
    app.include_router(isolation.router, dependencies=[OPERATOR_ACCESS], responses=AUTH_RESPONSES)
    app.include_router(pool.router, dependencies=[OPERATOR_ACCESS], responses=AUTH_RESPONSES)
    app.include_router(webhooks.router, dependencies=[OPERATOR_ACCESS], responses=AUTH_RESPONSES)
    app.include_router(fleet.logs, dependencies=[CLIENT_ACCESS], responses=AUTH_RESPONSES)
    app.include_router(history.router, dependencies=[CLIENT_ACCESS], responses=AUTH_RESPONSES)
    app.include_router(costs.router, dependencies=[CLIENT_ACCESS], responses=AUTH_RESPONSES)
    # Agents' calls: signed with the fleet's secret, for the attempt they run (no API key).
    app.include_router(coordination.router)
    app.include_router(health.router)
    return app
