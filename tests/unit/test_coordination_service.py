"""The coordination pool's rules as pure functions (seed 004): task types, affinity ranking, why work waits."""

import pytest
from pydantic import ValidationError

from orchestrator.scheduling import AgentLoadTracker, SuccessHistory, rank_agents
from orchestrator.waiting import TaskTypeDependencies, waiting_reason
from shared.database.result_repository import RecordedOutcome
from shared.models import (
    AgentCapability,
    AgentStatus,
    QueuedSubtask,
    ResultStatus,
    StatusReason,
    SubTask,
    TaskCreateRequest,
    TaskType,
)

# --- task types, affinity and graceful degradation ---

DATA = AgentCapability.DATA_ANALYSIS
WEB = AgentCapability.WEB_SCRAPING
CODE = AgentCapability.CODE_GENERATION
COMPLETED, FAILED = ResultStatus.COMPLETED, ResultStatus.FAILED


def agent(agent_id: str, *capabilities: AgentCapability, slots: int = 1) -> AgentStatus:
    port = 8000 + int(agent_id.removeprefix("agent"))
    return AgentStatus(
        agent_id=agent_id,
        url=f"http://127.0.0.1:{port}",
        port=port,
        is_available=True,
        capabilities=list(capabilities),
        slots=slots,
    )


def item(*capabilities: AgentCapability, task_type: TaskType = TaskType.GENERAL) -> QueuedSubtask:
    return QueuedSubtask(
        task_id="task_1",
        subtask_id="subtask_1",
        attempt=1,
        required_capabilities=list(capabilities),
        task_type=task_type,
    )


def ranked_ids(
    agents: list[AgentStatus], work: QueuedSubtask, history: SuccessHistory, load: AgentLoadTracker
) -> list[str]:
    return [ranked.agent_id for ranked in rank_agents(agents, work, load, history)]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("DISCOVERY", TaskType.DISCOVERY),
        ("migration", TaskType.MIGRATION),
        ("Heartbeat", TaskType.HEARTBEAT),
        (" ingest ", TaskType.INGEST),
        ("research", TaskType.RESEARCH),
        ("general", TaskType.GENERAL),
    ],
)
def test_a_task_type_is_read_in_any_case(written: str, expected: TaskType) -> None:
    assert TaskType(written) is expected
    assert TaskCreateRequest(description="Analyse the quarterly sales", task_type=written).task_type is expected


@pytest.mark.parametrize("written", ["database_query", "", "GENERAL2", "analysis"])
def test_an_unknown_task_type_is_refused_naming_the_known_ones(written: str) -> None:
    with pytest.raises(ValidationError) as refused:
        TaskCreateRequest(description="Analyse the quarterly sales", task_type=written)

    message = str(refused.value)
    assert "task_type" in message
    assert "'DISCOVERY', 'MIGRATION', 'HEARTBEAT', 'INGEST', 'RESEARCH' or 'GENERAL'" in message


def test_tasks_and_subtasks_are_general_unless_told_otherwise() -> None:
    assert TaskCreateRequest(description="Analyse the quarterly sales").task_type is TaskType.GENERAL
    subtask = SubTask(task_id="task_1", description="a step", required_capabilities=[DATA])
    assert subtask.task_type is TaskType.GENERAL
    assert subtask.status_reason is None
    assert (
        QueuedSubtask.for_subtask(
            subtask.model_copy(update={"task_type": TaskType.INGEST, "attempt_count": 1})
        ).task_type
        is TaskType.INGEST
    )


def test_a_status_reason_has_a_code_to_act_on_and_a_message_to_read() -> None:
    reason = StatusReason(code="no_live_agent", message="waiting: no live agent with WEB_SCRAPING")

    assert reason.model_dump() == {"code": "no_live_agent", "message": "waiting: no live agent with WEB_SCRAPING"}
    with pytest.raises(ValidationError):
        StatusReason(code="No Live Agent", message="codes are snake_case")
    with pytest.raises(ValidationError):
        StatusReason(code="no_live_agent", message="")


def test_without_history_agents_rank_by_load_then_id() -> None:
    agents = [agent("agent5", DATA), agent("agent1", DATA, CODE), agent("agent2", WEB)]
    load = AgentLoadTracker()

    assert ranked_ids(agents, item(DATA), SuccessHistory(), load) == ["agent1", "agent5"]
    assert load.try_reserve(agents[1], "subtask_busy")
    assert ranked_ids(agents, item(DATA), SuccessHistory(), load) == ["agent5"]  # agent1's one slot is taken


