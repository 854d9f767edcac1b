"""ResultRepository and AuditRepository on the real server: every delivery is on record, once per result id."""

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.database import DatabaseManager, Repositories
from shared.database.result_repository import RecordedOutcome
from shared.models import AgentCapability, AgentLog, LogLevel, ResultStatus, Task, TaskType, TokenUsage, ToolCall
from tests.factories import build_planned_task, build_result, build_subtask, build_task


async def stored_task(db: DatabaseManager, subtasks: int = 1) -> Task:
    return await db.repositories().tasks.create_task(build_task(subtasks=subtasks))


# --- Results --------------------------------------------------------------------------------------------------------


async def test_saved_result_reads_back_unchanged(db: DatabaseManager) -> None:
    task = await stored_task(db)
    result = build_result(
        task.subtasks[0],
        attempt=2,
        token_usage=TokenUsage(input_tokens=1200, output_tokens=340, cache_read_input_tokens=5),
        cost_usd=0.0123,
        num_turns=4,
        role_config_hash="sha256:abc",
        simulated=True,
        retryable=True,
    )
    repos = db.repositories()

    assert await repos.results.save_subtask_result(result, applied=True) is True
    assert await repos.results.get_subtask_results(task.id) == [result]


async def test_result_for_an_unknown_subtask_is_refused(db: DatabaseManager) -> None:
    task = await stored_task(db)
    stray = build_result(build_subtask(task.id, id="subtask_unknown"))
    repos = db.repositories()

    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await repos.results.save_subtask_result(stray, applied=False)

    assert await repos.results.get_subtask_results(task.id) == []


async def test_the_same_result_twice_is_stored_once(db: DatabaseManager) -> None:
    task = await stored_task(db)
    result = build_result(task.subtasks[0])
    redelivered = result.model_copy(update={"output": "a different body under the same id"})
    repos = db.repositories()

    assert await repos.results.save_subtask_result(result, applied=True) is True
    assert await repos.results.save_subtask_result(redelivered, applied=True) is False

    assert await repos.results.get_subtask_results(task.id) == [result]


async def test_applied_only_leaves_out_late_and_duplicate_results(db: DatabaseManager) -> None:
    task = await stored_task(db)
    subtask = task.subtasks[0]
    late = build_result(subtask, attempt=1, created_at=datetime.now(UTC) - timedelta(seconds=5))
    counted = build_result(subtask, attempt=2)
    repos = db.repositories()
    await repos.results.save_subtask_result(late, applied=False)
    await repos.results.save_subtask_result(counted, applied=True)

    assert await repos.results.get_subtask_results(task.id) == [late, counted]  # oldest first
    assert await repos.results.get_subtask_results(task.id, applied_only=True) == [counted]


async def test_recent_outcomes_are_the_last_few_applied_results_per_agent_and_kind_of_work_oldest_first(
    db: DatabaseManager,
) -> None:
    repos = db.repositories()
    research = build_task(subtasks=3, task_type=TaskType.RESEARCH)
    for subtask in research.subtasks:
        subtask.task_type = TaskType.RESEARCH
    general = build_task(subtasks=1)
    await repos.tasks.create_task(research)
    await repos.tasks.create_task(general)
    start = datetime.now(UTC) - timedelta(minutes=10)
    first, second, third = research.subtasks
    saved = [
        (build_result(first, agent_id="agent1", execution_time=1.0, created_at=start), True),
        (
            build_result(
                second, agent_id="agent1", status=ResultStatus.FAILED, created_at=start + timedelta(minutes=1)
            ),
            True,
        ),
        (build_result(third, agent_id="agent1", execution_time=3.0, created_at=start + timedelta(minutes=2)), True),
        (build_result(third, agent_id="agent1", attempt=2, created_at=start + timedelta(minutes=3)), False),  # late
        (build_result(general.subtasks[0], agent_id="agent5", execution_time=2.0, created_at=start), True),
    ]
    await repos.results.save_subtask_results([(result, applied, None) for result, applied in saved])
    # Another tenant's record is none of this orchestrator's business.
    other_tenant = Repositories(db.pool, "other")
    stranger = build_task(subtasks=1)
    await other_tenant.tasks.create_task(stranger)
    await other_tenant.results.save_subtask_result(build_result(stranger.subtasks[0], agent_id="agent9"), applied=True)

    def outcome(agent_id: str, task_type: TaskType, status: ResultStatus, seconds: float) -> RecordedOutcome:
        return RecordedOutcome(
            agent_id=agent_id,
            task_type=task_type,
            required_capabilities=[AgentCapability.DATA_ANALYSIS],
            status=status,
            execution_time=seconds,
        )

    recent = await repos.results.recent_outcomes(per_kind=2)

    assert sorted(recent, key=lambda item: item.agent_id) == [
        outcome("agent1", TaskType.RESEARCH, ResultStatus.FAILED, 0.25),
        outcome("agent1", TaskType.RESEARCH, ResultStatus.COMPLETED, 3.0),
        outcome("agent5", TaskType.GENERAL, ResultStatus.COMPLETED, 2.0),
    ]
    assert [item.execution_time for item in recent if item.agent_id == "agent1"] == [0.25, 3.0]  # oldest first


