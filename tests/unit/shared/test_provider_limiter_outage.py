"""The fleet's provider limiter is advice: while its Redis cannot be reached it lets calls through, warning once."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from shared.config import ProviderLimit
from shared.models import ProviderWait
from shared.provider_limits import ProviderLimiter
from shared.redis.keys import RedisKeys

MODEL = "claude-sonnet-5-5"


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[Redis]:
    client = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)  # nothing listens on port 1
    yield client
    await client.aclose()


async def test_without_redis_every_call_goes_through_and_the_outage_is_one_warning(
    unreachable_redis: Redis,
) -> None:
    limits = {MODEL: ProviderLimit(requests_per_minute=1, tokens_per_minute=100)}
    limiter = ProviderLimiter(unreachable_redis, RedisKeys("outage-test"), limits)
    exhausted = {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": (datetime.now(UTC) + timedelta(seconds=30)).isoformat(),
    }

    with capture_logs() as logs:
        assert [await limiter.admit(MODEL, 50) for _ in range(3)] == [0.0, 0.0, 0.0]
        await limiter.refused(MODEL, ProviderWait(kind="rate_limited", retry_after_seconds=5), 2.0)
        await limiter.heed(MODEL, exhausted)
        await limiter.charge(MODEL, 500)

    warnings = [entry for entry in logs if entry["event"] == "provider_limiter_unreachable"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
