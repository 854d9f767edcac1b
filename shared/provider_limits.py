"""The fleet-wide gate in front of the model's provider: requests and tokens per minute per model, and blocks the
provider itself asked for, all in Redis so every agent and orchestrator of the fleet shares them.

Every attempt start (in the agent, before the SDK query) and every decomposition call (in the orchestrator) takes
its share first. Requests use a moving window (no 60 s span ever holds more starts than the limit), tokens a sliding
window counter (a token count is too large for a list of entries); both are the `limits` library's, on the fleet's
own redis-py connection pool. A call is charged an estimate of its tokens when it starts and what it really used
beyond that when it ends, as far as the window still has room (the library refuses a hit over the limit).

The provider feeds it too: a 429 or 529 anywhere blocks its model fleet-wide until the provider's retry-after (else
the back-off base), as a Redis key whose time-to-live is the block, so nobody stampedes a provider that said stop.

The gate is advice, not the truth: while Redis cannot be reached it lets every call through (one warning per outage),
so planning and attempts go on as they do without Redis elsewhere; the provider's own 429s still make work wait.
"""

import asyncio
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import structlog
from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter, RateLimiter, SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis

from shared.config import ProviderLimit
from shared.models import ProviderWait
from shared.outages import REDIS_UNREACHABLE
from shared.redis.keys import RedisKeys

log = structlog.get_logger(__name__)

# The shortest wait a caller is told about: below it, a window is about to free a slot anyway.
MIN_WAIT_SECONDS = 0.05
# A wait this short is slept through by the caller; a longer one hands the work back to wait on the queue (an agent
# does not hold its slot meanwhile, a planning does not hold its request).
PATIENCE_SECONDS = 2.0
# Kinds of provider trouble after which nobody in the fleet calls the model until the provider's retry-after.
BLOCKING_KINDS = frozenset({"rate_limited", "overloaded"})
# What the limiter's Redis being away looks like, through redis-py or through the `limits` library.
LIMITER_OUTAGES = (*REDIS_UNREACHABLE, StorageError)
# Characters per token, roughly: what a call is charged before its usage is known.
CHARACTERS_PER_TOKEN = 4
# A model name as one part of a Redis key.
_UNSAFE_KEY_CHARACTERS = re.compile(r"[^A-Za-z0-9_.-]")
# Extend a block, never shorten it: two callers blocking at once keep the longer of their waits.
_EXTEND_BLOCK = """
if redis.call('pttl', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('set', KEYS[1], '1', 'px', ARGV[1])
end
return 1
"""


# The provider's rate-limit headers whose `-remaining` at 0 means: nothing more until `-reset` (an RFC 3339 time).
RATE_LIMIT_HEADERS = ("requests", "tokens", "input-tokens", "output-tokens")


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The provider's `retry-after` (seconds, or an HTTP date), if it sent one."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def exhausted_for(headers: Mapping[str, str]) -> float | None:
    """How long the provider's rate-limit headers say the model has nothing left: the latest reset of a limit
    whose remaining count is 0 (None when none is exhausted)."""
    waits = []
    for limit in RATE_LIMIT_HEADERS:
        if headers.get(f"anthropic-ratelimit-{limit}-remaining") != "0":
            continue
        try:
            reset = datetime.fromisoformat(headers.get(f"anthropic-ratelimit-{limit}-reset", ""))
        except ValueError:
            continue
        waits.append((reset - datetime.now(UTC)).total_seconds())
    return max(waits) if waits and max(waits) > 0 else None


