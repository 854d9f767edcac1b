"""The heartbeat registers the agent's status with a TTL, and beats at once when a slot is taken or freed."""

import asyncio

from agent.executors import StubExecutor
from agent.heartbeat import Heartbeat
from agent.reporting import ResultReporter
from agent.roles import load_roles
from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import AgentCapability
from shared.redis_manager import RedisManager
from tests.unit.agent.fixtures import RequestFactory, SettingsFactory, registered_until


def wired(settings: Settings, db: DatabaseManager, redis: RedisManager) -> tuple[Heartbeat, SubtaskRunner]:
    heartbeat = Heartbeat(settings, redis)
    executor = StubExecutor.from_settings(settings)
    reporter = ResultReporter(settings, db, redis, executor.name)
    runner = SubtaskRunner(settings, load_roles(), executor, reporter, heartbeat.notify_change)
    heartbeat.attach(runner)
    return heartbeat, runner


async def test_a_beat_registers_the_full_status_with_a_ttl(
    agent_settings_factory: SettingsFactory, db: DatabaseManager, agent_redis: RedisManager
) -> None:
    settings = agent_settings_factory(
        agent_id="agent7", agent_port=8007, agent_capabilities="DATA_ANALYSIS,CODE_GENERATION", agent_concurrency=3
    )
    heartbeat, _ = wired(settings, db, agent_redis)

    await heartbeat.run_once()

    status = await agent_redis.registry.get_agent("agent7")
    assert status is not None
    assert (status.url, status.port, status.slots, status.executor) == ("http://localhost:8007", 8007, 3, "stub")
    assert status.capabilities == [AgentCapability.DATA_ANALYSIS, AgentCapability.CODE_GENERATION]
    assert status.is_available and status.current_tasks == []
    assert 0 <= status.cpu_usage <= 100 and 0 < status.memory_usage <= 100
    ttl = await agent_redis.client.ttl(agent_redis.keys.agent("agent7"))
    assert 0 < ttl <= settings.heartbeat_ttl_seconds


async def test_a_slot_change_is_announced_without_waiting_for_the_interval(
    agent_settings_factory: SettingsFactory,
    db: DatabaseManager,
    agent_redis: RedisManager,
    execution_request: RequestFactory,
) -> None:
    # An interval longer than the test's wait: only the change notifications can make it pass.
    settings = agent_settings_factory(
        heartbeat_interval_seconds=50, heartbeat_ttl_seconds=60, agent_stub_delay_seconds=0.3
    )
    heartbeat, runner = wired(settings, db, agent_redis)
    await heartbeat.run_once()
    loop = asyncio.create_task(heartbeat.start())
    try:
        request = execution_request()
        runner.accept(request)
        busy = await registered_until(agent_redis, settings.agent_id, lambda status: bool(status.current_tasks))
        idle = await registered_until(agent_redis, settings.agent_id, lambda status: status.tasks_completed == 1)
    finally:
        heartbeat.stop()
        await loop

    assert busy.current_tasks == [request.subtask.id] and busy.current_task == request.subtask.id
    assert not busy.is_available
    assert idle.is_available and idle.current_tasks == []
