"""Which agent gets a subtask: the eligibility rules and the preference order, as pure functions."""

import asyncio
import contextlib
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.database.result_repository import RecordedOutcome
from shared.models import AgentCapability, AgentStatus, ResultStatus, TaskType


class Routable(Protocol):
    """What routing needs to know of a subtask (a SubTask, or the queue item that points at one)."""

    @property
    def required_capabilities(self) -> list[AgentCapability]: ...

    @property
    def failed_agent_ids(self) -> list[str]: ...

    @property
    def task_type(self) -> TaskType: ...


class AgentLoadTracker:
    """Subtasks this orchestrator has handed to each agent and not yet heard back about.

    Heartbeats arrive every few seconds; this view changes the moment work is dispatched or a result
    comes back, so the dispatcher neither overfills an agent nor waits for the next heartbeat.
    """

    def __init__(self) -> None:
        self._running: defaultdict[str, set[str]] = defaultdict(set)
        self._changed = asyncio.Event()  # one waiter: the dispatcher's matcher

    def running(self, agent_id: str) -> int:
        return len(self._running[agent_id])

    def try_reserve(self, agent: AgentStatus, subtask_id: str) -> bool:
        """Take one of the agent's slots for the subtask, unless they are all taken.

        Synchronous on purpose: with no await between the check and the update, two deliveries can
        never both take an agent's last slot.
        """
        running = self._running[agent.agent_id]
        if len(running) >= agent.slots:
            return False
        running.add(subtask_id)
        return True

    def restore(self, agent_id: str, subtask_id: str) -> None:
        """Count work an agent was already running when this orchestrator started."""
        self._running[agent_id].add(subtask_id)

    def released(self, agent_id: str, subtask_id: str) -> None:
        self._running[agent_id].discard(subtask_id)
        self.notify()

    def notify(self) -> None:
        """Something that matching depends on changed: a slot freed, new work, or the registry."""
        self._changed.set()

    async def wait_for_change(self, timeout: float) -> None:
        """Returns at once if anything changed since the last call, else at the next change or the timeout."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
        self._changed.clear()


# The record an agent is judged by: its last 20 applied results for one kind of work (task type and capability set).
# Recent, so an agent that got better or worse is seen to within a few tasks; enough that one failure does not flip
# the order. The same window is read from PostgreSQL at start (ResultRepository.recent_outcomes).
AFFINITY_WINDOW = 20

WorkKind = tuple[TaskType, frozenset[AgentCapability]]


def work_kind(subtask: Routable) -> WorkKind:
    return subtask.task_type, frozenset(subtask.required_capabilities)


@dataclass(frozen=True)
class TrackRecord:
    """How an agent did at one kind of work lately."""

    completed: int = 0
    failed: int = 0
    mean_seconds: float | None = None  # of the completed attempts

    @property
    def success_rate(self) -> float:
        # An agent without history is given the benefit of the doubt (Laplace smoothing).
        return (self.completed + 1) / (self.completed + self.failed + 2)

    @property
    def preference(self) -> tuple[float, float]:
        """Sorts the better record first: the higher success rate, then the faster (unknown speed: no penalty)."""
        return -self.success_rate, self.mean_seconds or 0.0


class SuccessHistory:
    """Each agent's recent outcomes per kind of work (task type and capability set), for preferring the agents that
    do that work well: the affinity. Loaded from PostgreSQL at start and kept up to date as results apply."""

    def __init__(self, window: int = AFFINITY_WINDOW) -> None:
        self._window = window
        # (agent id, kind) -> (completed?, seconds) of the latest results, oldest first
        self._outcomes: dict[tuple[str, WorkKind], deque[tuple[bool, float]]] = {}

    def record(self, agent_id: str, subtask: Routable, status: ResultStatus, seconds: float) -> None:
        self._remember(agent_id, work_kind(subtask), status is ResultStatus.COMPLETED, seconds)

    def load(self, outcomes: Iterable[RecordedOutcome]) -> None:
        """Take in stored outcomes, oldest first (what a restarted orchestrator knew before)."""
        for outcome in outcomes:
            kind = (outcome.task_type, frozenset(outcome.required_capabilities))
            self._remember(outcome.agent_id, kind, outcome.status is ResultStatus.COMPLETED, outcome.execution_time)

    def _remember(self, agent_id: str, kind: WorkKind, completed: bool, seconds: float) -> None:
        key = (agent_id, kind)
        if key not in self._outcomes:
            self._outcomes[key] = deque(maxlen=self._window)
        self._outcomes[key].append((completed, seconds))

    def track_record(self, agent_id: str, subtask: Routable) -> TrackRecord:
        outcomes = self._outcomes.get((agent_id, work_kind(subtask)), ())
        durations = [seconds for completed, seconds in outcomes if completed]
        return TrackRecord(
            completed=len(durations),
            failed=len(outcomes) - len(durations),
            mean_seconds=sum(durations) / len(durations) if durations else None,
        )


def capable_agents(agents: Sequence[AgentStatus], subtask: Routable) -> list[AgentStatus]:
    """Agents whose capabilities include all the subtask needs, avoiding earlier failures when possible."""
    required = set(subtask.required_capabilities)
    capable = [agent for agent in agents if required <= set(agent.capabilities)]
    untried = [agent for agent in capable if agent.agent_id not in subtask.failed_agent_ids]
    return untried or capable


def rank_agents(
    agents: Sequence[AgentStatus], subtask: Routable, load: AgentLoadTracker, history: SuccessHistory
) -> list[AgentStatus]:
    """Capable agents with a free slot, least loaded first, then the best recent record for this kind of work
    (success rate, then speed)."""
    with_room = [agent for agent in capable_agents(agents, subtask) if load.running(agent.agent_id) < agent.slots]
    return sorted(
        with_room,
        key=lambda agent: (
            load.running(agent.agent_id) / agent.slots,
            history.track_record(agent.agent_id, subtask).preference,
            agent.agent_id,
        ),
    )
