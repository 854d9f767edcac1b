"""TaskRepository on the real server: tasks read back as stored, move only forward, list newest first."""

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from shared.database import DatabaseManager, Repositories
from shared.database.subtask_repository import ClaimedAttempt
from shared.database.task_repository import StatusChange
from shared.database.task_search import TaskSearch
from shared.models import DecompositionInfo, ResultStatus, SubTaskStatus, Task, TaskStatus, TaskType, TokenUsage
from tests.factories import build_planned_task, build_result, build_subtask, build_task, run_attempt

AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
IN_AN_HOUR = datetime.now(UTC) + timedelta(hours=1)


async def test_pool_has_the_configured_sizes(db: DatabaseManager) -> None:
    assert (db.pool.get_min_size(), db.pool.get_max_size()) == (2, 20)


async def test_created_task_reads_back_as_it_was_stored(db: DatabaseManager) -> None:
    task = build_task(
        subtasks=0,
        user_id="alice",
        task_type=TaskType.DISCOVERY,
        result={"summary": "up 3%", "rows": [1, 2]},
        decomposition=DecompositionInfo(duration_ms=12.5, token_usage=TokenUsage(input_tokens=40)),
    )
    # Ids that sort differently from the plan, so only the stored position can give the plan order back.
    task.subtasks = [
        build_subtask(task.id, id=f"{task.id}_{name}", priority=priority, task_type=task_type)
        for name, priority, task_type in [("c", 1, TaskType.DISCOVERY), ("a", 9, TaskType.INGEST), ("b", 5, "general")]
    ]
    task.subtasks[2].dependencies = [task.subtasks[0].id]
    repos = db.repositories()

    assert await repos.tasks.create_task(task) == task
    assert await repos.tasks.get_task(task.id) == task


@pytest.mark.parametrize("table", ["tasks", "subtasks"])
async def test_the_database_refuses_a_task_type_that_is_not_one(db: DatabaseManager, table: str) -> None:
    task = await db.repositories().tasks.create_task(build_task())
    row_id = task.id if table == "tasks" else task.subtasks[0].id

    with pytest.raises(asyncpg.CheckViolationError):
        await db.pool.execute(f"UPDATE {table} SET task_type = 'shopping' WHERE id = $1", row_id)


async def test_task_detail_in_one_round_trip_reads_the_same_as_its_parts(db: DatabaseManager) -> None:
    task = build_task(
        subtasks=0,
        result={"summary": "done", "outputs": {"b": [1, 2]}},
        decomposition=DecompositionInfo(duration_ms=3.5, repaired=True, token_usage=TokenUsage(output_tokens=7)),
    )
    task.subtasks = [build_subtask(task.id, id=f"{task.id}_{name}") for name in ("z", "a")]  # plan order, not id order
    repos = db.repositories()
    await repos.tasks.create_task(task)
    await repos.subtasks.queue_ready(task.id)
    running = await run_attempt(repos, task.subtasks[0].id)
    for result, applied in [
        (build_result(running, output="ünïcode ✓", token_usage=TokenUsage(input_tokens=5), cost_usd=0.25), True),
        (build_result(running, agent_id="agent2", status=ResultStatus.FAILED, retryable=True), False),
    ]:
        await repos.results.save_subtask_result(result, applied=applied)

    detail = await repos.tasks.get_task_detail(task.id)

    stored = await repos.tasks.get_task(task.id)
    assert detail == (stored, await repos.results.get_subtask_results(task.id))
    counted = await repos.results.get_subtask_results(task.id, applied_only=True)
    assert await repos.tasks.get_task_detail(task.id, applied_only=True) == (stored, counted) and len(counted) == 1
    assert detail is not None and [subtask.id for subtask in detail[0].subtasks] == [s.id for s in task.subtasks]
    assert await repos.tasks.get_task_detail("task_missing") is None


