"""The fleet's history as a tenant sees it: PostgreSQL's records of every agent that ran its work, joined with the
live registry, so an agent that died keeps its record and a live one shows even before it ran anything.

A tenant sees the agents that ran its work (applied results) and the agents live now; counts and errors are its own
work's only. Another tenant's agents that are gone stay out of sight.
"""

from shared.database import DatabaseManager
from shared.database.agent_record_repository import AgentHistory
from shared.database.attempt_repository import AttemptRecord
from shared.errors import NotFoundError
from shared.models import AgentStatus
from shared.redis_manager import RedisManager


async def agent_histories(db: DatabaseManager, redis: RedisManager) -> list[AgentHistory]:
    """Every agent that ran this tenant's work or is live now, by id."""
    live = {agent.agent_id: agent for agent in await redis.get_agents()}
    recorded = await db.repositories().agent_records.agent_histories(live.keys())
    histories = {record.agent_id: _with_live(record, live.get(record.agent_id)) for record in recorded}
    for agent_id, agent in live.items():  # registered since the last sighting was written
        histories.setdefault(agent_id, _first_sighting(agent))
    return [histories[agent_id] for agent_id in sorted(histories)]


async def agent_attempts(db: DatabaseManager, redis: RedisManager, agent_id: str, limit: int) -> list[AttemptRecord]:
    """The agent's newest attempts of this tenant's work; NotFoundError for an agent that never ran any and is not
    live."""
    attempts = await db.repositories().attempts.agent_attempts(agent_id, limit)
    if not attempts and agent_id not in {agent.agent_id for agent in await redis.get_agents()}:
        raise NotFoundError(f"no agent {agent_id!r} has run this tenant's work, and none by that id is live")
    return attempts


def _with_live(record: AgentHistory, agent: AgentStatus | None) -> AgentHistory:
    if agent is None:
        return record
    return record.model_copy(
        update={
            "alive": True,
            "capabilities": [capability.value for capability in agent.capabilities],
            "last_seen": max(record.last_seen, agent.last_heartbeat),
        }
    )


def _first_sighting(agent: AgentStatus) -> AgentHistory:
    return AgentHistory(
        agent_id=agent.agent_id,
        role=None,
        capabilities=[capability.value for capability in agent.capabilities],
        first_seen=agent.last_heartbeat,
        last_seen=agent.last_heartbeat,
        alive=True,
        subtasks_completed=0,
        subtasks_failed=0,
        last_error=None,
    )
