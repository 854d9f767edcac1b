"""What this orchestrator knows of its fleet: the agents registered, the work it handed each, and how each did.

The dispatcher reads it to match work with agents; the task lifecycle updates it as results come back; the recovery
loop asks it whether an agent missing from the registry may still be alive.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orchestrator.agent_sightings import AgentSightings
from orchestrator.scheduling import AgentLoadTracker, SuccessHistory
from shared.loop_service import LoopService
from shared.models import AgentState, AgentStatus
from shared.redis.failed_agents import FailedMark
from shared.redis_manager import RedisManager

# The matcher looks again at least this often (agents' heartbeats expire without an announcement).
MATCH_INTERVAL_SECONDS = 1.0
# Agents announce every slot change; the directory is re-read at most this often (the load tracker
# already knows about slots this orchestrator fills and frees, so only joins and leaves wait for it).
REGISTRY_REFRESH_MIN_SECONDS = 0.1


class AgentDirectory:
    """The registry as last read: refreshed when an agent announces a change and at least every second.

    It also remembers each agent's newest heartbeat, which tells an agent whose entry expired (it stopped
    heartbeating) from one whose entry vanished early because Redis lost its data (a restart): that agent is
    alive and registers again with its next heartbeat.

    An agent that refused an offer or did not answer one is unresponsive until it heartbeats again: it gets no
    offers meanwhile, and the recovery loop need not wait for its entry to expire to retry what it was running.

    `agents` are those that take work: an agent declared failed (the registry shows it `failed`) or draining is left
    out, so the dispatcher never offers it anything; routing itself (orchestrator/scheduling.py) never sees it.

    Every agent a read shows, whatever its state, is noted in `sightings` (when given), which records it in
    PostgreSQL now and then, so it keeps a record once it is gone.
    """

    def __init__(
        self, redis: RedisManager, heartbeat_ttl_seconds: float, sightings: AgentSightings | None = None
    ) -> None:
        self._redis = redis
        self._sightings = sightings
        self._heartbeat_ttl = timedelta(seconds=heartbeat_ttl_seconds)
        self.agents: list[AgentStatus] = []
        self._last_heartbeats: dict[str, datetime] = {}  # as many entries as agent ids ever seen
        self._unresponsive_since: dict[str, datetime] = {}
        self._declared_failed: dict[str, FailedMark] = {}  # by this orchestrator, as many as it ever declared

    async def refresh(self) -> None:
        agents = await self._redis.get_agents()
        self.remember(agents)
        if self._sightings is not None:
            self._sightings.note(agents)
        self.agents = [agent for agent in agents if self._takes_work(agent)]

    def declare_failed(self, agent_id: str, mark: FailedMark) -> None:
        """Leave the agent out from now on: at once, not at the next read of the registry (one under way may have
        read it before the mark was written; and a mark lost with Redis's data still holds here)."""
        self._declared_failed[agent_id] = mark
        self.agents = [agent for agent in self.agents if agent.agent_id != agent_id]

    def _takes_work(self, agent: AgentStatus) -> bool:
        if agent.state is not AgentState.ACTIVE:
            return False
        mark = self._declared_failed.get(agent.agent_id)
        return mark is None or not mark.holds_for(agent)

    def remember(self, agents: Iterable[AgentStatus]) -> None:
        """Take note of the heartbeats in a registry read."""
        for agent in agents:
            self._last_heartbeats[agent.agent_id] = agent.last_heartbeat

    def mark_unresponsive(self, agent_id: str) -> None:
        self._unresponsive_since.setdefault(agent_id, datetime.now(UTC))

    def unresponsive_since(self, agent: AgentStatus) -> datetime | None:
        """When the agent last refused an offer, if it has not heartbeated since."""
        since = self._unresponsive_since.get(agent.agent_id)
        if since is not None and agent.last_heartbeat > since:
            del self._unresponsive_since[agent.agent_id]
            return None
        return since

    def entry_may_still_live(self, agent_id: str, now: datetime) -> bool:
        """Whether the agent's registry entry, by its newest heartbeat seen, has not reached its time-to-live."""
        seen = self._last_heartbeats.get(agent_id)
        return seen is not None and now - seen < self._heartbeat_ttl


@dataclass
class FleetView:
    """The three views together: the registry as last read, the slots this orchestrator filled, the track record."""

    directory: AgentDirectory
    load: AgentLoadTracker
    history: SuccessHistory

    @classmethod
    def of(
        cls, redis: RedisManager, heartbeat_ttl_seconds: float, sightings: AgentSightings | None = None
    ) -> "FleetView":
        return cls(AgentDirectory(redis, heartbeat_ttl_seconds, sightings), AgentLoadTracker(), SuccessHistory())


class RegistryWatcher(LoopService):
    """Keeps the directory fresh and wakes the matcher when agents join, leave or report a change."""

    def __init__(self, redis: RedisManager, fleet: FleetView) -> None:
        super().__init__("registry_watcher")
        self._redis = redis
        self._fleet = fleet

    async def run_once(self) -> None:
        # One subscription for as long as the loop runs; an error ends it and the loop subscribes again.
        async with self._redis.registry.watch() as watcher:
            while not self.stopping:
                if await watcher.wait(timeout=MATCH_INTERVAL_SECONDS):
                    await self.sleep(REGISTRY_REFRESH_MIN_SECONDS)  # let a burst of announcements settle
                await self._fleet.directory.refresh()
                self._fleet.load.notify()


def utilization(agents: Sequence[AgentStatus]) -> float:
    """The share of the work slots of agents taking work that are busy: a failed or draining agent's slots are no
    capacity, so they count neither way."""
    taking_work = [agent for agent in agents if agent.state is AgentState.ACTIVE]
    slots = sum(agent.slots for agent in taking_work)
    busy = sum(min(len(agent.current_tasks), agent.slots) for agent in taking_work)
    return busy / slots if slots else 0.0
