"""Small keys that expire: task-scoped shared state between agents, and idempotency claims."""

from collections.abc import Collection

from redis.asyncio import Redis

from shared.redis.client import as_text
from shared.redis.keys import RedisKeys, last_segment, validate_segment


def _require_ttl(ttl: int) -> None:
    if ttl < 1:
        raise ValueError("ttl must be at least 1 second")


class SharedState:
    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys

    def _state_key(self, task_id: str, key: str) -> str:
        return self._keys.state(validate_segment(task_id, "task id"), validate_segment(key, "shared state key"))

    async def set_shared_state(self, task_id: str, key: str, value: str, ttl: int) -> None:
        _require_ttl(ttl)
        await self._redis.set(self._state_key(task_id, key), value, ex=ttl)

    async def get_shared_state(self, task_id: str, key: str) -> str | None:
        value = await self._redis.get(self._state_key(task_id, key))
        return None if value is None else as_text(value)

    async def list_shared_state(self, task_id: str) -> dict[str, str]:
        """Every live key of the task with its value."""
        pattern = self._keys.pattern("state", validate_segment(task_id, "task id"))
        redis_keys = [as_text(key) async for key in self._redis.scan_iter(match=pattern, count=100)]
        if not redis_keys:
            return {}
        values = await self._redis.mget(redis_keys)
        # A key may expire between SCAN and MGET; it is simply absent then.
        return {
            last_segment(redis_key): as_text(value)
            for redis_key, value in zip(redis_keys, values, strict=True)
            if value is not None
        }

    async def forget_tasks(self, task_ids: Collection[str]) -> int:
        """Delete every key of these tasks' shared state, found by one SCAN for all of them; how many went."""
        wanted = set(task_ids)
        if not wanted:
            return 0
        prefix = self._keys.key("state") + ":"
        doomed = [
            redis_key
            async for redis_key in self._redis.scan_iter(match=self._keys.pattern("state"), count=500)
            if as_text(redis_key)[len(prefix) :].partition(":")[0] in wanted
        ]
        return await self._redis.delete(*doomed) if doomed else 0

    async def claim_once(self, key: str, ttl: int) -> bool:
        """True for the first caller to claim `key` within `ttl` seconds, False for every later one."""
        _require_ttl(ttl)
        claimed = await self._redis.set(
            self._keys.idempotency(validate_segment(key, "idempotency key")), "1", nx=True, ex=ttl
        )
        return bool(claimed)
