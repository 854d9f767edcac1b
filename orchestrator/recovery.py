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


class RecoveryService(LoopService):
    def __init__(self, lifecycle: TaskLifecycle, redis: RedisManager, consumer_ids: list[str]) -> None:
        super().__init__("recovery", lifecycle.settings.recovery_interval_seconds)
        self._lifecycle = lifecycle
        self._settings = lifecycle.settings
        self._redis = redis
        self._directory = lifecycle.fleet.directory
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
        await self.retry_stranded()

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
            # What waits in the offer queue of an agent that is gone was just handed back: nothing there may run.
            for agent_id in {
                s.assigned_agent for s, _ in stranded if s.assigned_agent and s.assigned_agent not in agents
            }:
                await self._redis.offers.clear(agent_id)
        return len(stranded)

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
