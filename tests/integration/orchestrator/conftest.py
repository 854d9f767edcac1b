"""The task lifecycle on the real PostgreSQL and Redis, for tests that call it (or one loop around it) directly."""

from collections.abc import Iterator

import pytest

from orchestrator.fleet_view import FleetView
from orchestrator.lifecycle import TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager
from shared.redis_manager import RedisManager
from tests.factories import results_signed_for


@pytest.fixture(autouse=True)
def signed_results(orchestrator_settings: Settings) -> Iterator[None]:
    """The results these tests build answer assignments of the test's orchestrator, as its agents' would."""
    with results_signed_for(orchestrator_settings):
        yield


@pytest.fixture
def lifecycle(orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager) -> TaskLifecycle:
    fleet = FleetView.of(test_redis, orchestrator_settings.heartbeat_ttl_seconds)
    return TaskLifecycle(orchestrator_settings, db, test_redis, fleet)