class ProviderLimiter:
    def __init__(self, client: Redis, keys: RedisKeys, limits: Mapping[str, ProviderLimit]) -> None:
        self._client = client
        self._keys = keys
        self._limits = dict(limits)
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=keys.key("provider_limits"),
            connection_pool=client.connection_pool,  # type: ignore[arg-type]
        )
        self._requests: RateLimiter = MovingWindowRateLimiter(storage)
        self._tokens: RateLimiter = SlidingWindowCounterRateLimiter(storage)
        self._extend_block = client.register_script(_EXTEND_BLOCK)
        self._unreachable = False  # while Redis is away: its warning is logged once per outage

    @contextmanager
    def _unless_unreachable(self) -> Iterator[None]:
        """Runs the block; a Redis outage ends it quietly (logged once until Redis answers again)."""
        try:
            yield
        except LIMITER_OUTAGES as error:
            if not self._unreachable:
                log.warning("provider_limiter_unreachable", error=repr(error), effect="calls are not limited")
            self._unreachable = True
            return
        if self._unreachable:
            log.info("provider_limiter_reachable")
        self._unreachable = False

    def _block_key(self, model: str) -> str:
        return self._keys.key("provider_blocked", _UNSAFE_KEY_CHARACTERS.sub("_", model)[:128])

    async def blocked_for(self, model: str) -> float:
        """Seconds the provider asked the fleet to leave `model` alone, 0 when it did not."""
        remaining_ms = await self._client.pttl(self._block_key(model))
        return max(remaining_ms, 0) / 1000

    async def block(self, model: str, seconds: float) -> None:
        """Nobody in the fleet starts a call to `model` for `seconds` (a longer block already there stays)."""
        milliseconds = max(int(seconds * 1000), 1)
        await self._extend_block(keys=[self._block_key(model)], args=[milliseconds])
        log.info("provider_blocked", model=model, seconds=round(seconds, 3))

    async def refused(self, model: str, wait: ProviderWait, fallback_seconds: float) -> None:
        """The provider refused a call: after a 429 or 529 nobody in the fleet calls `model` until its retry-after
        (`fallback_seconds` when it gave none)."""
        if wait.kind in BLOCKING_KINDS:
            with self._unless_unreachable():
                await self.block(model, wait.retry_after_seconds or fallback_seconds)

    async def heed(self, model: str, headers: Mapping[str, str]) -> None:
        """What a successful answer's headers say: a limit the provider says is used up blocks the model until it
        resets."""
        seconds = exhausted_for(headers)
        if seconds:
            with self._unless_unreachable():
                await self.block(model, seconds)

    async def acquire(self, model: str, tokens: int) -> float:
        """Take one request and `tokens` of `model`'s share for a call about to start: 0 when taken, else the seconds
        until it might be (the provider's block, or the window that is full)."""
        blocked = await self.blocked_for(model)
        if blocked > 0:
            return blocked
        limit = self._limits.get(model)
        if limit is None:
            return 0.0
        # Tokens first: of the two, only a refused request window leaves a share taken for nothing (its tokens).
        for limiter, per_minute, cost in (
            (self._tokens, limit.tokens_per_minute, tokens),
            (self._requests, limit.requests_per_minute, 1),
        ):
            if per_minute is None:
                continue
            item = RateLimitItemPerMinute(per_minute)
            if not await limiter.hit(item, model, cost=min(max(cost, 1), per_minute)):
                return await self._wait_for(limiter, item, model)
        return 0.0

    async def admit(self, model: str, tokens: int, patience: float = PATIENCE_SECONDS) -> float:
        """`acquire`, sleeping through waits of at most `patience` seconds: 0 once taken (or while Redis is away),
        else the longer wait."""
        while True:
            wait = 0.0
            with self._unless_unreachable():
                wait = await self.acquire(model, tokens)
            if wait == 0 or wait > patience:
                return wait
            await asyncio.sleep(wait)

    async def charge(self, model: str, extra_tokens: int) -> None:
        """Tokens a call used beyond the estimate it took at its start, as far as the window has room left."""
        limit = self._limits.get(model)
        if extra_tokens <= 0 or limit is None or limit.tokens_per_minute is None:
            return
        item = RateLimitItemPerMinute(limit.tokens_per_minute)
        with self._unless_unreachable():
            room = (await self._tokens.get_window_stats(item, model)).remaining
            if room > 0:
                await self._tokens.hit(item, model, cost=min(extra_tokens, room))

    @staticmethod
    async def _wait_for(limiter: RateLimiter, item: RateLimitItem, model: str) -> float:
        stats = await limiter.get_window_stats(item, model)
        return max(stats.reset_time - time.time(), MIN_WAIT_SECONDS)
