"""The task lifecycle on the real PostgreSQL and Redis, for tests that call it (or one loop around it) directly."""

from collections.abc import AsyncIterator, Iterator

import pytest

from orchestrator.fleet_view import FleetView
from orchestrator.lifecycle import TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager
from shared.redis_manager import RedisManager
from tests.factories import results_signed_for
from tests.network import link_to


@pytest.fixture(autouse=True)
def signed_results(orchestrator_settings: Settings) -> Iterator[None]:
    """The results these tests build answer assignments of the test's orchestrator, as its agents' would."""
    with results_signed_for(orchestrator_settings):
        yield


@pytest.fixture
def lifecycle(orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager) -> TaskLifecycle:
    fleet = FleetView.of(test_redis, orchestrator_settings.heartbeat_ttl_seconds)
    return TaskLifecycle(orchestrator_settings, db, test_redis, fleet)


@pytest.fixture
async def unreachable_redis(orchestrator_settings: Settings) -> AsyncIterator[RedisManager]:
    """A RedisManager connected through a link that is then cut: every command fails as in an outage."""
    link, url = link_to(orchestrator_settings.redis_url)
    manager = RedisManager(orchestrator_settings.model_copy(update={"redis_url": url}))
    await manager.connect()
    link.cut()
    yield manager
    link.close()
    await manager.disconnect()
