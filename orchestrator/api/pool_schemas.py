"""Request and response bodies of the pool endpoints (orchestrator/api/pool.py)."""

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from shared.models import AgentCapability
from shared.redis.pool_members import PoolMember

POOL_SIZE_LIMIT = 16  # the seed's bound on one pool's size; MAX_POOL_SIZE bounds all live agents
CapabilitySet = Annotated[list[AgentCapability], Field(min_length=1, max_length=len(AgentCapability))]
# As AGENT_ID accepts it (shared/config.py).
AGENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


class PoolInitializeRequest(BaseModel):
    size: int | None = Field(
        None, ge=1, le=POOL_SIZE_LIMIT, description="Agents the pool should have started; default DEFAULT_POOL_SIZE"
    )
    capabilities: list[CapabilitySet] | None = Field(
        None,
        min_length=1,
        max_length=POOL_SIZE_LIMIT,
        description="Each new agent's capabilities, in order, cycling when there are fewer sets than agents; "
        "default: the seed fleet's mix, agent1's first",
    )


class SpawnAgentRequest(BaseModel):
    capabilities: CapabilitySet
    agent_id: str | None = Field(
        None, pattern=AGENT_ID_PATTERN, description="Default: agent<n>, the smallest n no live agent has"
    )


class SpawnedAgentResponse(BaseModel):
    agent_id: str
    url: str
    capabilities: list[AgentCapability]
    pid: int
    port: int
    log_path: str


class PoolResponse(BaseModel):
    """The agents the pool started: running ones, and any that exited since (reported, not restarted)."""

    launcher: Literal["native", "none"] = Field(description="AGENT_LAUNCHER: whether this orchestrator starts agents")
    agents: list[PoolMember]


class PoolShutdownResponse(BaseModel):
    stopped: list[PoolMember] = Field(description="The pool's agents, each now exited, with its exit code if known")
