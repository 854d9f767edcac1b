import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr, ValidationError
from redis.asyncio import Redis

from shared.errors import PoolFullError
from shared.fleet_trust import FleetTrust
from shared.models import AgentCapability, AgentState, AgentStatus
from shared.redis import AgentRegistry, RedisKeys
from shared.redis.failed_agents import FailedMark

pytestmark = pytest.mark.timeout(30)

AgentStatusFactory = Callable[..., AgentStatus]
MORNING = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
WaitExpired = Callable[[str], Awaitable[None]]


@pytest.fixture
def registry(redis_client: Redis, redis_keys: RedisKeys) -> AgentRegistry:
    return AgentRegistry(redis_client, redis_keys, agent_port_range=(8001, 8016))


def agent_ids(agents: list[AgentStatus]) -> list[str]:
    return [agent.agent_id for agent in agents]


async def test_register_writes_the_status_hash_with_a_ttl(
    registry: AgentRegistry, redis_client: Redis, redis_keys: RedisKeys, redis_agent_status: AgentStatusFactory
) -> None:
    status = redis_agent_status(
        "agent1",
        capabilities=[AgentCapability.DATA_ANALYSIS, AgentCapability.CODE_GENERATION],
        current_tasks=["subtask_1"],
        tasks_completed=3,
    )

    await registry.register_agent(status, ttl=60)

    fields = await redis_client.hgetall(redis_keys.agent("agent1"))
    assert fields["url"] == "http://localhost:8001"
    assert fields["capabilities"] == '["DATA_ANALYSIS", "CODE_GENERATION"]'
    assert fields["current_tasks"] == '["subtask_1"]'
    assert fields["tasks_completed"] == "3"
    assert 0 < await redis_client.ttl(redis_keys.agent("agent1")) <= 60
    assert await redis_client.smembers(redis_keys.active_agents()) == {"agent1"}
    assert await registry.get_agent("agent1") == status


async def test_reregistering_drops_fields_the_new_status_left_out(
    registry: AgentRegistry, redis_agent_status: AgentStatusFactory
) -> None:
    await registry.register_agent(redis_agent_status("agent1", current_task="subtask_1", is_available=False), ttl=60)

    await registry.register_agent(redis_agent_status("agent1", current_task=None, is_available=True), ttl=60)

    agent = await registry.get_agent("agent1")
    assert agent is not None
    assert agent.current_task is None
    assert agent.is_available is True


async def test_a_status_outside_the_port_range_is_refused(
    redis_client: Redis, redis_keys: RedisKeys, redis_agent_status: AgentStatusFactory
) -> None:
    status = redis_agent_status("agent1", port=8010)  # inside the model's default range, outside this one
    narrow = AgentRegistry(redis_client, redis_keys, agent_port_range=(8001, 8005))

    with pytest.raises(ValidationError, match="outside the agent port range"):
        await narrow.register_agent(status, ttl=60)


async def test_an_agent_whose_heartbeat_expired_disappears_and_is_pruned(
    registry: AgentRegistry,
    redis_client: Redis,
    redis_keys: RedisKeys,
    redis_agent_status: AgentStatusFactory,
    redis_wait_expired: WaitExpired,
) -> None:
    await registry.register_agent(redis_agent_status("agent1"), ttl=1)
    await registry.register_agent(redis_agent_status("agent2", port=8002), ttl=60)

    await redis_wait_expired(redis_keys.agent("agent1"))

    assert agent_ids(await registry.get_agents()) == ["agent2"]
    assert agent_ids(await registry.get_available_agents()) == ["agent2"]
    assert await redis_client.smembers(redis_keys.active_agents()) == {"agent2"}
    assert await registry.get_agent("agent1") is None


async def test_available_agents_are_filtered_by_availability_and_capability(
    registry: AgentRegistry, redis_agent_status: AgentStatusFactory
) -> None:
    fleet = [
        redis_agent_status("agent1", capabilities=[AgentCapability.DATA_ANALYSIS, AgentCapability.CODE_GENERATION]),
        redis_agent_status("agent2", port=8002, capabilities=[AgentCapability.WEB_SCRAPING]),
        redis_agent_status("agent4", port=8004, capabilities=[AgentCapability.CODE_GENERATION], is_available=False),
    ]
    for status in fleet:
        await registry.register_agent(status, ttl=60)

    assert agent_ids(await registry.get_agents()) == ["agent1", "agent2", "agent4"]
    assert agent_ids(await registry.get_available_agents()) == ["agent1", "agent2"]
    code_agents = await registry.get_available_agents(AgentCapability.CODE_GENERATION)
    assert agent_ids(code_agents) == ["agent1"]
    assert await registry.get_available_agents(AgentCapability.FILE_PROCESSING) == []


