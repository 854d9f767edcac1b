"""The agent registry: each agent's status hash lives only as long as its heartbeats renew it.

`agent:{id}` holds the AgentStatus fields (strings as they are, everything else as JSON), `active_agents` the ids.
Every write is announced on the `registry_changed` channel so a dispatcher waiting for an agent wakes at once.
`failed_agents` holds the operator's declarations that an agent failed; reads show such an agent `failed`.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from itertools import chain
from typing import Any, get_origin

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from shared.errors import PoolFullError
from shared.fleet_trust import FleetTrust
from shared.models import DEFAULT_AGENT_PORT_RANGE, AgentCapability, AgentStatus
from shared.redis.client import as_text, as_text_mapping
from shared.redis.failed_agents import FailedMark
from shared.redis.keys import RedisKeys

log = structlog.get_logger(__name__)

SUBSCRIBE_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_AGENTS = 16  # MAX_POOL_SIZE's default
_JSON_FIELDS = frozenset(
    name for name, field in AgentStatus.model_fields.items() if get_origin(field.annotation) is list
)

# Checks and removes in one step, so an agent re-registering between our read and the removal is never dropped.
_PRUNE_EXPIRED_MEMBERS = """
local removed = 0
for index, agent_id in ipairs(ARGV) do
    if redis.call('EXISTS', KEYS[index + 1]) == 0 then
        removed = removed + redis.call('SREM', KEYS[1], agent_id)
    end
end
return removed
"""


# Writes an agent's status, unless the agent is new and `limit` agents are live already (returns 0). One step, so two
# agents joining at once cannot both take the last place. Live means the member's hash still exists; the agent
# keys are built from their prefix here, as the set's members name them (one Redis, not a cluster).
_REGISTER_WITHIN_LIMIT = """
local active, key, prefix = KEYS[1], KEYS[2], KEYS[3]
local agent_id, ttl, limit, channel = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if redis.call('SISMEMBER', active, agent_id) == 0 then
    local live = 0
    for _, member in ipairs(redis.call('SMEMBERS', active)) do
        live = live + redis.call('EXISTS', prefix .. member)
    end
    if live >= limit then
        return 0
    end