def test_the_agent_with_the_better_record_for_the_task_type_comes_first() -> None:
    agents = [agent("agent1", DATA), agent("agent5", DATA)]
    history = SuccessHistory()
    research = item(DATA, task_type=TaskType.RESEARCH)
    history.record("agent1", research, FAILED, 1.0)
    history.record("agent5", research, COMPLETED, 1.0)

    assert ranked_ids(agents, research, history, AgentLoadTracker()) == ["agent5", "agent1"]
    # Another task type, or another capability set, has its own record: here neither agent has one.
    assert ranked_ids(agents, item(DATA, task_type=TaskType.INGEST), history, AgentLoadTracker()) == [
        "agent1",
        "agent5",
    ]
    together = [agent("agent1", DATA, CODE), agent("agent5", DATA, CODE)]
    assert ranked_ids(together, item(DATA, CODE, task_type=TaskType.RESEARCH), history, AgentLoadTracker()) == [
        "agent1",
        "agent5",
    ]


def test_between_equal_success_rates_the_faster_agent_comes_first() -> None:
    agents = [agent("agent1", DATA), agent("agent5", DATA)]
    history = SuccessHistory()
    for _ in range(3):
        history.record("agent1", item(DATA), COMPLETED, 9.0)
        history.record("agent5", item(DATA), COMPLETED, 2.0)

    assert ranked_ids(agents, item(DATA), history, AgentLoadTracker()) == ["agent5", "agent1"]
    assert history.track_record("agent5", item(DATA)).mean_seconds == 2.0


def test_load_comes_before_the_record() -> None:
    agents = [agent("agent1", DATA, slots=2), agent("agent5", DATA, slots=2)]
    history = SuccessHistory()
    history.record("agent1", item(DATA), COMPLETED, 1.0)
    load = AgentLoadTracker()
    load.try_reserve(agents[0], "subtask_busy")

    assert ranked_ids(agents, item(DATA), history, load) == ["agent5", "agent1"]


def test_only_the_recent_window_counts() -> None:
    agents = [agent("agent1", DATA), agent("agent5", DATA)]
    history = SuccessHistory(window=3)
    for _ in range(10):
        history.record("agent1", item(DATA), FAILED, 1.0)  # a bad start, long ago
    for _ in range(3):
        history.record("agent1", item(DATA), COMPLETED, 1.0)
    history.record("agent5", item(DATA), COMPLETED, 1.0)
    history.record("agent5", item(DATA), FAILED, 1.0)

    record = history.track_record("agent1", item(DATA))
    assert (record.completed, record.failed) == (3, 0)
    assert ranked_ids(agents, item(DATA), history, AgentLoadTracker()) == ["agent1", "agent5"]


def test_a_loaded_record_ranks_like_one_recorded_live() -> None:
    agents = [agent("agent1", DATA), agent("agent5", DATA)]
    history = SuccessHistory()
    history.load(
        [
            RecordedOutcome(
                agent_id=agent_id,
                task_type=TaskType.RESEARCH,
                required_capabilities=[DATA],
                status=status,
                execution_time=1.0,
            )
            for agent_id, status in [("agent1", FAILED), ("agent5", COMPLETED)]
        ]
    )

    assert ranked_ids(agents, item(DATA, task_type=TaskType.RESEARCH), history, AgentLoadTracker()) == [
        "agent5",
        "agent1",
    ]


def test_work_no_live_agent_can_take_waits_naming_what_is_missing() -> None:
    agents = [agent("agent1", DATA, CODE), agent("agent5", DATA)]
    no_dependencies = TaskTypeDependencies({})

    assert waiting_reason(item(WEB), agents, no_dependencies) == StatusReason(
        code="no_live_agent", message="waiting: no live agent with WEB_SCRAPING"
    )
    assert waiting_reason(item(WEB, DATA), agents, no_dependencies) == StatusReason(
        code="no_live_agent", message="waiting: no live agent with WEB_SCRAPING, DATA_ANALYSIS"
    )
    assert waiting_reason(item(DATA, CODE), agents, no_dependencies) is None
    assert waiting_reason(item(DATA), [], no_dependencies) is not None


def test_a_task_type_waits_while_the_capability_it_depends_on_has_no_live_agent() -> None:
    dependencies = TaskTypeDependencies({TaskType.INGEST: "WEB_SCRAPING"})
    ingest = item(DATA, task_type=TaskType.INGEST)

    assert waiting_reason(ingest, [agent("agent1", DATA)], dependencies) == StatusReason(
        code="dependency_unavailable", message="waiting: INGEST needs a live agent with WEB_SCRAPING, and there is none"
    )
    assert waiting_reason(ingest, [agent("agent1", DATA), agent("agent2", WEB)], dependencies) is None
    assert waiting_reason(item(DATA), [agent("agent1", DATA)], dependencies) is None  # other types flow


def test_a_task_type_waits_while_its_health_url_is_not_known_to_answer() -> None:
    url = "http://discovery:9000/health"
    dependencies = TaskTypeDependencies({TaskType.DISCOVERY: url})
    discovery = item(DATA, task_type=TaskType.DISCOVERY)
    agents = [agent("agent1", DATA)]

    assert dependencies.urls == [url]
    assert waiting_reason(discovery, agents, dependencies) == StatusReason(
        code="dependency_unavailable", message=f"waiting: DISCOVERY needs {url}, which does not answer"
    )
    dependencies.up[url] = True
    assert waiting_reason(discovery, agents, dependencies) is None
