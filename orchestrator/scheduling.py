"""Which agent gets a subtask: the eligibility rules and the preference order, as pure functions."""

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from shared.models import AgentCapability, AgentStatus, ResultStatus


class Routable(Protocol):
    """What routing needs to know of a subtask (a SubTask, or the queue item that points at one)."""

    @property
    def required_capabilities(self) -> list[AgentCapability]: ...

    @property
    def failed_agent_ids(self) -> list[str]: ...


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


class SuccessHistory:
    """Completed and failed counts per agent and capability, for preferring agents that do well."""

    def __init__(self) -> None:
        self._counts: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    def record(self, agent_id: str, subtask: Routable, status: ResultStatus) -> None:
        for capability in subtask.required_capabilities:
            self._counts[(agent_id, capability)][0 if status is ResultStatus.COMPLETED else 1] += 1

    def success_rate(self, agent_id: str, subtask: Routable) -> float:
        completed = failed = 0
        for capability in subtask.required_capabilities:
            ok, bad = self._counts.get((agent_id, capability), (0, 0))
            completed, failed = completed + ok, failed + bad
        # An agent without history is given the benefit of the doubt (Laplace smoothing).
        return (completed + 1) / (completed + failed + 2)


def capable_agents(agents: Sequence[AgentStatus], subtask: Routable) -> list[AgentStatus]:
    """Agents whose capabilities include all the subtask needs, avoiding earlier failures when possible."""
    required = set(subtask.required_capabilities)
    capable = [agent for agent in agents if required <= set(agent.capabilities)]
    untried = [agent for agent in capable if agent.agent_id not in subtask.failed_agent_ids]
    return untried or capable


def rank_agents(
    agents: Sequence[AgentStatus], subtask: Routable, load: AgentLoadTracker, history: SuccessHistory
) -> list[AgentStatus]:
    """Capable agents with a free slot, least loaded first, then best record for this kind of work."""
    with_room = [agent for agent in capable_agents(agents, subtask) if load.running(agent.agent_id) < agent.slots]
    return sorted(
        with_room,
        key=lambda agent: (
            load.running(agent.agent_id) / agent.slots,
            -history.success_rate(agent.agent_id, subtask),
            agent.agent_id,
        ),
    )
