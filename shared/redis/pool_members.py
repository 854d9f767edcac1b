"""Which agents the pool started, kept in Redis under the tenant so that a restarted orchestrator finds them again.

One hash, `pool_members`: agent id -> the PoolMember as JSON with the fleet's signature of it. The agents' own
liveness is their registry entry; this record is what only the starter knows: the process (pid and its start time,
so a reused pid is never mistaken for the agent), its port and its log file. The pool signals the process a record
names, and anyone who reaches Redis can write one: with FLEET_SECRET, records are signed when saved and those not
signed by the fleet are left out when read, as the registry does with agents' entries.
"""

import json
from datetime import datetime
from typing import Literal

import structlog
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from shared.fleet_trust import FleetTrust
from shared.models import AgentCapability, utc_now
from shared.redis.client import as_text
from shared.redis.keys import RedisKeys

log = structlog.get_logger(__name__)


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

    def __init__(self, redis: Redis, keys: RedisKeys, trust: FleetTrust | None = None) -> None:
        self._redis = redis
        self._key = keys.key("pool_members")
        self._trust = trust
        self._refused: set[str] = set()  # agent ids already logged as not the fleet's

    async def save(self, member: PoolMember) -> None:
        record = member.model_dump_json()
        signature = self._trust.sign_pool_member(record) if self._trust is not None else ""
        await self._redis.hset(self._key, member.agent_id, json.dumps({"member": record, "signature": signature}))

    async def forget(self, agent_id: str) -> None:
        await self._redis.hdel(self._key, agent_id)

    async def get(self, agent_id: str) -> PoolMember | None:
        stored = await self._redis.hget(self._key, agent_id)
        return None if stored is None else self._decode(agent_id, as_text(stored))

    async def all(self) -> list[PoolMember]:
        """Every member the fleet saved, by agent id."""
        stored = await self._redis.hgetall(self._key)
        decoded = (self._decode(as_text(agent_id), as_text(value)) for agent_id, value in stored.items())
        return sorted((member for member in decoded if member is not None), key=lambda member: member.agent_id)

    def _decode(self, agent_id: str, stored: str) -> PoolMember | None:
        """The member a stored record names, or None (logged once per id) when the fleet did not write it."""
        try:
            envelope = json.loads(stored)
            record, signature = str(envelope["member"]), str(envelope["signature"])
            member = PoolMember.model_validate_json(record)
        except (ValueError, TypeError, KeyError) as error:  # not JSON or not a member (ValidationError: a ValueError)
            self._refuse(agent_id, f"unreadable: {error}")
            return None
        if self._trust is not None and not self._trust.pool_member_holds(record, signature):
            self._refuse(agent_id, "not signed by the fleet")
            return None
        if member.agent_id != agent_id:
            self._refuse(agent_id, f"filed under another agent id than its own ({member.agent_id})")
            return None
        return member

    def _refuse(self, agent_id: str, reason: str) -> None:
        if agent_id not in self._refused:  # the supervisor reads every second: one warning per id
            self._refused.add(agent_id)
            log.warning("pool_member_refused", agent_id=agent_id, reason=reason)
