"""Reliable FIFO queues: a taken item waits in its consumer's in-flight list until the consumer acks it.

A consumer heartbeats (`heartbeat_consumer`) before it takes and for as long as it holds items; one without a live
liveness key counts as dead. Whoever runs `recover_dead_consumers` puts a dead consumer's in-flight items back at the
head of the queue, so an item taken by a process that died before acking is delivered again rather than lost.
Delivery is therefore at least once; the consumer makes the effect idempotent (PostgreSQL decides whether a result
still applies).

`take` passes its timeout to Redis rather than wrapping the call in `asyncio.timeout`: cancelling a BLMOVE
client-side can strand the item it moved in the in-flight list of a consumer that is still alive.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import structlog
from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.redis.client import as_text
from shared.redis.keys import RedisKeys, last_segment

log = structlog.get_logger(__name__)

# Moves up to ARGV[1] items from the queue's head to the in-flight list in one atomic step (LMOVE each, so the
# same guarantees as `take`), stopping when the queue is empty.
_TAKE_WAITING_SCRIPT = """
local items = {}
for _ = 1, tonumber(ARGV[1]) do
    local item = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
    if not item then break end
    items[#items + 1] = item
end
return items
"""


class DeadLetter(BaseModel):
    """An item that can never be processed, kept with why, for a person to look at."""

    payload: str
    reason: str
    rejected_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ReliableQueue:
    """One queue; `scope` names one of a family of queues (an agent's offers: `agent_offers:{agent_id}`)."""

    def __init__(self, redis: Redis, keys: RedisKeys, name: str, *scope: str) -> None:
        self._redis = redis
        self._keys = keys
        self.name = name
        self._parts = (name, *scope)
        self.key = keys.key(*self._parts)
        self.dead_letter_key = keys.key(*self._parts, "dead_letter")
        self._take_waiting = redis.register_script(_TAKE_WAITING_SCRIPT)

    def inflight_key(self, consumer_id: str) -> str:
        return self._keys.key(*self._parts, "inflight", consumer_id)

    async def push(self, payload: str) -> int:
        """Append one item; returns the queue's new length."""
        return await self._redis.rpush(self.key, payload)

    async def push_many(self, payloads: Sequence[str]) -> int:
        if not payloads:
            return await self.length()
        return await self._redis.rpush(self.key, *payloads)

    async def take(self, consumer_id: str, timeout: float) -> str | None:
        """Move the oldest item to the consumer's in-flight list, waiting up to `timeout` seconds for one."""
        if timeout <= 0:
            raise ValueError("timeout must be positive (BLMOVE with 0 blocks forever)")
        # Redis accepts fractional seconds here; redis-py annotates the timeout as int.
        timeout_arg: int = timeout  # type: ignore[assignment]
        item = await self._redis.blmove(self.key, self.inflight_key(consumer_id), timeout_arg, "LEFT", "RIGHT")
        return None if item is None else as_text(item)

    async def take_many(self, consumer_id: str, timeout: float, limit: int) -> list[str]:
        """Up to `limit` items that are waiting, or, when none is, the first to arrive within `timeout` seconds.

        Waiting items are taken first (one round trip for a batch under load) and the blocking wait comes only
        after, so an item that arrives at an idle queue costs no extra round trip once it is there.
        """
        taken = await self._take_waiting(keys=[self.key, self.inflight_key(consumer_id)], args=[limit])
        if taken:
            return [as_text(item) for item in taken]
        first = await self.take(consumer_id, timeout)
        return [] if first is None else [first]

    async def ack(self, consumer_id: str, payload: str) -> bool:
        """Drop a processed item from the in-flight list; False if it was not there (already recovered)."""
        return await self._redis.lrem(self.inflight_key(consumer_id), 1, payload) == 1

    async def ack_many(self, consumer_id: str, payloads: Sequence[str]) -> None:
        """Drop several processed items from the in-flight list in one round trip."""
        if not payloads:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            self.ack_to(pipe, consumer_id, payloads)
            await pipe.execute()

    def ack_to(self, pipe: Pipeline, consumer_id: str, payloads: Sequence[str]) -> None:
        """Queue `ack_many`'s commands on a pipeline shared with other work."""
        for payload in payloads:
            pipe.lrem(self.inflight_key(consumer_id), 1, payload)

    async def reject(self, consumer_id: str, payload: str, reason: str) -> None:
        """Move an item that can never be processed from the in-flight list to the dead-letter list, with why."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self.dead_letter_key, DeadLetter(payload=payload, reason=reason).model_dump_json())
            pipe.lrem(self.inflight_key(consumer_id), 1, payload)
            await pipe.execute()

    async def remove(self, payload: str) -> int:
        """Withdraw every waiting copy of an item (cancelled work); returns how many were removed."""
        return await self._redis.lrem(self.key, 0, payload)

    async def length(self) -> int:
        return await self._redis.llen(self.key)

    async def inflight(self, consumer_id: str) -> list[str]:
        return await self._strings(self.inflight_key(consumer_id))

    async def waiting_and_inflight(self) -> list[str]:
        """Every item still to be processed: waiting in the queue or held by any consumer."""
        items = await self._strings(self.key)
        async for inflight_key in self._redis.scan_iter(match=self._keys.pattern(*self._parts, "inflight"), count=100):
            items += await self._strings(as_text(inflight_key))
        return items

    async def dead_letters(self) -> list[DeadLetter]:
        return [DeadLetter.model_validate_json(entry) for entry in await self._strings(self.dead_letter_key)]

    async def heartbeat_consumer(self, consumer_id: str, ttl: int) -> None:
        await self._redis.set(self._keys.key(*self._parts, "consumer", consumer_id), "1", ex=ttl)

    async def recover(self, consumer_id: str) -> int:
        """Put every in-flight item of the consumer back at the head of the queue; returns how many moved."""
        inflight_key = self.inflight_key(consumer_id)
        moved = 0
        # Newest first onto the head keeps the items' original order. Each LMOVE is atomic, so a concurrent
        # recoverer may move the next item but never the same one twice.
        while await self._redis.lmove(inflight_key, self.key, "RIGHT", "LEFT") is not None:
            moved += 1
        return moved

    async def recover_dead_consumers(self) -> int:
        """Recover the in-flight items of every consumer whose liveness key has expired."""
        recovered = 0
        async for inflight_key in self._redis.scan_iter(match=self._keys.pattern(*self._parts, "inflight"), count=100):
            consumer_id = last_segment(as_text(inflight_key))
            if not await self._redis.exists(self._keys.key(*self._parts, "consumer", consumer_id)):
                moved = await self.recover(consumer_id)
                if moved:
                    log.warning("dead_consumer_items_recovered", queue=self.name, consumer_id=consumer_id, count=moved)
                recovered += moved
        return recovered

    async def _strings(self, key: str) -> list[str]:
        return [as_text(item) for item in await self._redis.lrange(key, 0, -1)]
