"""The orchestrator's own health: open to anyone (load balancers, start scripts), and it reveals only up or down."""

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from orchestrator.api.schemas import DependencyHealth, HealthResponse
from orchestrator.state import State

router = APIRouter()
HEALTH_PROBE_TIMEOUT_SECONDS = 2.0


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
