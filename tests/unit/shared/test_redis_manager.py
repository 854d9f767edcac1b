from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from structlog.testing import capture_logs

from shared.config import Settings, load_settings
from shared.models import AgentCapability, AgentStatus, QueuedSubtask, ReportedResult
from shared.redis import EventType, RedisKeys, TaskEvent
from shared.redis_manager import RedisManager, Undelivered
from tests.events_contract import task_stream
from tests.factories import build_result, build_subtask

pytestmark = pytest.mark.timeout(30)

ManagerFactory = Callable[..., Awaitable[RedisManager]]
AgentStatusFactory = Callable[..., AgentStatus]


async def test_connect_ping_disconnect(redis_settings: Settings) -> None:
    manager = RedisManager(redis_settings)

    await manager.connect()
    await manager.ping()
    await manager.disconnect()

    with pytest.raises(RuntimeError, match="connect"):
        await manager.ping()


async def test_connect_retries_then_raises_and_logs_each_attempt() -> None:
    settings = load_settings(_env_file=None, redis_url="redis://127.0.0.1:1/0")  # nothing listens on port 1
    manager = RedisManager(settings, connect_attempts=3, connect_backoff_max=0.01)

    with capture_logs() as logs, pytest.raises(RedisConnectionError):
        await manager.connect()

    failures = [entry for entry in logs if entry["event"] == "redis_connect_failed"]
    assert [entry["attempt"] for entry in failures] == [1, 2, 3]
    with pytest.raises(RuntimeError):
        _ = manager.task_queue


async def test_a_queued_subtask_round_trips_and_is_acked_by_its_payload(redis_manager: RedisManager) -> None:
    item = QueuedSubtask(task_id="task_1", subtask_id="subtask_1", attempt=2, required_capabilities=["DATA_ANALYSIS"])

    assert await redis_manager.enqueue_task(item) == 1
    taken = await redis_manager.dequeue_task("orchestrator-1", timeout=1)

    assert taken is not None
    payload, queued = taken
    assert queued == item
    assert await redis_manager.task_queue.ack("orchestrator-1", payload) is True


async def test_dequeue_returns_none_after_the_timeout(redis_manager: RedisManager) -> None:
    assert await redis_manager.dequeue_task("orchestrator-1", timeout=0.2) is None
    assert await redis_manager.dequeue_result("orchestrator-1", timeout=0.2) is None


async def test_a_garbage_result_goes_to_the_dead_letter_list_and_the_next_one_is_returned(
    redis_manager: RedisManager,
) -> None:
    result = build_result(build_subtask("task_1"))
    await redis_manager.result_queue.push('{"not": "a result"}')
    await redis_manager.enqueue_result(result)

    with capture_logs() as logs:
        taken = await redis_manager.dequeue_result("orchestrator-1", timeout=1)

    assert taken is not None
    payload, parsed = taken
    assert parsed == ReportedResult(**result.model_dump())  # what the result queue carries: it may hold an assignment
    [letter] = await redis_manager.result_queue.dead_letters()
    assert letter.payload == '{"not": "a result"}' and "unreadable" in letter.reason
    assert await redis_manager.result_queue.inflight("orchestrator-1") == [payload]
    assert [entry["event"] for entry in logs] == ["queue_payload_rejected"]


async def test_agent_status_uses_the_heartbeat_ttl_from_settings(
    redis_manager_factory: ManagerFactory,
    redis_client: Redis,
    redis_tenant: str,
    redis_agent_status: AgentStatusFactory,
) -> None:
    manager = await redis_manager_factory(redis_tenant, heartbeat_ttl_seconds=30, heartbeat_interval_seconds=5)
    await manager.register_agent(redis_agent_status("agent1", capabilities=[AgentCapability.WEB_SCRAPING]))
    await manager.update_agent_status(redis_agent_status("agent1", capabilities=[AgentCapability.WEB_SCRAPING]))

    assert 0 < await redis_client.ttl(RedisKeys(redis_tenant).agent("agent1")) <= 30
    [agent] = await manager.get_available_agents(AgentCapability.WEB_SCRAPING)
    assert agent.agent_id == "agent1"
    assert await manager.get_available_agents(AgentCapability.DATA_ANALYSIS) == []


async def test_the_port_range_comes_from_settings(
    redis_manager_factory: ManagerFactory, redis_agent_status: AgentStatusFactory
) -> None:
    manager = await redis_manager_factory(agent_port_min=8001, agent_port_max=8020, agent_port=8001)

    agent = redis_agent_status("agent20", port=8020, port_range=(8001, 8020))  # beyond the default range

    await manager.register_agent(agent)

    assert [agent.agent_id for agent in await manager.registry.get_agents()] == ["agent20"]


async def test_two_tenants_keep_their_work_apart(redis_manager_factory: ManagerFactory) -> None:
    acme = await redis_manager_factory()
    globex = await redis_manager_factory()

    await acme.enqueue_task(
        QueuedSubtask(task_id="task_1", subtask_id="subtask_1", attempt=1, required_capabilities=["DATA_ANALYSIS"])
    )

    assert await globex.dequeue_task("orchestrator-1", timeout=0.2) is None
    assert await acme.dequeue_task("orchestrator-1", timeout=0.2) is not None


async def test_attempts_and_events_go_out_in_one_round_trip_and_a_refused_command_holds_back_neither(
    redis_manager: RedisManager, redis_client: Redis
) -> None:
    item = QueuedSubtask(task_id="task_1", subtask_id="subtask_1", attempt=1, required_capabilities=["DATA_ANALYSIS"])
    queued = TaskEvent(EventType.SUBTASK_QUEUED, "task_1", {"attempt": 1}, subtask_id="subtask_1")

    assert await redis_manager.enqueue_and_publish([item], [queued]) == Undelivered()
    await redis_client.set(redis_manager.keys.events(), "not a stream")  # XADD answers WRONGTYPE from now on
    undelivered = await redis_manager.enqueue_and_publish([item.model_copy(update={"attempt": 2})], [queued])

    assert undelivered.enqueue is None and "WRONGTYPE" in str(undelivered.events)
    assert await redis_manager.queued_task_items() == {("subtask_1", 1), ("subtask_1", 2)}
    assert [entry.event for entry in await task_stream(redis_manager, "task_1")] == [queued, queued]
