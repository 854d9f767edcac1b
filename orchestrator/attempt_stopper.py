"""Telling agents to stop attempts whose task ended under them (cancelled, or past its deadline): a signed POST /stop
to each agent, for each attempt it was running, so it stops spending tokens on work nobody will use.

Best effort, after the transition committed: the attempts are already cancelled in PostgreSQL, so whatever an agent
reports of them later is recorded and changes nothing. An agent that has no registry entry or cannot be reached is
logged and left to finish on its own; one that no longer runs the attempt answers 404, which is what was wanted.
"""

import asyncio
from collections.abc import Mapping, Sequence

import structlog

from orchestrator.agent_client import AgentClient, AgentUnreachableError
from shared.fleet_trust import FleetTrust
from shared.models import AgentStatus, RunningAttempt
from shared.outages import STORE_OUTAGES
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)


class AttemptStopper:
    def __init__(self, trust: FleetTrust, redis: RedisManager, agents: AgentClient | None) -> None:
        self._trust = trust
        self._redis = redis
        self._agents = agents  # None where no agent is ever called (a lifecycle built for tests of its transitions)

    async def stop(self, attempts: Sequence[RunningAttempt], reasons: Mapping[str, str]) -> int:
        """Tell each attempt's agent to stop it, with the reason of its task (`reasons` by task id); returns how
        many agents took the order. Never raises: an attempt not stopped is logged."""
        if not attempts:
            return 0
        if self._agents is None:
            log.warning("attempts_not_stopped", count=len(attempts), why="no agent client")
            return 0
        try:
            live = {agent.agent_id: agent for agent in await self._redis.get_agents()}
        except STORE_OUTAGES as error:
            log.warning("attempts_not_stopped", count=len(attempts), why=f"the registry is unreachable: {error!r}")
            return 0
        stopped = await asyncio.gather(
            *(self._stop_one(attempt, live.get(attempt.agent_id), reasons[attempt.task_id]) for attempt in attempts)
        )
        return sum(stopped)

    async def _stop_one(self, attempt: RunningAttempt, agent: AgentStatus | None, reason: str) -> bool:
        assert self._agents is not None
        fields = {"task_id": attempt.task_id, "subtask_id": attempt.subtask_id, "attempt": attempt.attempt}
        if agent is None:
            why = "the agent has no live registry entry"
            log.info("attempt_not_stopped", agent_id=attempt.agent_id, why=why, **fields)
            return False
        command = self._trust.sign_stop(attempt, reason)
        try:
            answer = await self._agents.stop(agent.url, command.model_dump_json())
        except AgentUnreachableError as error:
            log.warning("attempt_not_stopped", agent_id=agent.agent_id, why=f"unreachable: {error}", **fields)
            return False
        if not answer.accepted:
            log.info("attempt_not_stopped", agent_id=agent.agent_id, why=f"{answer.status}: {answer.body}", **fields)
            return False
        log.info("attempt_stopped", agent_id=agent.agent_id, reason=reason, **fields)
        return True
