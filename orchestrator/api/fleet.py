"""Fleet endpoints: the agent registry (`registry`, for operator keys) and the tenant's agent logs (`logs`).

The registry is the fleet's inside: each agent's address (where assignments are delivered), load and running
subtasks. A client submits, reads and cancels its tasks without it, so the app serves it to operator keys only.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response

from orchestrator.api.schemas import (
    AgentFailedResponse,
    AgentListResponse,
    AgentLogListResponse,
    AgentRecord,
    AvailableAgentsResponse,
    MetricsResponse,
)
from orchestrator.api.tasks import NO_NUL
from orchestrator.fleet_view import utilization
from orchestrator.metrics import read_stored_state
from orchestrator.state import State
from shared.errors import InvalidInputError, error_responses
from shared.models import AgentCapability, LogLevel
from shared.prometheus import OPENMETRICS, PLAIN_TEXT, prometheus_media_range

registry = APIRouter(tags=["agents"])
logs = APIRouter(tags=["agents"])


@registry.get("/agents", response_model=AgentListResponse, responses=error_responses(400, 500, 503))
async def list_agents(state: State) -> AgentListResponse:
    """Every agent whose heartbeat has not expired."""
    return AgentListResponse(agents=await state.redis.get_agents())


@registry.post(
    "/agents/{agent_id}/fail",
    response_model=AgentFailedResponse,
    responses={
        **error_responses(400, 413, 415, 500, 503),
        404: {**error_responses(404)[404], "description": "No registry entry and no running subtask for the id"},
    },
)
async def fail_agent(
    state: State, agent_id: Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")]
) -> AgentFailedResponse:
    """Declare an agent failed: it gets no more work, its running subtasks go to other agents at once, and it is
    told to drain. Repeating it is harmless (nothing more is handed back)."""
    return await state.agent_failures.declare_failed(agent_id)


PROMETHEUS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON by default; the Prometheus text format or OpenMetrics when `Accept` names "
        f"`{PLAIN_TEXT}` or `{OPENMETRICS}` with q > 0 (what a Prometheus scrape sends)",
        "content": {
            PLAIN_TEXT: {"schema": {"type": "string"}},
            OPENMETRICS: {"schema": {"type": "string"}},
        },
    }
}


@registry.get(
    "/metrics", response_model=MetricsResponse, responses={**PROMETHEUS_RESPONSE, **error_responses(400, 500, 503)}
)
async def metrics(
    state: State, accept: Annotated[str | None, Header(include_in_schema=False)] = None
) -> MetricsResponse | Response:
    """Tasks by state, assignment latency, utilization, queue depth per capability and each agent's record; for a
    Prometheus scrape (by `Accept`), every metric of docs/api.md "Prometheus metrics" in its text format."""
    media_range = prometheus_media_range(accept)
    if media_range is not None:
        stored_state = await read_stored_state(state.db, state.redis, state.lifecycle.fleet.directory.agents)
        body, content_type = state.metrics.render(stored_state, media_range)
        return Response(body, media_type=content_type)
    stored = await state.db.repositories().metrics.fleet_metrics()
    agents = await state.redis.get_agents()
    return MetricsResponse(
        tasks_pending=stored.tasks_pending,
        tasks_completed=stored.tasks_completed,
        tasks_failed=stored.tasks_failed,
        avg_assignment_latency_ms=stored.avg_assignment_latency_ms,
        utilization=utilization(agents),
        live_agents=len(agents),
        queue_depth_by_capability=stored.queued_by_capability,
        agents={agent_id: AgentRecord(**record) for agent_id, record in stored.agent_records.items()},
    )


@registry.get("/agents/available", response_model=AvailableAgentsResponse, responses=error_responses(400, 500, 503))
async def available_agents(state: State, capability: AgentCapability | None = None) -> AvailableAgentsResponse:
    """Live agents that are accepting work, optionally only those with one capability."""
    return AvailableAgentsResponse(available_agents=await state.redis.get_available_agents(capability))


@logs.get("/logs", response_model=AgentLogListResponse, responses=error_responses(400, 500, 503))
async def agent_logs(
    state: State,
    agent_id: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    task_id: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    subtask_id: Annotated[str | None, Query(max_length=128, pattern=NO_NUL)] = None,
    trace_id: Annotated[
        str | None, Query(max_length=128, pattern=NO_NUL, description="The trace_id of a task (its X-Request-ID)")
    ] = None,
    level: LogLevel | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AgentLogListResponse:
    """This tenant's agent activity recorded in PostgreSQL, newest first; every filter given must match."""
    entries = await state.db.repositories().audit.list_agent_logs(
        agent_id=agent_id,
        task_id=task_id,
        subtask_id=subtask_id,
        trace_id=trace_id,
        level=level,
        since=_in_utc("since", since),
        until=_in_utc("until", until),
        limit=limit,
    )
    return AgentLogListResponse(logs=entries)


def _in_utc(name: str, moment: datetime | None) -> datetime | None:
    """The database compares in UTC; at the calendar's edges (0001-01-01T00:00+01:00) there is no UTC equivalent."""
    if moment is None or moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInputError(f"{name}: {moment.isoformat()} has no UTC equivalent") from None