async def test_a_delivery_carries_the_counted_completions_of_its_dependencies(db: DatabaseManager) -> None:
    repos = db.repositories()
    plan = {"done": [], "failed": [], "late": [], "unrelated": [], "next": ["done", "failed", "late"]}
    task = await repos.tasks.create_task(build_planned_task(plan))
    done, failed, late, unrelated, following = task.subtasks
    for result, applied in [
        (build_result(done, output="rows: 42"), True),
        (build_result(failed, status=ResultStatus.FAILED), True),
        (build_result(late, output="too late"), False),
        (build_result(unrelated, output="unrelated"), True),
    ]:
        await repos.results.save_subtask_result(result, applied=applied)
    # Queued by hand: only the outputs a delivery carries are under test here, not when it may start.
    await db.pool.execute("UPDATE subtasks SET status = 'queued', attempt_count = 1 WHERE id = $1", following.id)

    [claimed] = await repos.subtasks.claim_for_delivery([(following.id, 1, "agent1")])

    assert claimed.dependency_outputs == {done.id: "rows: 42"}


# --- Agent logs -----------------------------------------------------------------------------------------------------

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


async def log_at(
    db: DatabaseManager, when: datetime, agent_id: str, task_id: str | None, level: LogLevel = LogLevel.INFO
) -> AgentLog:
    """Log through the repository, then date the entry (the table stamps it with now())."""
    entry = await db.repositories().audit.log_agent_activity(agent_id, task_id, level, f"{agent_id} at {when:%H:%M}")
    await db.pool.execute("UPDATE agent_logs SET created_at = $2 WHERE id = $1", entry.id, when)
    return entry.model_copy(update={"created_at": when})


async def store_logs(db: DatabaseManager) -> list[AgentLog]:
    """Five entries an hour apart from 10:00 to 14:00, returned newest first."""
    entries = [
        await log_at(db, NOON - timedelta(hours=2), "agent1", "task_1"),
        await log_at(db, NOON - timedelta(hours=1), "agent2", "task_1", LogLevel.ERROR),
        await log_at(db, NOON, "agent1", "task_2", LogLevel.WARNING),
        await log_at(db, NOON + timedelta(hours=1), "agent2", None),
        await log_at(db, NOON + timedelta(hours=2), "agent1", "task_1", LogLevel.ERROR),
    ]
    return entries[::-1]


async def test_logged_activity_is_returned_with_its_id(db: DatabaseManager) -> None:
    repos = db.repositories()

    entry = await repos.audit.log_agent_activity(
        "agent1", "task_1", LogLevel.WARNING, "retrying", {"attempt": 2, "tags": ["a"]}, subtask_id="subtask_1"
    )

    assert entry.id is not None
    assert (entry.agent_id, entry.task_id, entry.subtask_id, entry.level) == (
        "agent1",
        "task_1",
        "subtask_1",
        LogLevel.WARNING,
    )
    assert (entry.message, entry.metadata) == ("retrying", {"attempt": 2, "tags": ["a"]})
    assert await repos.audit.list_agent_logs() == [entry]


