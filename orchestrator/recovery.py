"""Re-derives Redis from PostgreSQL and finds work stranded on agents that are gone; the lifecycle retries it.

Runs once before the other loops start and then periodically. Everything it does is idempotent:
a subtask pushed twice is claimed once, and a stranded attempt is retried through the same
conditional transition a real failure result takes.
"""

from datetime import UTC, datetime, timedelta

import structlog

from orchestrator.lifecycle import TaskLifecycle
from shared.loop_service import LoopService
from shared.models import AgentStatus, SubTask
from shared.redis import ReliableQueue
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)

# A running attempt gets this much longer than the agent's own timeout before it is presumed lost.
LEASE_GRACE_SECONDS = 30.0
# An attempt a live agent's heartbeats leave out is presumed never delivered after this long (and at least two
# heartbeat intervals): long enough that a slow report or a stalled heartbeat is never mistaken for a loss.
LOST_DELIVERY_SECONDS = 10.0
# An agent that failed an offer and has not heartbeated for this long (and three heartbeat intervals) is taken to be
# gone, without waiting for its registry entry to expire.
UNRESPONSIVE_GRACE_SECONDS = 5.0
# An offer its agent has not accepted this long after it was pushed is taken back and offered elsewhere (the same
# attempt: nothing ran), and the agent gets no offer until it heartbeats again. A live agent with a free slot takes
# its offers within milliseconds; one that is stalled or dead never does.
OFFER_ACCEPT_SECONDS = 5.0


class RecoveryService(LoopService):
    def __init__(self, lifecycle: TaskLifecycle, redis: RedisManager, consumer_ids: list[str]) -> None:
        super().__init__("recovery", lifecycle.settings.recovery_interval_seconds)
        self._lifecycle = lifecycle
        self._settings = lifecycle.settings
        self._redis = redis
        self._directory = lifecycle.fleet.directory
        self._load = lifecycle.fleet.load
        self._consumer_ids = consumer_ids
        self._absent_since: dict[str, datetime] = {}  # running subtask id -> first heartbeat that left it out

    async def recover_own_inflight(self) -> None:
        """At start: whatever this orchestrator's consumers held when it last stopped goes back on the queues."""
        await self._heartbeat_consumers()
        for consumer_id in self._consumer_ids:
            moved = 0
            for queue in self._queues:
                moved += await queue.recover(consumer_id)
            if moved:
                log.info("inflight_recovered", consumer_id=consumer_id, items=moved)

    async def run_once(self) -> None:
        await self._heartbeat_consumers()
        for queue in self._queues:
            await queue.recover_dead_consumers()
        await self._lifecycle.requeue_missing()
        await self.take_back_unaccepted()
        await self.retry_stranded()
        await self.clear_offers_of_gone_agents()

    async def take_back_unaccepted(self) -> int:
        """Offers their agents have not taken up in time go to other agents; returns how many."""
        released = await self._lifecycle.take_back_unaccepted(OFFER_ACCEPT_SECONDS)
        for subtask, agent_id in released:
            self._load.released(agent_id, subtask.id)
            self._directory.mark_unresponsive(agent_id)
        if released:
            log.warning("unaccepted_offers_taken_back", count=len(released), agent_ids=sorted({a for _, a in released}))
        return len(released)

    async def _heartbeat_consumers(self) -> None:
        """Keep this orchestrator's consumers alive, so nobody recovers what they hold."""
        ttl = max(10, int(self.interval * 6))
        for consumer_id in self._consumer_ids:
            for queue in self._queues:
                await queue.heartbeat_consumer(consumer_id, ttl)

    @property
    def _queues(self) -> tuple[ReliableQueue, ...]:
        """The queues this orchestrator's consumers take from (each consumer takes from one; a few keys too many)."""
        return (self._redis.task_queue, self._redis.result_queue, self._redis.offers.refusals)

    async def retry_stranded(self) -> int:
        """Running attempts that no live agent is running fail retryably, so they run again elsewhere.

        An attempt is stranded when its agent stopped heartbeating, when its lease ran out, or when its
        agent's heartbeats keep saying the agent does not have it (a delivery cut short by a crash).
        """
        running = await self._lifecycle.running_attempts()
        agents = {agent.agent_id: agent for agent in await self._redis.get_agents()} if running else {}
        self._directory.remember(agents.values())
        now = datetime.now(UTC)
        running_ids = {subtask.id for subtask in running}
        self._absent_since = {key: seen for key, seen in self._absent_since.items() if key in running_ids}
        stranded = []
        for subtask in running:
            reason = self._stranded_reason(subtask, agents.get(subtask.assigned_agent or ""), now)
            if reason:
                stranded.append((subtask, reason))
        if stranded:
            await self._lifecycle.fail_stranded(stranded)
        return len(stranded)

    async def clear_offers_of_gone_agents(self) -> int:
        """The offer queues of agents gone from the registry are dropped: their offers were taken back or their
        attempts retried already, so nothing there may run, and an agent back under that id starts afresh."""
        holding = await self._redis.offers.agent_ids()
        if not holding:
            return 0
        live = {agent.agent_id for agent in await self._redis.get_agents()}
        now = datetime.now(UTC)
        gone = [a for a in holding if a not in live and not self._directory.entry_may_still_live(a, now)]
        for agent_id in gone:
            await self._redis.offers.clear(agent_id)
        if gone:
            log.info("offer_queues_of_gone_agents_cleared", agent_ids=sorted(gone))
        return len(gone)

    def _stranded_reason(self, subtask: SubTask, agent: AgentStatus | None, now: datetime) -> str | None:
        lease = timedelta(seconds=self._settings.subtask_timeout_seconds + LEASE_GRACE_SECONDS)
        if agent is None:
            if self._directory.entry_may_still_live(subtask.assigned_agent or "", now):
                return None  # Redis lost the entry (a restart); the agent registers again with its next heartbeat
            return f"agent {subtask.assigned_agent} stopped heartbeating while running the subtask"
        if subtask.assigned_at is not None and now - subtask.assigned_at > lease:
            return f"no result from agent {subtask.assigned_agent} within {lease.total_seconds():.0f} s"
        silent_since = self._directory.unresponsive_since(agent)
        grace = timedelta(seconds=max(UNRESPONSIVE_GRACE_SECONDS, 3 * self._settings.heartbeat_interval_seconds))
        if silent_since is not None and now - silent_since > grace:
            return f"agent {agent.agent_id} stopped answering offers and heartbeating"
        lost_after = timedelta(seconds=max(LOST_DELIVERY_SECONDS, 2 * self._settings.heartbeat_interval_seconds))
        if self._absent_for(subtask, agent, now) >= lost_after:
            return f"agent {agent.agent_id} is not running the subtask (its delivery was lost)"
        return None

    def _absent_for(self, subtask: SubTask, agent: AgentStatus, now: datetime) -> timedelta:
        """How long the agent's own heartbeats, all sent after the assignment, have left this subtask out.

        Measured between two of the agent's heartbeats (its own clock), so a heartbeat that is merely late,
        or was taken between the claim and the delivery, never counts as absence.
        """
        assigned = subtask.assigned_at or now
        if subtask.id in agent.current_tasks or agent.last_heartbeat <= assigned:
            self._absent_since.pop(subtask.id, None)
            return timedelta(0)
        return agent.last_heartbeat - self._absent_since.setdefault(subtask.id, agent.last_heartbeat)
