"""The coordination pool's service (orchestrator/pool.py) on the real Redis, with a launcher that records what it
would start: the limit, the ids, adoption and the supervisor's report."""

from collections.abc import Iterable

import pytest

from orchestrator.pool import EXIT_POOL_FULL, AgentPool, AgentStartError, _next_agent_id
from shared.config import Settings
from shared.errors import AppError, ConflictError, PoolFullError
from shared.models import AgentCapability, AgentStatus
from shared.redis.pool_members import PoolMember
from shared.redis_manager import RedisManager

# --- pool lifecycle ---

DATA = AgentCapability.DATA_ANALYSIS


class RecordingLauncher:
    """Starts nothing: records each start; `running` says which pids are alive, `exit_codes` how the rest ended."""

    name = "native"

    def __init__(self) -> None:
        self.started: list[str] = []
        self.running: set[int] = set()
        self.exit_codes: dict[int, int] = {}

    def start(self, agent_id: str, capabilities: list[AgentCapability], taken_ports: Iterable[int]) -> PoolMember:
        self.started.append(agent_id)
        return pool_member(agent_id, pid=1000 + len(self.started))

    def is_running(self, member: PoolMember) -> bool:
        return member.pid in self.running

    def exit_code(self, member: PoolMember) -> int | None:
        return self.exit_codes.get(member.pid)

    def stop(self, member: PoolMember, grace: float) -> int | None:
        self.running.discard(member.pid)
        return 0

    def forget(self, member: PoolMember) -> None:
        pass


def pool_member(agent_id: str, pid: int) -> PoolMember:
    return PoolMember(
        agent_id=agent_id,
        url="http://127.0.0.1:9",
        port=9,
        capabilities=[DATA],
        pid=pid,
        process_started_at=0.0,
        log_path=f"/logs/{agent_id}.log",
    )


async def register(redis: RedisManager, agent_id: str) -> None:
    await redis.register_agent(
        AgentStatus(agent_id=agent_id, url="http://127.0.0.1:9", port=8001, is_available=True, capabilities=[DATA])
    )


@pytest.fixture
def launcher() -> RecordingLauncher:
    return RecordingLauncher()


@pytest.fixture
def small_pool(orchestrator_settings: Settings, test_redis: RedisManager, launcher: RecordingLauncher) -> AgentPool:
    return AgentPool(orchestrator_settings.model_copy(update={"max_pool_size": 3}), test_redis, launcher)


async def test_spawn_counts_agents_that_joined_on_their_own_and_those_starting(
    small_pool: AgentPool, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    await register(test_redis, "joined1")
    await register(test_redis, "joined2")
    await test_redis.pool_members.save(pool_member("starting", pid=77))  # started, not registered yet

    with pytest.raises(PoolFullError) as refused:
        await small_pool.spawn([DATA])

    assert "the pool is full: 3 of 3 agents are live (MAX_POOL_SIZE)" in refused.value.message
    assert launcher.started == []  # refused before any process was started


async def test_initialize_refuses_what_would_pass_the_limit_before_starting_any(
    small_pool: AgentPool, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    await register(test_redis, "joined1")

    with pytest.raises(PoolFullError, match="so 3 more cannot start"):
        await small_pool.initialize(3, None)

    assert launcher.started == []


async def test_spawn_refuses_an_agent_id_that_is_live(
    small_pool: AgentPool, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    await register(test_redis, "agent7")

    with pytest.raises(ConflictError, match="agent agent7 is already live"):
        await small_pool.spawn([DATA], "agent7")

    assert launcher.started == []


def test_new_agents_take_the_smallest_free_agent_number() -> None:
    assert _next_agent_id(set()) == "agent1"
    assert _next_agent_id({"agent1", "agent2", "agent4", "scraper"}) == "agent3"


async def test_a_member_that_exited_is_reported_once_and_not_started_again(
    small_pool: AgentPool, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    await test_redis.pool_members.save(pool_member("agent1", pid=41))
    await test_redis.pool_members.save(pool_member("agent2", pid=42))
    launcher.running = {42}
    launcher.exit_codes = {41: 3}

    await small_pool.check_members()
    await small_pool.check_members()

    members = {member.agent_id: member for member in await small_pool.members()}
    assert (members["agent1"].state, members["agent1"].exit_code) == ("exited", 3)
    assert (members["agent2"].state, members["agent2"].exit_code) == ("running", None)
    assert launcher.started == []


async def test_a_restarted_orchestrator_adopts_running_members_and_forgets_the_others(
    small_pool: AgentPool, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    await test_redis.pool_members.save(pool_member("agent1", pid=41))
    await test_redis.pool_members.save(pool_member("agent2", pid=42))
    launcher.running = {41}

    adopted = await small_pool.adopt()

    assert [member.agent_id for member in adopted] == ["agent1"]
    assert [member.agent_id for member in await small_pool.members()] == ["agent1"]


class ExitingLauncher(RecordingLauncher):
    """Its agents end at once with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code = code

    def start(self, agent_id: str, capabilities: list[AgentCapability], taken_ports: Iterable[int]) -> PoolMember:
        member = super().start(agent_id, capabilities, taken_ports)
        self.exit_codes[member.pid] = self.code
        return member


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        pytest.param(EXIT_POOL_FULL, PoolFullError, "the registry refused agent agent1", id="registry-refused"),
        pytest.param(1, AgentStartError, "agent agent1 exited with code 1 during start-up", id="crashed"),
    ],
)
async def test_an_agent_that_ends_during_start_up_is_an_error_naming_its_log(
    orchestrator_settings: Settings, test_redis: RedisManager, code: int, error: type[AppError], words: str
) -> None:
    pool = AgentPool(orchestrator_settings, test_redis, ExitingLauncher(code))

    with pytest.raises(error) as failed:
        await pool.spawn([DATA])

    assert words in failed.value.message and "see its log /logs/agent1.log" in failed.value.message
    assert await pool.members() == []  # forgotten: nothing left to adopt or report


async def test_an_agent_that_never_registers_is_stopped_after_the_start_timeout(
    orchestrator_settings: Settings, test_redis: RedisManager, launcher: RecordingLauncher
) -> None:
    launcher.running = {1001}  # runs, but never registers
    settings = orchestrator_settings.model_copy(update={"agent_start_timeout_seconds": 0.5})
    pool = AgentPool(settings, test_redis, launcher)

    with pytest.raises(AgentStartError, match=r"did not register and answer its health check within 0\.5 s"):
        await pool.spawn([DATA])

    assert launcher.running == set() and await pool.members() == []
