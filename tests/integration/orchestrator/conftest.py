"""The task lifecycle on the real PostgreSQL and Redis, for tests that call it (or one loop around it) directly."""

import pytest

from orchestrator.fleet_view import FleetView
from orchestrator.lifecycle import TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager
from shared.redis_manager import RedisManager


@pytest.fixture
def lifecycle(orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager) -> TaskLifecycle:
    fleet = FleetView.of(test_redis, orchestrator_settings.heartbeat_ttl_seconds)
    return TaskLifecycle(orchestrator_settings, db, test_redis, fleet)
