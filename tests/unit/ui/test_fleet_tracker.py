"""The session's memory of the fleet: agents that vanished from the registry, late heartbeats, throughput."""

from datetime import UTC, datetime, timedelta

from shared.models import AgentCapability, AgentStatus
from shared.models import AgentState as RegistryState
from ui.fleet_tracker import AgentState, FleetTracker

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def agent(agent_id: str, *, completed: int = 0, heartbeat: datetime = START, busy: bool = False) -> AgentStatus:
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


def states(tracker: FleetTracker, now: datetime) -> dict[str, AgentState]:
    return {view.status.agent_id: view.state for view in tracker.views(now, late_after_seconds=25)}


def test_an_agent_missing_from_the_registry_is_offline_and_listed_first() -> None:
    tracker = FleetTracker()
    tracker.observe([agent("agent1"), agent("agent2", busy=True)], START)
    tracker.observe([agent("agent2", busy=True)], START + timedelta(seconds=5))

    views = tracker.views(START + timedelta(seconds=5), late_after_seconds=25)
    assert [(view.status.agent_id, view.state) for view in views] == [
        ("agent1", AgentState.OFFLINE),
        ("agent2", AgentState.BUSY),
    ]
    assert views[0].heartbeat_age_seconds == 5


def test_a_late_heartbeat_is_flagged_before_the_registry_drops_the_agent() -> None:
    tracker = FleetTracker()
    tracker.observe([agent("agent1"), agent("agent2", heartbeat=START - timedelta(seconds=30))], START)

    assert states(tracker, START) == {"agent1": AgentState.AVAILABLE, "agent2": AgentState.LATE}


def test_an_agent_declared_failed_or_draining_says_so() -> None:
    tracker = FleetTracker()
    failed = agent("agent1").model_copy(update={"state": RegistryState.FAILED, "is_available": False})
    draining = agent("agent2", busy=True).model_copy(update={"state": RegistryState.DRAINING})

    tracker.observe([failed, draining, agent("agent3")], START)

    assert states(tracker, START) == {
        "agent1": AgentState.FAILED,
        "agent2": AgentState.DRAINING,
        "agent3": AgentState.AVAILABLE,
    }


def test_an_agent_that_comes_back_is_live_again() -> None:
    tracker = FleetTracker()
    tracker.observe([agent("agent1")], START)
    tracker.observe([], START + timedelta(seconds=5))
    tracker.observe([agent("agent1", heartbeat=START + timedelta(seconds=10))], START + timedelta(seconds=10))

    assert states(tracker, START + timedelta(seconds=10)) == {"agent1": AgentState.AVAILABLE}


def test_throughput_is_completions_per_minute_and_a_restart_counts_as_zero() -> None:
    tracker = FleetTracker()
    tracker.observe([agent("agent1", completed=10)], START)
    tracker.observe([agent("agent1", completed=13)], START + timedelta(seconds=30))
    tracker.observe([agent("agent1", completed=0)], START + timedelta(seconds=60))

    assert tracker.throughput_per_minute() == [
        (START + timedelta(seconds=30), 6.0),
        (START + timedelta(seconds=60), 0.0),
    ]
    assert [(sample.live, sample.busy) for sample in tracker.samples] == [(1, 0)] * 3
