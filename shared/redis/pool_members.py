"""Which agents the pool started, kept in Redis under the tenant so that a restarted orchestrator finds them again.

One hash, `pool_members`: agent id -> the PoolMember as JSON. The agents' own liveness is their registry entry; this
record is what only the starter knows: the process (pid and its start time, so a reused pid is never mistaken for
the agent), its port and its log file.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared.models import AgentCapability, utc_now
from shared.redis.client import as_text
from shared.redis.keys import RedisKeys


class PoolMember(BaseModel):
    """An agent process the pool started."""

    agent_id: str
    url: str
    port: int
    capabilities: list[AgentCapability]
    pid: int
    process_started_at: float = Field(description="The process's start time (seconds since the epoch), with the pid")
    log_path: str = Field(description="The agent's log file on the orchestrator's machine")
    started_at: datetime = Field(default_factory=utc_now)
    state: Literal["running", "exited"] = "running"
    exit_code: int | None = Field(None, description="How the process ended, when the pool saw it end; else null")


class PoolMembers:
    """The tenant's pool members in Redis."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._key = keys.key("pool_members")

    async def save(self, member: PoolMember) -> None:
        await self._redis.hset(self._key, member.agent_id, member.model_dump_json())

    async def forget(self, agent_id: str) -> None:
        await self._redis.hdel(self._key, agent_id)

    async def get(self, agent_id: str) -> PoolMember | None:
        stored = await self._redis.hget(self._key, agent_id)
        return None if stored is None else PoolMember.model_validate_json(as_text(stored))

    async def all(self) -> list[PoolMember]:
        """Every member, by agent id."""
        stored = await self._redis.hgetall(self._key)
        members = [PoolMember.model_validate_json(as_text(value)) for value in stored.values()]
        return sorted(members, key=lambda member: member.agent_id)