async def test_an_unreadable_hash_hides_only_that_agent(
    registry: AgentRegistry, redis_client: Redis, redis_keys: RedisKeys, redis_agent_status: AgentStatusFactory
) -> None:
    await registry.register_agent(redis_agent_status("agent1"), ttl=60)
    await registry.register_agent(redis_agent_status("agent2", port=8002), ttl=60)
    await redis_client.hset(redis_keys.agent("agent2"), "port", "not a port")

    assert agent_ids(await registry.get_agents()) == ["agent1"]


async def test_deregister_removes_the_agent_at_once(
    registry: AgentRegistry, redis_client: Redis, redis_keys: RedisKeys, redis_agent_status: AgentStatusFactory
) -> None:
    await registry.register_agent(redis_agent_status("agent1"), ttl=60)

    assert await registry.deregister_agent("agent1") is True

    assert await registry.get_agents() == []
    assert not await redis_client.exists(redis_keys.agent("agent1"), redis_keys.active_agents())
    assert await registry.deregister_agent("agent1") is False


async def test_wait_for_registry_change_wakes_on_register(
    registry: AgentRegistry, redis_client: Redis, redis_keys: RedisKeys, redis_agent_status: AgentStatusFactory
) -> None:
    waiting = asyncio.create_task(registry.wait_for_registry_change(timeout=10))
    # Polls a fact only the server knows: the waiter's subscription is live.
    while (await redis_client.pubsub_numsub(redis_keys.registry_changed()))[0][1] == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)

    await registry.register_agent(redis_agent_status("agent1"), ttl=60)

    assert await waiting is True


async def test_wait_for_registry_change_times_out_without_a_change(registry: AgentRegistry) -> None:
    assert await registry.wait_for_registry_change(timeout=0.2) is False


async def test_a_watcher_sees_changes_made_between_its_waits(
    registry: AgentRegistry, redis_agent_status: AgentStatusFactory
) -> None:
    async with registry.watch() as watcher:
        await registry.register_agent(redis_agent_status("agent1"), ttl=60)
        await registry.register_agent(redis_agent_status("agent1", is_available=False), ttl=60)

        assert await watcher.wait(timeout=5) is True
        assert await watcher.wait(timeout=0.2) is False  # the burst woke it once

        await registry.deregister_agent("agent1")
        assert await watcher.wait(timeout=5) is True


async def test_registries_of_two_tenants_do_not_see_each_other(
    redis_client: Redis, redis_tenant_factory: Callable[[], str], redis_agent_status: AgentStatusFactory
) -> None:
    acme = AgentRegistry(redis_client, RedisKeys(redis_tenant_factory()))
    globex = AgentRegistry(redis_client, RedisKeys(redis_tenant_factory()))

    await acme.register_agent(redis_agent_status("agent1"), ttl=60)

    assert await globex.get_agents() == []
    assert await globex.wait_for_registry_change(timeout=0.2) is False


async def test_with_the_fleet_secret_only_entries_a_member_registered_are_read(
    redis_client: Redis, redis_keys: RedisKeys, redis_agent_status: AgentStatusFactory
) -> None:
    trust = FleetTrust(SecretStr("a-fleet-secret-of-forty-characters-000000"), redis_keys.tenant_id)
    fleet = AgentRegistry(redis_client, redis_keys, agent_port_range=(8001, 8016), trust=trust)
    stranger = AgentRegistry(redis_client, redis_keys, agent_port_range=(8001, 8016))  # Redis, without the secret
    await fleet.register_agent(redis_agent_status("agent1"), ttl=60)
    await stranger.register_agent(redis_agent_status("rogue", port=8002), ttl=60)
    await fleet.register_agent(redis_agent_status("agent3", port=8003), ttl=60)
    # A member's entry rewritten to send its offers elsewhere no longer holds.
    await redis_client.hset(redis_keys.agent("agent3"), "url", "http://attacker.example:8003")

    assert agent_ids(await fleet.get_agents()) == ["agent1"]
    assert await fleet.get_agent("rogue") is None and await fleet.get_agent("agent3") is None
    assert agent_ids(await stranger.get_agents()) == ["agent1", "agent3", "rogue"]  # what a tool without it sees


