"""What the dashboard has seen of the fleet during one session: agents that went silent, and load over time.

The registry forgets an agent once its heartbeat expires, so an agent that died simply vanishes from
GET /agents. Remembering every agent seen in this session is how the dashboard can still show it, as offline.
"""

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from shared.models import AgentState as RegistryState
from shared.models import AgentStatus
from ui.formatting import seconds_between

MAX_SAMPLES = 180  # 15 minutes at one sample every 5 s


class AgentState(StrEnum):
    OFFLINE = "🔴 offline"
    FAILED = "⛔ declared failed"  # by an operator: no work until it restarts
    DRAINING = "🟣 draining"
    LATE = "🟡 heartbeat late"
    BUSY = "🟠 busy"
    AVAILABLE = "🟢 available"


@dataclass(frozen=True)
class AgentView:
    status: AgentStatus  # the latest the registry said; for an offline agent, its last words
    state: AgentState
    heartbeat_age_seconds: float


@dataclass(frozen=True)
class FleetSample:
    at: datetime
    live: int
    busy: int
    completed: int  # sum of the live agents' completed counters


@dataclass
class FleetTracker:
    last_seen: dict[str, AgentStatus] = field(default_factory=dict)
    live_ids: set[str] = field(default_factory=set)
    samples: deque[FleetSample] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))

    def observe(self, agents: list[AgentStatus], now: datetime) -> None:
        """Record one answer of GET /agents."""
        self.last_seen.update({agent.agent_id: agent for agent in agents})
        self.live_ids = {agent.agent_id for agent in agents}
        busy = sum(1 for agent in agents if _is_busy(agent))
        self.samples.append(FleetSample(now, len(agents), busy, sum(agent.tasks_completed for agent in agents)))

    def views(self, now: datetime, late_after_seconds: float) -> list[AgentView]:
        """Every agent seen in this session, the missing ones first so a dead agent is the first thing seen."""
        views = [self._view(agent, now, late_after_seconds) for agent in self.last_seen.values()]
        return sorted(views, key=lambda view: (view.state is not AgentState.OFFLINE, view.status.agent_id))

    def _view(self, agent: AgentStatus, now: datetime, late_after_seconds: float) -> AgentView:
        heartbeat_age = seconds_between(agent.last_heartbeat, now)
        if agent.agent_id not in self.live_ids:
            state = AgentState.OFFLINE
        elif agent.state is RegistryState.FAILED:
            state = AgentState.FAILED
        elif agent.state is RegistryState.DRAINING:
            state = AgentState.DRAINING
        elif heartbeat_age > late_after_seconds:
            state = AgentState.LATE
        else:
            state = AgentState.BUSY if _is_busy(agent) else AgentState.AVAILABLE
        return AgentView(agent, state, heartbeat_age)

    def throughput_per_minute(self) -> list[tuple[datetime, float]]:
        """Subtasks completed per minute between consecutive samples (a restarted agent's reset counts as 0)."""
        pairs = zip(list(self.samples), list(self.samples)[1:], strict=False)
        return [
            (later.at, max(later.completed - earlier.completed, 0) * 60 / seconds_between(earlier.at, later.at))
            for earlier, later in pairs
            if seconds_between(earlier.at, later.at) > 0
        ]


def _is_busy(agent: AgentStatus) -> bool:
    return bool(agent.current_tasks or agent.current_task) or not agent.is_available
