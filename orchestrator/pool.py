"""The coordination pool (seed 004): the agents the orchestrator starts itself, and the limit on all live agents.

Agents that joined on their own (start.sh's five, compose, another machine) count toward MAX_POOL_SIZE but are not
the pool's to stop. What the pool started is kept in Redis (shared/redis/pool_members.py), so a restarted
orchestrator adopts the members still running and forgets the rest. A member that exits is reported once and not
restarted: an agent that crashes at start would crash again, and a person should read its log first.
"""

import asyncio
from collections.abc import Sequence

import httpx
import structlog

from orchestrator.agent_launcher import STOP_MARGIN_SECONDS, AgentLauncher
from shared.config import Settings
from shared.errors import AppError, ConflictError, PoolFullError
from shared.loop_service import LoopService
from shared.models import AgentCapability
from shared.redis.pool_members import PoolMember
from shared.redis_manager import RedisManager
from shared.seed_fleet import SEED_CAPABILITY_MIX

log = structlog.get_logger(__name__)

# The exit code of an agent the registry refused because the pool was full (agent/__main__.py).
EXIT_POOL_FULL = 4
SUPERVISE_INTERVAL_SECONDS = 1.0
HEALTH_CHECK_TIMEOUT_SECONDS = 2.0


class AgentStartError(AppError):
    """A started agent exited or never became healthy."""

    status_code = 502


