"""What the orchestrator's lifespan builds and the routes reach through dependencies."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from orchestrator.agent_failures import AgentFailures
from orchestrator.api_key_cache import ApiKeyCache
from orchestrator.event_streams import EventStreams
from orchestrator.lifecycle import TaskLifecycle
from orchestrator.metrics import OrchestratorMetrics
from orchestrator.pool import AgentPool
from orchestrator.task_removal import TaskRemoval
from orchestrator.task_service import TaskService
from orchestrator.webhooks import WebhookService
from shared.config import Settings
from shared.database import DatabaseManager
from shared.redis_manager import RedisManager


@dataclass(frozen=True)
class OrchestratorState:
    settings: Settings
    db: DatabaseManager
    redis: RedisManager
    tasks: TaskService
    api_keys: ApiKeyCache
    pool: AgentPool
    lifecycle: TaskLifecycle  # the follow-up subtasks of coordinator attempts
    metrics: OrchestratorMetrics  # GET /metrics in Prometheus format
    agent_failures: AgentFailures
    webhooks: WebhookService
    event_streams: EventStreams  # GET /tasks/{id}/events and GET /events
    removal: TaskRemoval  # DELETE /tasks/{id}, and the retention loop's


async def get_state(request: Request) -> OrchestratorState:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread, a hop every request would pay.
    state: OrchestratorState = request.app.state.orchestrator
    return state


State = Annotated[OrchestratorState, Depends(get_state)]
