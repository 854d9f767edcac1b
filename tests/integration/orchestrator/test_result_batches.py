"""A batch of results applied in one transaction ends exactly where applying them one by one would.

The task lifecycle runs here without any loop, on the real PostgreSQL and Redis: each test stores tasks, claims
their attempts as the dispatcher would, and hands the lifecycle a batch the way the result queue delivers it.
"""

from collections.abc import Sequence

from orchestrator.lifecycle import TaskLifecycle
from orchestrator.result_rules import split_fast_path
from shared.database import DatabaseManager, Repositories
from shared.models import QueuedSubtask, ReportedResult, ResultStatus, SubTaskStatus, Task, TaskStatus
from shared.redis_manager import RedisManager
from tests.factories import build_planned_task, build_result, current_result, run_attempt, subtask_id

COMPLETED, FAILED = ResultStatus.COMPLETED, ResultStatus.FAILED


async def store_running(db: DatabaseManager, plan: dict[str, list[str]], *running: str) -> Task:
    """Store a task with this plan, queue what is ready and claim the named subtasks on agent1."""
    repos = db.repositories()
    task = await repos.tasks.create_task(build_planned_task(plan))
    await repos.subtasks.queue_ready(task.id)
    for name in running:
        await run_attempt(repos, subtask_id(task, name))
    return task


async def states(repos: Repositories, task: Task) -> dict[str, tuple[SubTaskStatus, int]]:
    return {
        subtask.id.removeprefix(f"{task.id}_"): (subtask.status, subtask.attempt_count)
        for subtask in await repos.subtasks.list_for_task(task.id)
    }


async def applied_flags(repos: Repositories, task: Task) -> list[tuple[str, bool]]:
    rows = await repos.results.get_subtask_results(task.id)
    applied = {result.result_id for result in await repos.results.get_subtask_results(task.id, applied_only=True)}
    return sorted((row.subtask_id.removeprefix(f"{task.id}_"), row.result_id in applied) for row in rows)


def queued_names(task: Task, items: Sequence[QueuedSubtask]) -> list[str]:
    return sorted(item.subtask_id.removeprefix(f"{task.id}_") for item in items if item.task_id == task.id)


def test_only_lone_completions_take_the_fast_path() -> None:
    task = build_planned_task({"a": [], "b": [], "c": []})
    a, b, c = task.subtasks
    batch = [
        build_result(a),
        build_result(b, status=FAILED),
        build_result(c),
        build_result(c, agent_id="agent2"),
    ]

    assert split_fast_path(batch) == ([0], [1, 2, 3])


async def test_a_batch_across_tasks_completes_queues_retries_and_finishes(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    chain = await store_running(db, {"a": [], "b": ["a"]}, "a")
    single = await store_running(db, {"x": []}, "x")
    flaky = await store_running(db, {"y": [], "z": []}, "y", "z")
    batch = [
        await current_result(repos, chain, "a"),
        await current_result(repos, single, "x"),
        await current_result(repos, flaky, "y", status=FAILED, retryable=True),
        await current_result(repos, flaky, "z"),
    ]

    outcome = await lifecycle.apply_results(batch)

    assert await states(repos, chain) == {"a": (SubTaskStatus.COMPLETED, 1), "b": (SubTaskStatus.QUEUED, 1)}
    assert await states(repos, flaky) == {"y": (SubTaskStatus.QUEUED, 2), "z": (SubTaskStatus.COMPLETED, 1)}
    assert outcome.finished == {single.id: TaskStatus.COMPLETED}
    assert len(outcome.applied) == 4
    # What became ready is on the task queue, ready for the dispatcher.
    waiting = [QueuedSubtask.model_validate_json(item) for item in await test_redis.task_queue.waiting_and_inflight()]
    assert queued_names(chain, waiting) == ["b"]
    assert queued_names(flaky, waiting) == ["y"]
    assert [item.attempt for item in waiting if item.task_id == flaky.id] == [2]


async def test_a_result_delivered_twice_in_one_batch_applies_once(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    repos = db.repositories()
    task = await store_running(db, {"a": [], "b": ["a"]}, "a")
    result = await current_result(repos, task, "a")
    redelivered = ReportedResult.model_validate_json(result.model_dump_json())

    outcome = await lifecycle.apply_results([result, redelivered])

    assert [applied.result_id for applied in outcome.applied] == [result.result_id]
    assert await states(repos, task) == {"a": (SubTaskStatus.COMPLETED, 1), "b": (SubTaskStatus.QUEUED, 1)}
    assert await applied_flags(repos, task) == [("a", True)]  # one row: the redelivery is the same result


async def test_of_two_results_for_one_attempt_in_a_batch_the_first_wins(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    repos = db.repositories()
    task = await store_running(db, {"a": [], "b": ["a"]}, "a")
    failure = await current_result(repos, task, "a", status=FAILED, retryable=False)
    late_success = await current_result(repos, task, "a", agent_id="agent2")

    outcome = await lifecycle.apply_results([failure, late_success])

    assert outcome.finished == {task.id: TaskStatus.FAILED}
    assert await states(repos, task) == {"a": (SubTaskStatus.FAILED, 1), "b": (SubTaskStatus.BLOCKED, 0)}
    assert await applied_flags(repos, task) == [("a", False), ("a", True)]


async def test_stale_results_and_unknown_tasks_change_nothing(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store_running(db, {"a": []}, "a")
    stale = await current_result(repos, task, "a", attempt=7)
    orphan = build_result(build_planned_task({"ghost": []}).subtasks[0])

    outcome = await lifecycle.apply_results([stale, orphan])

    assert outcome.applied == [] and outcome.queued == [] and outcome.finished == {}
    assert await states(repos, task) == {"a": (SubTaskStatus.RUNNING, 1)}
    assert await applied_flags(repos, task) == [("a", False)]  # on record, not applied
