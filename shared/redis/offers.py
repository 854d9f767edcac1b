"""Offers travel to agents through Redis: each agent takes its offers from a reliable queue of its own, and tells the
orchestrator about an offer it refused through one shared queue of refusals.

An agent's queue is `agent_offers:{agent_id}`; the agent holds what it took in its in-flight list until it pushed the
attempt's result (or refused the offer), so an agent that dies holding offers leaves them there, never lost: the
orchestrator's failure detection hands the attempts back through PostgreSQL and clears the queue, and the delivery
token the accept UPDATE checks keeps an offer from running after its attempt was handed back, even on an agent that
comes back under the same id.
"""

from collections.abc import Mapping, Sequence

from pydantic import Field
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.models import DomainModel, Identifier
from shared.redis.keys import OFFER_QUEUE, REFUSAL_QUEUE, RedisKeys
from shared.redis.queues import ReliableQueue

# The one consumer of an agent's own offer queue: the agent, under whatever process serves its id.
OFFER_CONSUMER = "intake"


class OfferRefusal(DomainModel):
    """An agent's answer to an offer it will not run: the orchestrator takes the attempt back (unless it was accepted)
    and offers it elsewhere."""

    subtask_id: Identifier
    attempt: int = Field(ge=1)
    delivery_token: str
    agent_id: Identifier
    reason: str


class OfferQueues:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self.refusals = ReliableQueue(redis, keys, REFUSAL_QUEUE)

    def of(self, agent_id: str) -> ReliableQueue:
        """The queue `agent_id` takes its offers from."""
        return ReliableQueue(self._redis, self._keys, OFFER_QUEUE, agent_id)

    def add_to(self, pipe: Pipeline, offers: Mapping[str, Sequence[str]]) -> None:
        """Queue the pushes of signed offers (JSON bodies, by agent id) on a pipeline shared with other work."""
        for agent_id, bodies in offers.items():
            if bodies:
                pipe.rpush(self.of(agent_id).key, *bodies)

    async def waiting(self, agent_id: str) -> list[str]:
        """The offers waiting in the agent's queue and those it holds in flight."""
        queue = self.of(agent_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.lrange(queue.key, 0, -1)
            pipe.lrange(queue.inflight_key(OFFER_CONSUMER), 0, -1)
            waiting, held = await pipe.execute()
        return [item.decode() if isinstance(item, bytes) else item for item in [*waiting, *held]]

    async def agent_ids(self) -> set[str]:
        """The agents that have offers waiting or held in flight."""
        prefix_parts = len(self._keys.key(OFFER_QUEUE).split(":"))
        return {
            (key.decode() if isinstance(key, bytes) else key).split(":")[prefix_parts]
            async for key in self._redis.scan_iter(match=self._keys.pattern(OFFER_QUEUE), count=500)
        }

    async def clear(self, agent_id: str) -> int:
        """Drop every offer of an agent declared failed or gone (their attempts were handed back): returns how many
        lists held some. What a live process under that id still runs reports as usual, and changes nothing."""
        queue = self.of(agent_id)
        deleted: int = await self._redis.delete(queue.key, queue.inflight_key(OFFER_CONSUMER))
        return deleted