async def test_a_stored_plan_queues_what_can_start_through_the_ready_rule(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = build_planned_task({"collect": [], "chart": ["collect"], "fetch": []}, result=None)
    task.subtasks[2].priority = 9

    async with db.transaction() as tx:
        await tx.tasks.create_task(task)
        queued = await tx.subtasks.queue_ready(task.id)

    assert [subtask.id for subtask in queued] == [task.subtasks[2].id, task.subtasks[0].id]  # by priority
    stored = await repos.tasks.get_task(task.id)
    assert stored is not None and stored.model_copy(update={"subtasks": []}) == task.model_copy(update={"subtasks": []})
    assert [(s.id, s.status, s.attempt_count) for s in stored.subtasks] == [
        (task.subtasks[0].id, SubTaskStatus.QUEUED, 1),
        (task.subtasks[1].id, SubTaskStatus.PENDING, 0),
        (task.subtasks[2].id, SubTaskStatus.QUEUED, 1),
    ]
    assert queued == [stored.subtasks[2], stored.subtasks[0]]
    assert {item.subtask_id for item in await repos.subtasks.list_queued()} == {s.id for s in queued}


async def test_longest_description_is_counted_in_characters(db: DatabaseManager) -> None:
    task = build_task(description="é" * 5000)  # 10,000 bytes in UTF-8

    await db.repositories().tasks.create_task(task)

    stored = await db.repositories().tasks.get_task(task.id)
    assert stored is not None and stored.description == "é" * 5000


async def test_unknown_task_is_none(db: DatabaseManager) -> None:
    assert await db.repositories().tasks.get_task("task_missing") is None


async def test_create_task_stores_all_or_nothing(db: DatabaseManager) -> None:
    repos = db.repositories()
    first = await repos.tasks.create_task(build_task())
    second = build_task(subtasks=2)
    second.subtasks[1].id = first.subtasks[0].id  # the second subtask's insert fails

    with pytest.raises(asyncpg.UniqueViolationError):
        await repos.tasks.create_task(second)

    assert await repos.tasks.get_task(second.id) is None
    assert await repos.subtasks.get_subtask(second.subtasks[0].id) is None


# --- Status ---------------------------------------------------------------------------------------------------------


async def test_status_update_moves_updated_at_forward(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await repos.tasks.create_task(build_task(created_at=AN_HOUR_AGO, updated_at=AN_HOUR_AGO))

    updated = await repos.tasks.update_task_status(task.id, TaskStatus.IN_PROGRESS)

    assert updated is not None
    assert updated.status is TaskStatus.IN_PROGRESS
    assert updated.updated_at > AN_HOUR_AGO
    assert updated.created_at == AN_HOUR_AGO
    assert await repos.tasks.get_task(task.id) == updated.model_copy(update={"subtasks": task.subtasks})


async def test_status_update_never_moves_updated_at_back(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await repos.tasks.create_task(build_task(created_at=IN_AN_HOUR, updated_at=IN_AN_HOUR))

    updated = await repos.tasks.update_task_status(task.id, TaskStatus.IN_PROGRESS)

    assert updated is not None and updated.updated_at == IN_AN_HOUR


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(TaskStatus.COMPLETED, {"result": {"answer": 42}}), (TaskStatus.FAILED, {"error": "subtask_2 failed"})],
)
async def test_final_status_stores_the_outcome(
    db: DatabaseManager, status: TaskStatus, outcome: dict[str, Any]
) -> None:
    repos = db.repositories()
    task = await repos.tasks.create_task(build_task())

    await repos.tasks.update_task_status(task.id, status, **outcome)

    stored = await repos.tasks.get_task(task.id)
    assert stored is not None
    assert {"status": stored.status, **{name: getattr(stored, name) for name in outcome}} == {
        "status": status,
        **outcome,
    }


@pytest.mark.parametrize("final", [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED])
@pytest.mark.parametrize(
    "target", [TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.COMPLETED, TaskStatus.FAILED]
)
async def test_a_finished_task_keeps_its_status(db: DatabaseManager, final: TaskStatus, target: TaskStatus) -> None:
    repos = db.repositories()
    task = await repos.tasks.create_task(build_task(status=final, updated_at=AN_HOUR_AGO, created_at=AN_HOUR_AGO))

    assert await repos.tasks.update_task_status(task.id, target, error="too late") is None

    stored = await repos.tasks.get_task(task.id)
    assert stored is not None
    assert (stored.status, stored.error, stored.updated_at) == (final, None, AN_HOUR_AGO)


async def test_status_update_of_unknown_task_is_none(db: DatabaseManager) -> None:
    assert await db.repositories().tasks.update_task_status("task_missing", TaskStatus.FAILED) is None


async def test_several_tasks_end_in_one_statement_except_those_that_already_ended(db: DatabaseManager) -> None:
    repos = db.repositories()
    done, broken, ended = [await repos.tasks.create_task(build_task()) for _ in range(3)]
    await repos.tasks.update_task_status(ended.id, TaskStatus.CANCELLED)

    moved = await repos.tasks.update_task_statuses(
        [
            StatusChange(done.id, TaskStatus.COMPLETED, result={"summary": "ünïcode ✓", "outputs": [1, None]}),
            StatusChange(broken.id, TaskStatus.FAILED, error="subtask_2 failed"),
            StatusChange(ended.id, TaskStatus.FAILED, error="too late"),
            StatusChange("task_missing", TaskStatus.FAILED, error="nobody"),
        ]
    )

    assert set(moved) == {done.id, broken.id}
    stored = await repos.tasks.get_task_details([done.id, broken.id, ended.id, "task_missing"])
    assert set(stored) == {done.id, broken.id, ended.id}
    outcomes = {task_id: (task.status, task.result, task.error) for task_id, (task, _) in stored.items()}
    assert outcomes == {
        done.id: (TaskStatus.COMPLETED, {"summary": "ünïcode ✓", "outputs": [1, None]}, None),
        broken.id: (TaskStatus.FAILED, None, "subtask_2 failed"),
        ended.id: (TaskStatus.CANCELLED, None, None),
    }
    assert moved[done.id] == stored[done.id][0].model_copy(update={"subtasks": []})


async def claim_first(db: DatabaseManager, task: Task) -> list[ClaimedAttempt]:
    repos = db.repositories()
    await repos.subtasks.queue_ready(task.id)
    return await repos.subtasks.claim_for_delivery([(task.subtasks[0].id, 1, "agent1")])


async def test_a_delivery_claim_moves_a_pending_task_to_in_progress(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await repos.tasks.create_task(build_task(description="Count the rows of every table"))

    [claimed] = await claim_first(db, task)

    assert (claimed.subtask.status, claimed.subtask.assigned_agent) == (SubTaskStatus.RUNNING, "agent1")
    assert (claimed.task_description, claimed.dependency_outputs) == ("Count the rows of every table", {})
    assert await repos.tasks.lock_task(task.id) is TaskStatus.IN_PROGRESS


async def test_a_delivery_claim_leaves_a_finished_task_alone(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await repos.tasks.create_task(build_task(status=TaskStatus.CANCELLED))

    await claim_first(db, task)

    assert await repos.tasks.lock_task(task.id) is TaskStatus.CANCELLED


async def test_a_delivery_claim_of_what_is_not_queued_is_empty(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await repos.tasks.create_task(build_task())

    assert await repos.subtasks.claim_for_delivery([(task.subtasks[0].id, 1, "agent1")]) == []  # still pending
    assert await repos.subtasks.claim_for_delivery([("task_missing_a", 1, "agent1")]) == []
    assert await repos.tasks.lock_task(task.id) is TaskStatus.PENDING


async def test_lock_task_of_unknown_task_is_none(db: DatabaseManager) -> None:
    async with db.transaction() as repos:
        assert await repos.tasks.lock_task("task_missing") is None


# --- Listing --------------------------------------------------------------------------------------------------------


async def store_listing(db: DatabaseManager) -> list[Task]:
    """Five tasks for two users, created a minute apart, stored oldest first; returned newest first."""
    specs = [
        ("alice", TaskStatus.COMPLETED),
        ("bob", TaskStatus.FAILED),
        ("alice", TaskStatus.PENDING),
        ("bob", TaskStatus.COMPLETED),
        ("alice", TaskStatus.COMPLETED),
    ]
    tasks = []
    for minutes_ago, (user_id, status) in reversed(list(enumerate(specs))):
        created_at = AN_HOUR_AGO - timedelta(minutes=minutes_ago)
        task = build_task(user_id=user_id, status=status, created_at=created_at, updated_at=created_at)
        tasks.append(await db.repositories().tasks.create_task(task))
    return tasks[::-1]


def ids(items: list[Any]) -> list[str]:
    return [item.id for item in items]


async def test_list_is_newest_first(db: DatabaseManager) -> None:
    newest_first = await store_listing(db)

    assert ids(await db.repositories().tasks.list_tasks()) == ids(newest_first)


@pytest.mark.parametrize(
    "filters",
    [
        {"status": TaskStatus.COMPLETED},
        {"status": TaskStatus.FAILED},
        {"status": TaskStatus.CANCELLED},
        {"user_id": "alice"},
        {"user_id": "carol"},
        {"status": TaskStatus.COMPLETED, "user_id": "bob"},
    ],
    ids=lambda filters: "-".join(str(value) for value in filters.values()),
)
async def test_list_and_count_filter_by_status_and_user(db: DatabaseManager, filters: dict[str, Any]) -> None:
    newest_first = await store_listing(db)
    expected = [task for task in newest_first if all(getattr(task, name) == value for name, value in filters.items())]
    repos = db.repositories()

    assert ids(await repos.tasks.list_tasks(TaskSearch(**filters))) == ids(expected)
    assert await repos.tasks.count_tasks(TaskSearch(**filters)) == len(expected)


async def test_list_paginates(db: DatabaseManager) -> None:
    newest_first = await store_listing(db)
    repos = db.repositories()

    pages = [await repos.tasks.list_tasks(limit=2, offset=offset) for offset in (0, 2, 4, 6)]

    assert [ids(page) for page in pages] == [ids(newest_first[0:2]), ids(newest_first[2:4]), ids(newest_first[4:]), []]
    assert await repos.tasks.count_tasks() == 5


async def test_list_counts_subtasks_done_and_total(db: DatabaseManager) -> None:
    repos = db.repositories()
    planned = await repos.tasks.create_task(build_task(subtasks=3, created_at=AN_HOUR_AGO, updated_at=AN_HOUR_AGO))
    unplanned = await repos.tasks.create_task(build_task(subtasks=0))
    await repos.subtasks.queue_ready(planned.id)
    await run_attempt(repos, planned.subtasks[0].id, finish=SubTaskStatus.COMPLETED)
    await run_attempt(repos, planned.subtasks[1].id, finish=SubTaskStatus.FAILED)

    listed = await repos.tasks.list_tasks()

    progress = [(summary.id, summary.subtasks_completed, summary.subtasks_total) for summary in listed]
    assert progress == [(unplanned.id, 0, 0), (planned.id, 1, 3)]


# --- Constraints ----------------------------------------------------------------------------------------------------


def valid_rows(task: Task) -> dict[str, dict[str, Any]]:
    """One valid row per table, written by hand: each invalid case changes one or two columns of it."""
    return {
        "tasks": {"id": "task_raw", "description": "A valid description"},
        "subtasks": {
            "id": "subtask_raw",
            "task_id": task.id,
            "position": 1,
            "description": "Step",
            "required_capabilities": ["DATA_ANALYSIS"],
        },
        "subtask_results": {
            "result_id": "result_raw",
            "subtask_id": task.subtasks[0].id,
            "task_id": task.id,
            "agent_id": "agent1",
            "attempt": 1,
            "status": "completed",
            "output": "done",
            "execution_time": 0.5,
        },
    }


async def insert_raw(db: DatabaseManager, table: str, row: dict[str, Any]) -> None:
    placeholders = ", ".join(f"${number}" for number in range(1, len(row) + 1))
    await db.pool.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({placeholders})", *row.values())


async def count_rows(db: DatabaseManager, table: str) -> int:
    count: int = await db.pool.fetchval(f"SELECT count(*) FROM {table}")
    return count


@pytest.mark.parametrize("table", ["tasks", "subtasks", "subtask_results"])
async def test_hand_written_valid_row_is_stored(db: DatabaseManager, table: str) -> None:
    task = await db.repositories().tasks.create_task(build_task())
    before = await count_rows(db, table)

    await insert_raw(db, table, valid_rows(task)[table])

    assert await count_rows(db, table) == before + 1


@pytest.mark.parametrize(
    ("table", "change"),
    [
        ("tasks", {"description": "short"}),
        ("tasks", {"description": "x" * 5001}),
        ("tasks", {"status": "done"}),
        ("tasks", {"created_at": IN_AN_HOUR, "updated_at": AN_HOUR_AGO}),
        ("subtasks", {"priority": 11}),
        ("subtasks", {"priority": -1}),
        ("subtasks", {"required_capabilities": []}),
        ("subtasks", {"dependencies": ["subtask_raw"]}),
        ("subtasks", {"status": "paused"}),
        ("subtasks", {"attempt_count": -1}),
        ("subtask_results", {"output": None}),
        ("subtask_results", {"output": ""}),
        ("subtask_results", {"status": "failed", "error": None}),
        ("subtask_results", {"execution_time": 0.0}),
        ("subtask_results", {"attempt": 0}),
        ("subtask_results", {"cost_usd": -0.01}),
    ],
    ids=[
        "task-description-5-chars",
        "task-description-5001-chars",
        "task-unknown-status",
        "task-created-after-updated",
        "subtask-priority-11",
        "subtask-priority-minus-1",
        "subtask-no-capability",
        "subtask-depends-on-itself",
        "subtask-unknown-status",
        "subtask-negative-attempts",
        "completed-result-without-output",
        "completed-result-with-empty-output",
        "failed-result-without-error",
        "result-zero-execution-time",
        "result-attempt-0",
        "result-negative-cost",
    ],
)
async def test_invalid_row_never_reaches_the_table(db: DatabaseManager, table: str, change: dict[str, Any]) -> None:
    task = await db.repositories().tasks.create_task(build_task())
    before = await count_rows(db, table)

    with pytest.raises(asyncpg.CheckViolationError):
        await insert_raw(db, table, valid_rows(task)[table] | change)

    assert await count_rows(db, table) == before


async def test_each_tenant_lists_and_recovers_only_its_own_tasks(db: DatabaseManager) -> None:
    ours, theirs = db.repositories(), Repositories(db.pool, "tenant-b")
    ours_task = build_planned_task({"fetch": [], "report": ["fetch"]}, result=None)
    theirs_task = build_planned_task({"fetch": [], "chart": []}, result=None)
    for repos, task in [(ours, ours_task), (theirs, theirs_task)]:
        await repos.tasks.create_task(task)
        await repos.subtasks.queue_ready(task.id)
    await run_attempt(theirs, theirs_task.subtasks[1].id)  # one of theirs is running

    for repos, task, queued, running in [
        (ours, ours_task, [ours_task.subtasks[0].id], []),
        (theirs, theirs_task, [theirs_task.subtasks[0].id], [theirs_task.subtasks[1].id]),
    ]:
        assert ids(await repos.tasks.list_tasks()) == [task.id]
        assert await repos.tasks.count_tasks() == 1
        assert [item.subtask_id for item in await repos.subtasks.list_queued()] == queued
        assert await repos.subtasks.count_queued() == len(queued)
        assert ids(await repos.subtasks.list_running()) == running
    # By id, another tenant's task is not there at all: reads, details and locks find nothing.
    assert await ours.tasks.get_task(theirs_task.id) is None
    assert await ours.tasks.get_task_detail(theirs_task.id) is None
    assert await ours.tasks.lock_tasks([theirs_task.id, ours_task.id]) == {ours_task.id: TaskStatus.PENDING}
    assert not await ours.tasks.task_exists(theirs_task.id) and await theirs.tasks.task_exists(theirs_task.id)
