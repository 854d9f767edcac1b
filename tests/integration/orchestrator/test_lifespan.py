"""The orchestrator's start-up closes what it opened when a later step fails: a half-started service leaks nothing."""

import uuid

import pytest
import redis.exceptions

from orchestrator.app import create_app, lifespan
from shared.config import Settings
from tests.conftest import drop_database
from tests.data_sources import connected


async def test_a_start_that_fails_at_redis_leaves_no_database_connection_open(
    orchestrator_settings: Settings, settings: Settings
) -> None:
    database = f"mats_lifespan_{uuid.uuid4().hex[:8]}"
    own_url = f"{settings.postgres_url.rpartition('/')[0]}/{database}"
    refused = orchestrator_settings.model_copy(
        update={
            "postgres_url": own_url,
            # Redis answers, and refuses this password at once (no retry would change that).
            "redis_url": "redis://:not-the-password@127.0.0.1:6379/15",
            "anthropic_base_url": "http://127.0.0.1:9",
        }
    )
    try:
        with pytest.raises(redis.exceptions.AuthenticationError):
            async with lifespan(create_app(refused)):
                pass
        async with connected(settings.postgres_url) as observer:
            open_connections = await observer.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", database
            )
        assert open_connections == 0
    finally:
        await drop_database(own_url)
