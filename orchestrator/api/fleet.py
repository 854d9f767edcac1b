"""Fleet endpoints: the agent registry, agent logs and the orchestrator's own health."""

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from orchestrator.api.schemas import (
    AgentListResponse,
    AgentLogListResponse,
    AvailableAgentsResponse,
    DependencyHealth,
    HealthResponse,
)
from orchestrator.api.tasks import NO_NUL
from orchestrator.state import State
from shared.errors import InvalidInputError, error_responses
from shared.models import AgentCapability, LogLevel

router = APIRouter()
HEALTH_PROBE_TIMEOUT_SECONDS = 2.0


@router.get("/agents", response_model=AgentListResponse, responses=error_responses(400, 500, 503), tags=["agents"])
async def list_agents(state: State) -> AgentListResponse:
    """Every agent whose heartbeat has not expired."""
    return AgentListResponse(agents=await state.redis.get_agents())


@router.get(
    "/agents/available",
    response_model=AvailableAgentsResponse,
    responses=error_responses(400, 500, 503),
    tags=["agents"],
)
async def available_agents(state: State, capability: AgentCapability | None = None) -> AvailableAgentsResponse:
    """Live agents that are accepting work, optionally only those with one capability."""
    return AvailableAgentsResponse(available_agents=await state.redis.get_available_agents(capability))


@router.get("/logs", response_model=AgentLogListResponse, responses=error_responses(400, 500, 503), tags=["agents"])
async def agent_logs(
    state: State,
    agent_id: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    task_id: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    level: LogLevel | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AgentLogListResponse:
    """Agent activity recorded in PostgreSQL, newest first."""
    logs = await state.db.repositories().audit.list_agent_logs(
        agent_id=agent_id,
        task_id=task_id,
        level=level,
        since=_in_utc("since", since),
        until=_in_utc("until", until),
        limit=limit,
    )
    return AgentLogListResponse(logs=logs)


def _in_utc(name: str, moment: datetime | None) -> datetime | None:
    """The database compares in UTC; at the calendar's edges (0001-01-01T00:00+01:00) there is no UTC equivalent."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(f"{name}: {moment.isoformat()} has no UTC equivalent") from None


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "PostgreSQL or Redis is down"}},
    tags=["health"],
)
async def health(state: State) -> JSONResponse:
    """Checks PostgreSQL and Redis for real; 503 names the one that is down."""
    postgres = await _check(state.db.ping())
    redis_health = await _check(state.redis.ping())
    healthy = postgres.status == "up" and redis_health.status == "up"
    body = HealthResponse(status="healthy" if healthy else "unhealthy", postgres=postgres, redis=redis_health)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


async def _check(probe: Awaitable[object]) -> DependencyHealth:
    try:
        await asyncio.wait_for(probe, HEALTH_PROBE_TIMEOUT_SECONDS)
    except Exception as error:  # whatever the failure, the dependency is unusable: report it, don't raise
        return DependencyHealth(status="down", error=f"{type(error).__name__}: {error}"[:300])
    return DependencyHealth(status="up")
