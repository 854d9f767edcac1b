"""History endpoints: the tenant's figures per minute, its agents' records (dead ones too), and attempt timelines.

All of it is read from PostgreSQL, so it survives restarts of the orchestrator, the agents and the browser; only
`alive` comes from the live registry. Client keys may read them: they show the tenant's own work and no fleet
addresses.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from orchestrator.api.history_schemas import (
    AgentAttemptsResponse,
    AgentHistoryResponse,
    MetricsHistoryResponse,
    TaskTimelineResponse,
)
from orchestrator.api.tasks import TaskId
from orchestrator.fleet_history import agent_attempts, agent_histories
from orchestrator.state import State
from shared.errors import NotFoundError, error_responses

router = APIRouter()

AgentId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]


@router.get(
    "/metrics/history",
    response_model=MetricsHistoryResponse,
    responses=error_responses(400, 500, 503),
    tags=["metrics"],
    summary="The tenant's throughput, latency, queue depth, failure rate and cost per minute",
)
async def metrics_history(
    state: State,
    minutes: Annotated[int, Query(ge=1, le=1440, description="How many minutes back, the current one included")] = 60,
) -> MetricsHistoryResponse:
    buckets = await state.db.repositories().history.minute_buckets(minutes)
    return MetricsHistoryResponse(window_minutes=minutes, buckets=buckets)


@router.get(
    "/agents/history",
    response_model=AgentHistoryResponse,
    responses=error_responses(400, 500, 503),
    tags=["agents"],
    summary="Every agent that ran this tenant's work, alive or gone, and the live ones, with their records",
)
async def agents_history(state: State) -> AgentHistoryResponse:
    return AgentHistoryResponse(agents=await agent_histories(state.db, state.redis))


@router.get(
    "/agents/{agent_id}/attempts",
    response_model=AgentAttemptsResponse,
    responses=error_responses(400, 404, 500, 503),
    tags=["agents"],
    summary="An agent's newest attempts of this tenant's work, whether it is alive or not",
)
async def agent_attempt_list(
    state: State, agent_id: AgentId, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> AgentAttemptsResponse:
    attempts = await agent_attempts(state.db, state.redis, agent_id, limit)
    return AgentAttemptsResponse(agent_id=agent_id, attempts=attempts)


@router.get(
    "/tasks/{task_id}/timeline",
    response_model=TaskTimelineResponse,
    responses=error_responses(400, 404, 500, 503),
    tags=["tasks"],
    summary="Each attempt of the task's subtasks: queued, assigned, started, ended, with its waits",
)
async def task_timeline(state: State, task_id: TaskId) -> TaskTimelineResponse:
    attempts = await state.db.repositories().attempts.task_timeline(task_id)
    if attempts is None:
        raise NotFoundError(f"no task with id {task_id!r}")
    return TaskTimelineResponse(task_id=task_id, attempts=attempts)
