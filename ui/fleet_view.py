"""The fleet as the dashboard shows it: the registry's live agents joined with every agent the tenant's work has
seen (GET /agents/history), so an agent that died stays listed, as offline, with counts that survive restarts."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.models import AgentState as RegistryState
from shared.models import AgentStatus
from ui.api_models import AgentRecord
from ui.formatting import seconds_between


class AgentState(StrEnum):
    OFFLINE = "offline"
    FAILED = "declared failed"  # by an operator: no work until it restarts
    DRAINING = "draining"
    LATE = "heartbeat late"
    BUSY = "busy"
    AVAILABLE = "available"


STATE_COLOURS = {
    AgentState.OFFLINE: "#b91c1c",
    AgentState.FAILED: "#7f1d1d",
    AgentState.DRAINING: "#7c3aed",
    AgentState.LATE: "#b45309",
    AgentState.BUSY: "#c2410c",
    AgentState.AVAILABLE: "#15803d",
}


@dataclass(frozen=True)
class AgentView:
    agent_id: str
    state: AgentState
    status: AgentStatus | None  # what the registry says now; None for an agent that is gone
    record: AgentRecord | None  # what its work left in PostgreSQL; None when the orchestrator keeps no history
    last_seen: datetime | None

    @property
    def capabilities(self) -> list[str]:
        if self.status:
            return [capability.value for capability in self.status.capabilities]
        return list(self.record.capabilities) if self.record else []

    @property
    def completed(self) -> int:
        """Subtasks completed: the durable count when there is one, else the agent's own since it started."""
        if self.record:
            return self.record.subtasks_completed
        return self.status.tasks_completed if self.status else 0

    @property
    def failed(self) -> int:
        if self.record:
            return self.record.subtasks_failed
        return self.status.tasks_failed if self.status else 0


def fleet(
    live: list[AgentStatus], history: list[AgentRecord] | None, now: datetime, late_after: float
) -> list[AgentView]:
    """Every agent, the offline ones first so a dead agent is the first thing seen."""
    records = {record.agent_id: record for record in history or []}
    views = [_live_view(agent, records.get(agent.agent_id), now, late_after) for agent in live]
    live_ids = {agent.agent_id for agent in live}
    views += [
        AgentView(record.agent_id, AgentState.OFFLINE, None, record, record.last_seen)
        for record in records.values()
        if record.agent_id not in live_ids
    ]
    return sorted(views, key=lambda view: (view.state is not AgentState.OFFLINE, view.agent_id))


def _live_view(agent: AgentStatus, record: AgentRecord | None, now: datetime, late_after: float) -> AgentView:
    if agent.state is RegistryState.FAILED:
        state = AgentState.FAILED
    elif agent.state is RegistryState.DRAINING:
        state = AgentState.DRAINING
    elif seconds_between(agent.last_heartbeat, now) > late_after:
        state = AgentState.LATE
    else:
        state = AgentState.BUSY if is_busy(agent) else AgentState.AVAILABLE
    return AgentView(agent.agent_id, state, agent, record, agent.last_heartbeat)


def is_busy(agent: AgentStatus) -> bool:
    return bool(agent.current_tasks or agent.current_task) or not agent.is_available
