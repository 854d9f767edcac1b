"""The service's lifespan: registered while it serves; on exit it drains, reports what it cancelled, writes its
pending records and deregisters."""

from agent.runner import SHUTDOWN_ERROR
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import ResultStatus
from shared.redis_manager import RedisManager
from tests.unit.agent.fixtures import OfferFactory, SettingsFactory, serving


async def test_the_agent_registers_on_start_and_leaves_the_registry_on_exit(
    agent_settings: Settings, db: DatabaseManager, agent_redis: RedisManager
) -> None:
    async with serving(agent_settings):
        status = await agent_redis.registry.get_agent(agent_settings.agent_id)
        assert status is not None and status.is_available
    assert await agent_redis.registry.get_agent(agent_settings.agent_id) is None
    assert agent_settings.agent_id not in await agent_redis.client.smembers(agent_redis.keys.active_agents())


async def test_exit_reports_a_running_subtask_as_failed_retryable(
    agent_settings_factory: SettingsFactory,
    db: DatabaseManager,
    agent_redis: RedisManager,
    offered_request: OfferFactory,
) -> None:
    settings = agent_settings_factory(agent_stub_delay_seconds=60, agent_shutdown_grace_seconds=0.2)
    request = await offered_request()
    async with serving(settings) as (_, client):
        accepted = await client.post("/execute", json=request.model_dump(mode="json"))
        assert accepted.status_code == 200, accepted.text
        assert (await client.get("/health")).json()["is_available"] is False

    delivery = await agent_redis.dequeue_result("test-consumer", 5.0)
    assert delivery is not None
    result = delivery[1]
    assert (result.subtask_id, result.status, result.retryable) == (request.subtask.id, ResultStatus.FAILED, True)
    assert result.error == SHUTDOWN_ERROR
    assert await agent_redis.registry.get_agent(settings.agent_id) is None
    # The batched audit rows were written on the way out, before the pool closed.
    logs = await Repositories(db.pool, settings.tenant_id).audit.list_agent_logs(task_id=request.task_id)
    assert [log.message for log in logs] == ["subtask failed", "subtask started"]
