"""The fleet the Agents tab shows: live agents from the registry, dead ones from the server's history, first."""

from datetime import UTC, datetime, timedelta

from shared.models import AgentCapability, AgentStatus
from shared.models import AgentState as RegistryState
from ui.api_models import AgentRecord
from ui.fleet_view import AgentState, fleet

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def agent(agent_id: str, *, heartbeat: datetime = NOW, busy: bool = False, completed: int = 0) -> AgentStatus:
    return AgentStatus(
        agent_id=agent_id,
        url=f"http://127.0.0.1:800{agent_id[-1]}",
        port=8000 + int(agent_id[-1]),
        is_available=not busy,
        current_tasks=["task_1"] if busy else [],
        capabilities=[AgentCapability.DATA_ANALYSIS],
        tasks_completed=completed,
        last_heartbeat=heartbeat,
    )


def record(agent_id: str, completed: int, alive: bool = True) -> AgentRecord:
    return AgentRecord(
        agent_id=agent_id, capabilities=["WEB_SCRAPING"], alive=alive, subtasks_completed=completed, last_seen=NOW
    )


def test_a_dead_agent_known_from_history_comes_first_with_its_durable_counts() -> None:
    views = fleet([agent("agent1", completed=2)], [record("agent1", 40), record("agent2", 7, alive=False)], NOW, 25)

    assert [(view.agent_id, view.state, view.completed) for view in views] == [
        ("agent2", AgentState.OFFLINE, 7),
        ("agent1", AgentState.AVAILABLE, 40),  # the agent's own counter restarted at 2
    ]
    assert views[0].capabilities == ["WEB_SCRAPING"]


def test_without_history_the_live_agents_and_their_own_counters_are_shown() -> None:
    late = agent("agent2", heartbeat=NOW - timedelta(seconds=30))
    failed = agent("agent3").model_copy(update={"state": RegistryState.FAILED, "is_available": False})
    draining = agent("agent4", busy=True).model_copy(update={"state": RegistryState.DRAINING})
    views = fleet([agent("agent1", busy=True, completed=3), late, failed, draining], None, NOW, 25)

    assert [(view.agent_id, view.state) for view in views] == [
        ("agent1", AgentState.BUSY),
        ("agent2", AgentState.LATE),
        ("agent3", AgentState.FAILED),
        ("agent4", AgentState.DRAINING),
    ]
    assert views[0].completed == 3
