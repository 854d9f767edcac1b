"""Pool endpoints (seed 004, for operator keys): start agents, list and stop those the pool started.

GET /agents (orchestrator/api/fleet.py) lists every live agent, the pool's and those that joined on their own.
"""

from fastapi import APIRouter, status

from orchestrator.api.pool_schemas import (
    PoolInitializeRequest,
    PoolResponse,
    PoolShutdownResponse,
    SpawnAgentRequest,
    SpawnedAgentResponse,
)
from orchestrator.state import State
from shared.errors import error_responses

router = APIRouter(tags=["pool"])


@router.post("/pool/initialize", response_model=PoolResponse, responses=error_responses(400, 409, 429, 500, 502, 503))
async def initialize_pool(state: State, request: PoolInitializeRequest | None = None) -> PoolResponse:
    """Start agents until the pool has `size` of its own; answers once each is registered and healthy."""
    request = request or PoolInitializeRequest()
    members = await state.pool.initialize(request.size, request.capabilities)
    return PoolResponse(launcher=state.pool.launcher_name, agents=members)


@router.get("/pool", response_model=PoolResponse, responses=error_responses(400, 500, 503))
async def pool(state: State) -> PoolResponse:
    """The agents the pool started, running or exited."""
    return PoolResponse(launcher=state.pool.launcher_name, agents=await state.pool.members())


@router.delete("/pool", response_model=PoolShutdownResponse, responses=error_responses(400, 500, 503))
async def shut_down_pool(state: State) -> PoolShutdownResponse:
    """Stop every agent the pool started after its drain; queued work stays queued for the agents that remain."""
    return PoolShutdownResponse(stopped=await state.pool.shut_down())


@router.post(
    "/agents",
    status_code=status.HTTP_201_CREATED,
    response_model=SpawnedAgentResponse,
    responses=error_responses(400, 409, 429, 500, 502, 503),
)
async def spawn_agent(state: State, request: SpawnAgentRequest) -> SpawnedAgentResponse:
    """Start one agent; 429 when MAX_POOL_SIZE agents are live, 409 when its id is live or agents cannot be
    started here."""
    member = await state.pool.spawn(request.capabilities, request.agent_id)
    return SpawnedAgentResponse(**member.model_dump(include=set(SpawnedAgentResponse.model_fields)))