async def test_a_new_agent_beyond_the_pool_s_limit_is_refused_and_a_live_one_always_renews(
    redis_client: Redis, redis_keys: RedisKeys, redis_agent_status: AgentStatusFactory
) -> None:
    registry = AgentRegistry(redis_client, redis_keys, agent_port_range=(8001, 8016), max_agents=3)
    for number in (1, 2, 3):
        await registry.register_agent(redis_agent_status(f"agent{number}", port=8000 + number), ttl=60)

    with pytest.raises(PoolFullError, match=r"the pool is full: 3 agents are live \(MAX_POOL_SIZE\)"):
        await registry.register_agent(redis_agent_status("agent4", port=8004), ttl=60)
    await registry.register_agent(redis_agent_status("agent2", port=8002, tasks_completed=5), ttl=60)  # a heartbeat

    assert agent_ids(await registry.get_agents()) == ["agent1", "agent2", "agent3"]
    await redis_client.delete(redis_keys.agent("agent3"))  # its entry expired: its place is free
    await registry.register_agent(redis_agent_status("agent4", port=8004), ttl=60)
    assert agent_ids(await registry.get_agents()) == ["agent1", "agent2", "agent4"]


async def test_agents_joining_at_once_never_pass_the_limit(
    redis_client: Redis, redis_keys: RedisKeys, redis_agent_status: AgentStatusFactory
) -> None:
    registry = AgentRegistry(redis_client, redis_keys, agent_port_range=(8001, 8016), max_agents=4)

    joined = await asyncio.gather(
        *(registry.register_agent(redis_agent_status(f"agent{n}", port=8000 + n), ttl=60) for n in range(1, 11)),
        return_exceptions=True,
    )

    assert sum(1 for outcome in joined if outcome is None) == 4
    assert all(isinstance(outcome, PoolFullError) for outcome in joined if outcome is not None)
    assert len(await registry.get_agents()) == 4


# --- agents declared failed ---


async def test_an_agent_declared_failed_reads_failed_until_its_process_restarts(
    registry: AgentRegistry, redis_agent_status: AgentStatusFactory
) -> None:
    started = MORNING
    await registry.register_agent(redis_agent_status("agent1", started_at=started), ttl=60)
    await registry.register_agent(redis_agent_status("agent2", port=8002, started_at=started), ttl=60)

    async with registry.watch() as watcher:
        await registry.mark_failed("agent1", started)
        assert await watcher.wait(timeout=5), "the declaration is announced like a registry change"

    failed = await registry.get_agent("agent1")
    assert failed is not None and (failed.state, failed.is_available) == (AgentState.FAILED, False)
    assert {agent.agent_id: agent.state for agent in await registry.get_agents()} == {
        "agent1": AgentState.FAILED,
        "agent2": AgentState.ACTIVE,
    }
    assert agent_ids(await registry.get_available_agents()) == ["agent2"]
    await registry.register_agent(redis_agent_status("agent1", started_at=started + timedelta(seconds=1)), ttl=60)
    restarted = await registry.get_agent("agent1")
    assert restarted is not None and (restarted.state, restarted.is_available) == (AgentState.ACTIVE, True)


async def test_an_unreadable_declaration_leaves_the_others_in_force(
    registry: AgentRegistry, redis_client: Redis, redis_keys: RedisKeys, redis_agent_status: AgentStatusFactory
) -> None:
    await registry.register_agent(redis_agent_status("agent1"), ttl=60)
    await registry.register_agent(redis_agent_status("agent2", port=8002), ttl=60)
    await registry.mark_failed("agent2", None)
    await redis_client.hset(redis_keys.failed_agents(), "agent1", "not a declaration")

    assert {agent.agent_id: agent.state for agent in await registry.get_agents()} == {
        "agent1": AgentState.ACTIVE,
        "agent2": AgentState.FAILED,
    }


@pytest.mark.parametrize(
    ("declared_started_at", "process_started_at", "holds"),
    [
        (MORNING, MORNING, True),  # the process declared failed, heartbeating on
        (MORNING, MORNING + timedelta(microseconds=1), False),  # restarted
        (None, MORNING - timedelta(hours=1), True),  # declared while it had no entry: the process running then
        (None, MORNING + timedelta(hours=1), False),  # one started after the declaration
        (MORNING, None, True),  # an agent that does not say when it started cannot show it restarted
    ],
)
def test_a_declaration_holds_for_the_process_it_was_made_for(
    declared_started_at: datetime | None, process_started_at: datetime | None, holds: bool
) -> None:
    mark = FailedMark(declared_started_at, failed_at=MORNING + timedelta(minutes=30))
    status = AgentStatus(
        agent_id="agent1", url="http://localhost:8001", port=8001, is_available=True,
        capabilities=[AgentCapability.DATA_ANALYSIS], started_at=process_started_at,
    )  # fmt: skip

    assert mark.holds_for(status) is holds
    assert FailedMark.decode(mark.encode()) == mark