end
redis.call('DEL', key)
redis.call('HSET', key, unpack(ARGV, 5))
redis.call('EXPIRE', key, ttl)
redis.call('SADD', active, agent_id)
redis.call('PUBLISH', channel, agent_id)
return 1
"""


def encode_agent_status(status: AgentStatus) -> dict[str, str]:
    """Hash fields of a status; None fields are left out."""
    values = status.model_dump(mode="json", exclude_none=True)
    return {name: value if isinstance(value, str) else json.dumps(value) for name, value in values.items()}


def decode_agent_status(fields: Mapping[str, str], port_range: tuple[int, int]) -> AgentStatus:
    values: dict[str, Any] = {name: json.loads(text) if name in _JSON_FIELDS else text for name, text in fields.items()}
    return AgentStatus.model_validate(values, context={"agent_port_range": port_range})


class RegistryWatcher:
    """A live subscription to registry changes; changes published between two `wait` calls are not missed."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    async def wait(self, timeout: float) -> bool:
        """True as soon as a change has been published since the last call, False after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Subscribe confirmations and health-check pongs end a read early without being a change.
        while not await self._next_change(max(deadline - loop.time(), 0)):
            if loop.time() >= deadline:
                return False
        while await self._next_change(0):  # a burst of changes needs one wake-up, not several
            pass
        return True

    async def _next_change(self, timeout: float) -> bool:
        message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
        return message is not None and message["type"] == "message"


class AgentRegistry:
    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        agent_port_range: tuple[int, int] = DEFAULT_AGENT_PORT_RANGE,
        trust: FleetTrust | None = None,
        max_agents: int = DEFAULT_MAX_AGENTS,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._port_range = agent_port_range
        # With the fleet's secret, entries are signed when written and those not signed by a member are left out
        # when read: anyone who reaches Redis can write one, and would otherwise be offered the tenant's work.
        self._trust = trust
        self._refused: set[str] = set()  # agent ids already logged as unregistered
        self._max_agents = max_agents  # MAX_POOL_SIZE: a new agent beyond it is refused
        self._prune_expired = redis.register_script(_PRUNE_EXPIRED_MEMBERS)
        self._register_within_limit = redis.register_script(_REGISTER_WITHIN_LIMIT)

    async def register_agent(self, status: AgentStatus, ttl: int) -> None:
        """Write the agent's status with a lifetime of `ttl` seconds (also the heartbeat) and announce it;
        PoolFullError for a new agent when the pool already has its most live agents (a live one always renews)."""
        if ttl < 1:
            raise ValueError("ttl must be at least 1 second")
        if self._trust is not None:
            status = self._trust.register(status)
        encoded = encode_agent_status(status)
        decode_agent_status(encoded, self._port_range)  # a status readers would refuse is refused here instead
        # The hash is replaced whole: HSET alone would keep fields the new status left out (a finished current_task).
        agent_prefix = self._keys.pattern("agent").removesuffix("*")
        keys = [self._keys.active_agents(), self._keys.agent(status.agent_id), agent_prefix]
        arguments: list[str | int] = [status.agent_id, ttl, self._max_agents, self._keys.registry_changed()]
        written = await self._register_within_limit(keys=keys, args=[*arguments, *chain.from_iterable(encoded.items())])
        if not written:
            raise PoolFullError(
                f"the pool is full: {self._max_agents} agents are live (MAX_POOL_SIZE), so agent {status.agent_id} "
                "is not registered; stop one, or raise MAX_POOL_SIZE"
            )

    async def deregister_agent(self, agent_id: str) -> bool:
        """Remove the agent at once; False if it was not registered."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.agent(agent_id))
            pipe.srem(self._keys.active_agents(), agent_id)
            pipe.publish(self._keys.registry_changed(), agent_id)
            _, removed, _ = await pipe.execute()
        return bool(removed)

    async def mark_failed(self, agent_id: str, started_at: datetime | None) -> FailedMark:
        """Declare the agent process that started at `started_at` failed (replacing an earlier declaration) and
        announce it, so every dispatcher reads the registry again at once."""
        mark = FailedMark(started_at, datetime.now(UTC))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.failed_agents(), agent_id, mark.encode())
            pipe.publish(self._keys.registry_changed(), agent_id)
            await pipe.execute()
        return mark

    async def get_agent(self, agent_id: str) -> AgentStatus | None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.agent(agent_id))
            pipe.hget(self._keys.failed_agents(), agent_id)
            fields, mark = await pipe.execute()
        status = self._decode(agent_id, as_text_mapping(fields)) if fields else None
        return self._with_mark(status, self._decode_marks({agent_id: mark} if mark else {})) if status else None

    async def get_agents(self) -> list[AgentStatus]:
        """Every live agent, by id, `failed` where a declaration holds; members whose hash has expired are pruned
        from `active_agents`."""
        agent_ids = sorted(as_text(member) for member in await self._redis.smembers(self._keys.active_agents()))
        async with self._redis.pipeline(transaction=False) as pipe:
            for agent_id in agent_ids:
                pipe.hgetall(self._keys.agent(agent_id))
            pipe.hgetall(self._keys.failed_agents())
            *hashes, marks = await pipe.execute()
        expired = [agent_id for agent_id, fields in zip(agent_ids, hashes, strict=True) if not fields]
        if expired:
            await self._prune(expired)
        live = [(agent_id, fields) for agent_id, fields in zip(agent_ids, hashes, strict=True) if fields]
        failed = self._decode_marks(marks)
        return [
            self._with_mark(status, failed) for agent_id, fields in live if (status := self._decode(agent_id, fields))
        ]

    async def get_available_agents(self, capability: AgentCapability | None = None) -> list[AgentStatus]:
        return [
            agent
            for agent in await self.get_agents()
            if agent.is_available and (capability is None or capability in agent.capabilities)
        ]

    @asynccontextmanager
    async def watch(self) -> AsyncIterator[RegistryWatcher]:
        """Subscribe to registry changes; the subscription is active when the block starts."""
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._keys.registry_changed())
            # The confirmation proves the server has the subscription, so no later change can slip past it.
            if await pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT_SECONDS) is None:
                raise TimeoutError("Redis did not confirm the registry subscription")
            yield RegistryWatcher(pubsub)
        finally:
            await pubsub.aclose()

    async def wait_for_registry_change(self, timeout: float) -> bool:
        """True when a change is published within `timeout` seconds; one-shot, see `watch` to keep listening."""
        async with self.watch() as watcher:
            return await watcher.wait(timeout)

    async def _prune(self, agent_ids: Sequence[str]) -> None:
        keys = [self._keys.active_agents(), *(self._keys.agent(agent_id) for agent_id in agent_ids)]
        removed = await self._prune_expired(keys=keys, args=list(agent_ids))
        if removed:
            log.info("expired_agents_pruned", agent_ids=list(agent_ids), count=removed)

    @staticmethod
    def _with_mark(status: AgentStatus, marks: Mapping[str, FailedMark]) -> AgentStatus:
        mark = marks.get(status.agent_id)
        return mark.apply(status) if mark is not None else status

    @staticmethod
    def _decode_marks(fields: Mapping[Any, Any]) -> dict[str, FailedMark]:
        marks = {}
        for agent_id, text in as_text_mapping(fields).items():
            try:
                marks[agent_id] = FailedMark.decode(text)
            except (ValueError, KeyError, TypeError) as error:  # not written by mark_failed; the rest still count
                log.error("failed_mark_unreadable", agent_id=agent_id, error=repr(error))
        return marks

    def _decode(self, agent_id: str, fields: Mapping[str, str]) -> AgentStatus | None:
        try:
            status = decode_agent_status(fields, self._port_range)
        except ValueError as error:  # ValidationError or bad JSON; one bad hash must not hide the rest of the fleet
            log.error("agent_status_unreadable", agent_id=agent_id, error=str(error))
            return None
        if self._trust is not None and not self._trust.registration_holds(status):
            if agent_id not in self._refused:
                self._refused.add(agent_id)
                log.warning("agent_registration_refused", agent_id=agent_id, url=status.url)
            return None
        return status
