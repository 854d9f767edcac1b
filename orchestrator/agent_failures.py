"""Declaring an agent failed (POST /agents/{agent_id}/fail): it gets no more work, what it runs goes to other agents
at once, and it is told to drain.

In that order, so nothing slips between the steps: the mark (shared/redis/failed_agents.py) first, so no dispatcher
offers it anything more; then its running attempts are handed back through the lifecycle, which queues them again
with the agent among their failed_agent_ids; last the agent is told, when it can be reached, and stops them (their
results would be a superseded offer's, which change nothing). An agent that cannot be reached is failed all the same.
"""

import structlog

from orchestrator.agent_client import AgentClient, AgentUnreachableError
from orchestrator.api.schemas import AgentFailedResponse
from orchestrator.lifecycle import TaskLifecycle
from shared.errors import NotFoundError
from shared.models import AgentStatus
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)


class AgentFailures:
    def __init__(self, lifecycle: TaskLifecycle, redis: RedisManager, agents: AgentClient) -> None:
        self._lifecycle = lifecycle
        self._redis = redis
        self._agents = agents
        self._trust = lifecycle.trust
        self._directory = lifecycle.fleet.directory

    async def declare_failed(self, agent_id: str) -> AgentFailedResponse:
        """Fail the agent now; NotFoundError for an id with no registry entry and no running attempt. Repeating it
        hands back nothing more and tells the agent again."""
        entry = await self._redis.registry.get_agent(agent_id)
        if entry is None and not await self._lifecycle.running_on(agent_id):
            raise NotFoundError(
                f"no agent {agent_id!r}: it has no live registry entry and runs no subtask, so there is nothing to fail"
            )
        reason = f"agent {agent_id} was declared failed by an operator"
        mark = await self._redis.registry.mark_failed(agent_id, entry.started_at if entry else None)
        self._directory.declare_failed(agent_id, mark)
        handed_back = len((await self._lifecycle.hand_back(agent_id, reason)).applied)
        await self._redis.offers.clear(agent_id)  # their offers, and any made before the mark: none may run there
        notified, notification = await self._tell_to_drain(entry, reason)
        log.warning(
            "agent_declared_failed",
            agent_id=agent_id,
            attempts_handed_back=handed_back,
            agent_notified=notified,
            notification=notification,
        )
        return AgentFailedResponse(
            agent_id=agent_id, attempts_handed_back=handed_back, agent_notified=notified, notification=notification
        )

    async def _tell_to_drain(self, entry: AgentStatus | None, reason: str) -> tuple[bool, str]:
        """Whether the agent took the order to drain, and in words what became of it."""
        if entry is None:
            return False, "not told: the agent has no live registry entry, so there is no address to reach it at"
        command = self._trust.sign_drain(entry.agent_id, entry.started_at, reason)
        try:
            answer = await self._agents.drain(entry.url, command.model_dump_json())
        except AgentUnreachableError as error:
            return False, f"not told: {entry.url} could not be reached ({error})"
        if not answer.accepted:
            return False, f"not told: {entry.url}/drain answered {answer.status}: {answer.body}"
        return True, "told to drain: it refuses offers from now on and has stopped what it was running"