async def test_a_batch_of_log_entries_keeps_their_own_times_and_goes_in_whole_or_not_at_all(
    db: DatabaseManager,
) -> None:
    repos = db.repositories()
    started = AgentLog(
        agent_id="agent3",
        task_id="task_9",
        subtask_id="task_9_a",
        message="subtask started",
        created_at=NOON,
        metadata={"attempt": 1},
    )
    finished = AgentLog(
        agent_id="agent3",
        task_id="task_9",
        subtask_id="task_9_a",
        level=LogLevel.ERROR,
        message="subtask failed",
        created_at=NOON + timedelta(seconds=2),
        metadata={"error": "boom"},
    )

    await repos.audit.log_agent_activities([started, finished])
    unstorable = AgentLog(agent_id="agent3", message="NUL \x00 has no place in PostgreSQL text")
    with pytest.raises(asyncpg.PostgresError):  # nothing of a batch with one bad entry stays
        await repos.audit.log_agent_activities([started, unstorable])

    stored = await repos.audit.list_agent_logs(agent_id="agent3")
    assert [entry.model_copy(update={"id": None}) for entry in stored] == [finished, started]  # newest first


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [0, 1, 2, 3, 4]),
        ({"agent_id": "agent1"}, [0, 2, 4]),
        ({"task_id": "task_1"}, [0, 3, 4]),
        ({"level": LogLevel.ERROR}, [0, 3]),
        ({"since": NOON}, [0, 1, 2]),
        ({"until": NOON}, [2, 3, 4]),
        ({"since": NOON - timedelta(hours=1), "until": NOON + timedelta(hours=1)}, [1, 2, 3]),
        ({"agent_id": "agent2", "level": LogLevel.ERROR}, [3]),
        ({"limit": 2}, [0, 1]),
        ({"agent_id": "agent1", "limit": 1}, [0]),
        ({"agent_id": "agent9"}, []),
    ],
    ids=[
        "all",
        "agent",
        "task",
        "level",
        "since",
        "until",
        "between",
        "agent-and-level",
        "limit",
        "agent-and-limit",
        "unknown-agent",
    ],
)
async def test_agent_logs_filter_newest_first(
    db: DatabaseManager, filters: dict[str, object], expected: list[int]
) -> None:
    newest_first = await store_logs(db)

    listed = await db.repositories().audit.list_agent_logs(**filters)

    assert listed == [newest_first[index] for index in expected]


# --- Tool calls -----------------------------------------------------------------------------------------------------


async def record(repos: Repositories, task_id: str, tool_name: str, **fields: object) -> ToolCall:
    return await repos.audit.record_tool_call(
        ToolCall(agent_id="agent1", task_id=task_id, tool_name=tool_name, **fields)
    )


async def test_recorded_tool_call_reads_back_with_its_id(db: DatabaseManager) -> None:
    repos = db.repositories()
    call = ToolCall(
        agent_id="agent2",
        task_id="task_1",
        subtask_id="subtask_1",
        attempt=2,
        tool_name="database_query",
        arguments={"sql": "SELECT 1", "limit": 10},
        is_error=True,
        outcome="permission denied",
        duration_ms=3.5,
    )

    recorded = await repos.audit.record_tool_call(call)

    assert recorded.id is not None
    assert recorded == call.model_copy(update={"id": recorded.id})
    assert await repos.audit.list_tool_calls("task_1") == [recorded]


async def test_tool_calls_are_listed_per_task_in_order(db: DatabaseManager) -> None:
    repos = db.repositories()
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    second = await record(repos, "task_1", "write_file")
    await record(repos, "task_2", "read_file")
    first = await record(repos, "task_1", "read_file", created_at=earlier)
    third = await record(repos, "task_1", "get_shared_state", created_at=second.created_at)  # same time: by id

    assert await repos.audit.list_tool_calls("task_1") == [first, second, third]
    assert await repos.audit.list_tool_calls("task_3") == []
