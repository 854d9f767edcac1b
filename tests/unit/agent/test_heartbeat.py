"""The heartbeat registers the agent's status with a TTL, and beats soon after slot changes: once per burst."""

import asyncio
import time

from agent.executors import StubExecutor
from agent.heartbeat import SLOT_CHANGE_WINDOW_SECONDS, Heartbeat
from agent.reporting import ResultReporter
from agent.runner import SubtaskRunner
from shared.config import Settings
from shared.database import DatabaseManager
from shared.models import AgentCapability, AgentStatus
from shared.redis_manager import RedisManager
from shared.roles import load_roles
from tests.unit.agent.fixtures import RequestFactory, SettingsFactory, registered_until, run_attempt


def wired(settings: Settings, db: DatabaseManager, redis: RedisManager) -> tuple[Heartbeat, SubtaskRunner]:
    heartbeat = Heartbeat(settings, redis)
    executor = StubExecutor.from_settings(settings)
    reporter = ResultReporter(settings, db, redis, executor.name)
    runner = SubtaskRunner(settings, load_roles(), executor, reporter, heartbeat.notify)
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
        run_attempt(runner, request)
        busy = await registered_until(agent_redis, settings.agent_id, lambda status: bool(status.current_tasks))
        idle = await registered_until(agent_redis, settings.agent_id, lambda status: status.tasks_completed == 1)
    finally:
        heartbeat.stop()
        await loop

    assert busy.current_tasks == [request.subtask.id] and busy.current_task == request.subtask.id
    assert not busy.is_available
    assert idle.is_available and idle.current_tasks == []


class CountingRedis(RedisManager):
    """Counts registry writes."""

    registrations = 0

    async def register_agent(self, status: AgentStatus) -> None:
        self.registrations += 1
        await super().register_agent(status)


async def test_a_burst_of_slot_changes_is_announced_once_per_window(
    agent_settings_factory: SettingsFactory, db: DatabaseManager, execution_request: RequestFactory
) -> None:
    settings = agent_settings_factory(
        heartbeat_interval_seconds=50, heartbeat_ttl_seconds=60, agent_concurrency=8, agent_stub_delay_seconds=0.02
    )
    redis = CountingRedis(settings)
    await redis.connect()
    heartbeat, runner = wired(settings, db, redis)
    loop = asyncio.create_task(heartbeat.start())
    try:
        await registered_until(redis, settings.agent_id, lambda status: status.is_available)
        before, started = redis.registrations, time.monotonic()
        for _ in range(8):  # 16 slot changes, a few milliseconds apart
            run_attempt(runner, execution_request())
            await asyncio.sleep(0.005)
        await runner.wait_until_idle()
        burst = time.monotonic() - started
        idle = await registered_until(redis, settings.agent_id, lambda status: status.tasks_completed == 8)
        writes = redis.registrations - before
    finally:
        heartbeat.stop()
        await loop
        await redis.disconnect()

    assert idle.is_available and idle.current_tasks == []
    # One write per window of changes (the burst's windows plus the one it ends in), not one per change; the
    # burst is short enough for that to be fewer than its 16 changes.
    assert 1 <= writes <= burst / SLOT_CHANGE_WINDOW_SECONDS + 2 < 16