class AgentPool:
    """Start, adopt, list and stop the pool's agents; the routes and the supervisor go through here."""

    def __init__(self, settings: Settings, redis: RedisManager, launcher: AgentLauncher) -> None:
        self._settings = settings
        self._redis = redis
        self._launcher = launcher
        # One start at a time: the limit check and the port choice must see the previous start's member.
        self._starting = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=HEALTH_CHECK_TIMEOUT_SECONDS)

    @property
    def launcher_name(self) -> str:
        return self._launcher.name

    async def close(self) -> None:
        await self._http.aclose()

    async def members(self) -> list[PoolMember]:
        return await self._redis.pool_members.all()

    async def adopt(self) -> list[PoolMember]:
        """At start-up: keep the members whose process still runs (their heartbeats are in the registry already),
        forget those that ended while no orchestrator watched."""
        adopted = []
        for member in await self.members():
            if member.state == "running" and self._launcher.is_running(member):
                adopted.append(member)
                log.info("agent_adopted", agent_id=member.agent_id, pid=member.pid, url=member.url)
            else:
                await self._forget(member)
                log.info("pool_member_forgotten", agent_id=member.agent_id, pid=member.pid, reason="process ended")
        return adopted

    async def spawn(self, capabilities: Sequence[AgentCapability], agent_id: str | None = None) -> PoolMember:
        """Start one agent and answer once it is registered and healthy."""
        async with self._starting:
            member = await self._start(list(dict.fromkeys(capabilities)), agent_id)
        await self._until_ready(member)
        log.info("agent_spawned", agent_id=member.agent_id, pid=member.pid, url=member.url, log_path=member.log_path)
        return member

    async def initialize(
        self, size: int | None, capabilities: Sequence[Sequence[AgentCapability]] | None
    ) -> list[PoolMember]:
        """Start agents until the pool has `size` running members of its own; the mix is used in order, cycling."""
        size = size or self._settings.default_pool_size
        mix = [list(each) for each in capabilities] if capabilities else [list(each) for each in SEED_CAPABILITY_MIX]
        running = [member for member in await self.members() if member.state == "running"]
        wanted = range(len(running), size)
        await self._check_room(len(wanted))
        started = await asyncio.gather(*(self.spawn(mix[index % len(mix)]) for index in wanted), return_exceptions=True)
        failures = [outcome for outcome in started if isinstance(outcome, BaseException)]
        if failures:
            up = [outcome.agent_id for outcome in started if isinstance(outcome, PoolMember)]
            raise _with_context(failures[0], f"{len(failures)} of {len(wanted)} agents did not start; running: {up}")
        members = running + [outcome for outcome in started if isinstance(outcome, PoolMember)]
        log.info("pool_initialized", size=size, agent_ids=[member.agent_id for member in members])
        return members

    async def shut_down(self) -> list[PoolMember]:
        """SIGTERM every member at once (each drains: its running subtasks finish or are handed back), wait for them,
        forget them. Queued work stays queued; agents that joined on their own keep running."""
        members = await self.members()
        grace = self._settings.agent_shutdown_grace_seconds + STOP_MARGIN_SECONDS
        codes = await asyncio.gather(*(asyncio.to_thread(self._launcher.stop, member, grace) for member in members))
        stopped = []
        for member, code in zip(members, codes, strict=True):
            exit_code = code if member.state == "running" else member.exit_code
            stopped.append(member.model_copy(update={"state": "exited", "exit_code": exit_code}))
            await self._forget(member)
        log.info("pool_shut_down", agent_ids=[member.agent_id for member in stopped])
        return stopped

    async def check_members(self) -> None:
        """Report each member whose process has ended since the last check, once (the supervisor's iteration)."""
        for member in await self.members():
            if member.state != "running" or self._launcher.is_running(member):
                continue
            exit_code = self._launcher.exit_code(member)
            await self._redis.pool_members.save(member.model_copy(update={"state": "exited", "exit_code": exit_code}))
            log.warning(
                "agent_exited", agent_id=member.agent_id, pid=member.pid, exit_code=exit_code, log_path=member.log_path
            )

    async def _start(self, capabilities: list[AgentCapability], agent_id: str | None) -> PoolMember:
        live = {agent.agent_id: agent for agent in await self._redis.get_agents()}
        members = {member.agent_id: member for member in await self.members()}
        starting = {agent_id for agent_id, member in members.items() if member.state == "running"}
        if agent_id is not None and (agent_id in live or agent_id in starting):
            raise ConflictError(f"agent {agent_id} is already live; choose another agent_id, or leave it out")
        await self._check_room(1, live_ids=set(live) | starting)
        agent_id = agent_id or _next_agent_id(set(live) | set(members))
        if agent_id in members:  # an exited member of that id: its record gives way to the new process
            await self._forget(members[agent_id])
        taken = {agent.port for agent in live.values()} | {member.port for member in members.values()}
        member = await asyncio.to_thread(self._launcher.start, agent_id, capabilities, taken)
        await self._redis.pool_members.save(member)
        return member

    async def _check_room(self, count: int, live_ids: set[str] | None = None) -> None:
        """PoolFullError when `count` more agents would pass MAX_POOL_SIZE. The registry refuses an agent past it
        anyway, atomically; this check answers before a process is started for nothing."""
        if live_ids is None:
            live_ids = {agent.agent_id for agent in await self._redis.get_agents()}
            live_ids |= {member.agent_id for member in await self.members() if member.state == "running"}
        limit = self._settings.max_pool_size
        if len(live_ids) + count > limit:
            raise PoolFullError(
                f"the pool is full: {len(live_ids)} of {limit} agents are live (MAX_POOL_SIZE), so {count} more "
                "cannot start; stop one (DELETE /pool stops those the pool started), or raise MAX_POOL_SIZE"
            )

    async def _until_ready(self, member: PoolMember) -> None:
        """Wait until the agent is registered and answers /health; stop and forget it if it exits or times out."""
        try:
            async with asyncio.timeout(self._settings.agent_start_timeout_seconds):
                async with self._redis.registry.watch() as changes:
                    while not await self._ready(member):
                        await changes.wait(SUPERVISE_INTERVAL_SECONDS)
        except TimeoutError:
            await asyncio.to_thread(self._launcher.stop, member, STOP_MARGIN_SECONDS)
            await self._forget(member)
            raise AgentStartError(
                f"agent {member.agent_id} did not register and answer its health check within "
                f"{self._settings.agent_start_timeout_seconds:g} s (AGENT_START_TIMEOUT_SECONDS), so it was "
                f"stopped; see its log {member.log_path}"
            ) from None

    async def _ready(self, member: PoolMember) -> bool:
        if not self._launcher.is_running(member):
            exit_code = self._launcher.exit_code(member)
            await self._forget(member)
            if exit_code == EXIT_POOL_FULL:
                raise PoolFullError(
                    f"the registry refused agent {member.agent_id}: MAX_POOL_SIZE ({self._settings.max_pool_size}) "
                    f"agents are live; see its log {member.log_path}"
                )
            raise AgentStartError(
                f"agent {member.agent_id} exited with code {exit_code} during start-up; see its log {member.log_path}"
            )
        if await self._redis.registry.get_agent(member.agent_id) is None:
            return False
        try:
            return (await self._http.get(f"{member.url}/health")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _forget(self, member: PoolMember) -> None:
        await self._redis.pool_members.forget(member.agent_id)
        self._launcher.forget(member)


class PoolSupervisor(LoopService):
    """Notices a pool member that exited: one warning with its exit code and log, and GET /pool shows it exited."""

    def __init__(self, pool: AgentPool, interval: float = SUPERVISE_INTERVAL_SECONDS) -> None:
        super().__init__("pool_supervisor", interval)
        self._pool = pool

    async def run_once(self) -> None:
        await self._pool.check_members()


def _next_agent_id(taken: set[str]) -> str:
    """`agent<n>` with the smallest n not taken: on an empty machine the pool's first agents are agent1, agent2..."""
    number = 1
    while f"agent{number}" in taken:
        number += 1
    return f"agent{number}"


def _with_context(error: BaseException, context: str) -> BaseException:
    if isinstance(error, AppError):
        error.message = f"{error.message} ({context})"
    return error
