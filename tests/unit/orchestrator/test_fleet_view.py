"""The orchestrator's reading of the registry: how busy the agents that take work are."""

from orchestrator.fleet_view import utilization
from shared.models import AgentState, AgentStatus
from tests.unit.orchestrator.conftest import DATA, live_agent


def agent(agent_id: str, port: int, *, slots: int, running: int, state: AgentState) -> AgentStatus:
    busy = [f"subtask_{agent_id}_{n}" for n in range(running)]
    return live_agent(agent_id, port, DATA).model_copy(update={"slots": slots, "current_tasks": busy, "state": state})


def test_utilization_counts_only_the_slots_of_agents_taking_work() -> None:
    agents = [
        agent("agent1", 8001, slots=2, running=1, state=AgentState.ACTIVE),
        agent("agent2", 8002, slots=2, running=2, state=AgentState.ACTIVE),
        agent("agent3", 8003, slots=4, running=0, state=AgentState.FAILED),  # declared failed: no capacity
        agent("agent4", 8004, slots=1, running=1, state=AgentState.DRAINING),  # finishing, takes nothing new
    ]
    assert utilization(agents) == 3 / 4


def test_utilization_is_zero_without_an_agent_taking_work() -> None:
    assert utilization([]) == 0.0
    assert utilization([agent("agent1", 8001, slots=1, running=1, state=AgentState.FAILED)]) == 0.0


def test_a_busy_count_above_the_slots_counts_the_slots() -> None:
    assert utilization([agent("agent1", 8001, slots=1, running=3, state=AgentState.ACTIVE)]) == 1.0
