"""An operator's retry of a failed task or subtask, on the real PostgreSQL and Redis (no HTTP, no sleeps): fresh
attempts with MAX_RETRIES counted afresh, the subtasks only those failures blocked waiting again, the task in
progress again; of racing retries, or a retry and a cancel, one goes first and the other sees what it did. And why a
subtask is where it is: the error of its latest failed attempt, what blocks it, no agent named while it waits."""

import asyncio

import pytest

from orchestrator.lifecycle import TaskLifecycle
from orchestrator.recovery import RecoveryService
from shared.config import Settings
from shared.database import DatabaseManager
from shared.errors import ConflictError, NotFoundError
from shared.models import ResultStatus, SubTask, SubTaskStatus, Task, TaskStatus
from shared.redis import EventType
from shared.redis_manager import RedisManager
from tests.events_contract import contract_problems, kinds, task_stream
from tests.factories import build_planned_task, build_result, subtask_id

FAILED = ResultStatus.FAILED
PENDING, QUEUED, BLOCKED = SubTaskStatus.PENDING, SubTaskStatus.QUEUED, SubTaskStatus.BLOCKED


async def stored(lifecycle: TaskLifecycle, plan: dict[str, list[str]]) -> Task:
    task = build_planned_task(plan)
    await lifecycle.submit(task)
    return task


async def current(db: DatabaseManager, task: Task, name: str) -> SubTask:
    subtask = await db.repositories().subtasks.get_subtask(subtask_id(task, name))
    assert subtask is not None
    return subtask


async def run(lifecycle: TaskLifecycle, db: DatabaseManager, task: Task, name: str, **result: object) -> SubTask:
    """Offer the named subtask's queued attempt to agent1 and apply its result (completed unless `result` says)."""
    queued = await current(db, task, name)
    [claimed] = await lifecycle.claim([(queued.id, queued.attempt_count, "agent1")])
    outcome = await lifecycle.apply_results([build_result(claimed.subtask, attempt=queued.attempt_count, **result)])
    assert outcome.applied, outcome
    return await current(db, task, name)


async def fail_for_good(lifecycle: TaskLifecycle, db: DatabaseManager, task: Task, name: str) -> SubTask:
    return await run(lifecycle, db, task, name, status=FAILED, error=f"{name} broke for good")


async def states(db: DatabaseManager, task: Task) -> dict[str, tuple[SubTaskStatus, int]]:
    subtasks = await db.repositories().subtasks.list_for_task(task.id)
    return {s.id.removeprefix(f"{task.id}_"): (s.status, s.attempt_count) for s in subtasks}


async def stored_task(db: DatabaseManager, task: Task) -> Task:
    found = await db.repositories().tasks.get_task(task.id)
    assert found is not None
    return found


# --- a failed task --------------------------------------------------------------------------------------------------


async def test_a_retried_task_gets_fresh_attempts_its_blocked_subtasks_wait_again_and_it_can_complete(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await stored(lifecycle, {"a": [], "b": ["a"], "c": ["b"]})
    await fail_for_good(lifecycle, db, task, "a")
    failed = await stored_task(db, task)
    assert failed.status is TaskStatus.FAILED and failed.error
    assert {s.id: s.blocked_by for s in failed.subtasks if s.status is BLOCKED} == {
        subtask_id(task, "b"): [subtask_id(task, "a")],
        subtask_id(task, "c"): [subtask_id(task, "a")],  # through b, which is blocked, not failed
    }

    outcome = await lifecycle.retry(task.id)

    assert outcome.task.status is TaskStatus.IN_PROGRESS
    assert (outcome.task.result, outcome.task.error) == (None, None)
    assert [subtask.id for subtask in outcome.requeued] == [subtask_id(task, "a")]
    counted = lifecycle.metrics.registry.get_sample_value
    assert counted("fleet_subtask_failures_total", {"reason": "other"}) == 1
    assert counted("fleet_retries_total", {"reason": "operator"}) == 1
    assert await states(db, task) == {"a": (QUEUED, 2), "b": (PENDING, 0), "c": (PENDING, 0)}
    retried = await current(db, task, "a")
    assert (retried.attempt_base, retried.last_error, retried.assigned_agent) == (1, "a broke for good", None)
    assert (subtask_id(task, "a"), 2) in await test_redis.queued_task_items()

    for name in ("a", "b", "c"):
        await run(lifecycle, db, task, name)
    completed = await stored_task(db, task)
    assert completed.status is TaskStatus.COMPLETED and completed.error is None


async def test_a_retry_tells_the_task_s_stream_which_goes_on_after_the_failure(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await stored(lifecycle, {"a": [], "b": ["a"]})
    await fail_for_good(lifecycle, db, task, "a")
    stream_key = test_redis.events.task_key(task.id)
    assert await test_redis.client.ttl(stream_key) > 0  # the ending event set it to expire

    await lifecycle.retry(task.id)

    events = await task_stream(test_redis, task.id)
    assert all(contract_problems(event) == [] for event in events)
    shortened = [kind.replace(f"{task.id}_", "") for kind in kinds(events)]
    assert shortened[-4:] == ["TASK_FAILED", "TASK_RETRIED", "SUBTASK_RETRIED a", "SUBTASK_QUEUED a"]
    [retry] = [item.event.data for item in events if item.event.event_type is EventType.TASK_RETRIED]
    assert retry == {"subtask_ids": [subtask_id(task, "a")], "unblocked_subtask_ids": [subtask_id(task, "b")],
                     "reopened": True}  # fmt: skip
    assert await test_redis.client.ttl(stream_key) == -1  # it runs again: its stream no longer expires


async def test_an_operator_s_retry_starts_the_max_retries_budget_again(
    lifecycle: TaskLifecycle, db: DatabaseManager, orchestrator_settings: Settings
) -> None:
    budget = orchestrator_settings.max_retries
    task = await stored(lifecycle, {"a": []})
    for _ in range(budget):
        await run(lifecycle, db, task, "a", status=FAILED, retryable=True)
    assert await states(db, task) == {"a": (SubTaskStatus.FAILED, budget)}

    await lifecycle.retry(task.id)
    for attempt in range(budget + 1, 2 * budget):  # each but the last of the new budget is retried again
        after = await run(lifecycle, db, task, "a", status=FAILED, retryable=True)
        assert (after.status, after.attempt_count) == (QUEUED, attempt + 1)
    last = await run(lifecycle, db, task, "a", status=FAILED, retryable=True)

    assert (last.status, last.attempt_count, last.attempt_base) == (SubTaskStatus.FAILED, 2 * budget, budget)
    assert (await stored_task(db, task)).status is TaskStatus.FAILED


@pytest.mark.parametrize("ending", ["running", "completed", "cancelled"])
async def test_only_a_failed_task_is_retried(lifecycle: TaskLifecycle, db: DatabaseManager, ending: str) -> None:
    task = await stored(lifecycle, {"a": []})
    if ending == "completed":
        await run(lifecycle, db, task, "a")
    elif ending == "cancelled":
        await lifecycle.cancel(task.id)
    status = (await stored_task(db, task)).status

    with pytest.raises(ConflictError, match=f"is {status.value}: only a failed task can be retried"):
        await lifecycle.retry(task.id)
    with pytest.raises(NotFoundError):
        await lifecycle.retry("task_00000000000000000000000000000000")


async def test_a_failed_task_without_a_failed_subtask_is_left_as_it_is(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    """Reopened with nothing to run, it would never end again."""
    task = await stored(lifecycle, {"a": []})
    await run(lifecycle, db, task, "a")
    await db.pool.execute("UPDATE tasks SET status = 'failed', error = 'failed elsewhere' WHERE id = $1", task.id)

    with pytest.raises(ConflictError, match="has no failed subtask to retry"):
        await lifecycle.retry(task.id)

    assert (await stored_task(db, task)).status is TaskStatus.FAILED


# --- one failed subtask ---------------------------------------------------------------------------------------------


async def test_a_subtask_of_a_running_task_is_retried_and_its_dependents_wait_again(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    task = await stored(lifecycle, {"a": [], "b": [], "c": ["a"]})
    [running_b] = await lifecycle.claim([(subtask_id(task, "b"), 1, "agent2")])
    await fail_for_good(lifecycle, db, task, "a")
    assert (await stored_task(db, task)).status is TaskStatus.IN_PROGRESS  # b still runs

    outcome = await lifecycle.retry(task.id, subtask_id(task, "a"))

    assert outcome.task.status is TaskStatus.IN_PROGRESS and len(outcome.requeued) == 1
    assert await states(db, task) == {
        "a": (QUEUED, 2),
        "b": (SubTaskStatus.RUNNING, running_b.subtask.attempt_count),
        "c": (PENDING, 0),
    }


async def test_a_subtask_retry_leaves_blocked_what_another_failure_still_blocks(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    task = await stored(lifecycle, {"a": [], "b": [], "c": ["a"], "d": ["a", "b"]})
    await fail_for_good(lifecycle, db, task, "a")
    await fail_for_good(lifecycle, db, task, "b")
    assert (await stored_task(db, task)).status is TaskStatus.FAILED

    await lifecycle.retry(task.id, subtask_id(task, "a"))

    reopened = await stored_task(db, task)
    assert reopened.status is TaskStatus.IN_PROGRESS
    assert {s.id.removeprefix(f"{task.id}_"): (s.status, s.blocked_by) for s in reopened.subtasks} == {
        "a": (QUEUED, []),
        "b": (SubTaskStatus.FAILED, []),
        "c": (PENDING, []),
        "d": (BLOCKED, [subtask_id(task, "b")]),
    }
    await run(lifecycle, db, task, "a")
    await run(lifecycle, db, task, "c")
    ended = await stored_task(db, task)
    assert ended.status is TaskStatus.FAILED and "b broke for good" in (ended.error or "")


async def test_only_a_failed_subtask_of_the_task_is_retried(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    task = await stored(lifecycle, {"a": [], "b": []})
    other = await stored(lifecycle, {"x": []})
    await fail_for_good(lifecycle, db, task, "a")

    with pytest.raises(ConflictError, match="is queued: only a failed subtask can be retried"):
        await lifecycle.retry(task.id, subtask_id(task, "b"))
    with pytest.raises(NotFoundError, match="has no subtask"):
        await lifecycle.retry(task.id, subtask_id(other, "x"))
    await run(lifecycle, db, task, "b")  # the task now fails: a failed, b completed
    await lifecycle.retry(task.id, subtask_id(task, "a"))
    await run(lifecycle, db, task, "a")
    with pytest.raises(ConflictError, match="is completed: its subtasks can no longer be retried"):
        await lifecycle.retry(task.id, subtask_id(task, "a"))


# --- races ----------------------------------------------------------------------------------------------------------


async def test_of_two_racing_retries_exactly_one_wins(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    task = await stored(lifecycle, {"a": [], "b": []})
    await fail_for_good(lifecycle, db, task, "a")
    await fail_for_good(lifecycle, db, task, "b")

    answers = await asyncio.gather(
        lifecycle.retry(task.id), lifecycle.retry(task.id, subtask_id(task, "a")), return_exceptions=True
    )

    conflicts = [answer for answer in answers if isinstance(answer, ConflictError)]
    assert len(conflicts) == 1, answers
    assert await states(db, task) in (
        {"a": (QUEUED, 2), "b": (QUEUED, 2)},  # the task's retry went first
        {"a": (QUEUED, 2), "b": (SubTaskStatus.FAILED, 1)},  # the subtask's went first; a is no longer failed
    )


async def test_a_retry_racing_a_cancel_leaves_one_consistent_outcome(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    """Cancel refuses a failed task; once a retry reopened it, a cancel ends it. Either way nothing is left half."""
    task = await stored(lifecycle, {"a": [], "b": ["a"]})
    await fail_for_good(lifecycle, db, task, "a")

    retried, cancelled = await asyncio.gather(
        lifecycle.retry(task.id), lifecycle.cancel(task.id), return_exceptions=True
    )

    assert not isinstance(retried, BaseException), retried
    final = await states(db, task)
    if isinstance(cancelled, ConflictError):  # the cancel went first and found the task failed
        assert final == {"a": (QUEUED, 2), "b": (PENDING, 0)}
        assert (await stored_task(db, task)).status is TaskStatus.IN_PROGRESS
    else:
        assert not isinstance(cancelled, BaseException), cancelled
        assert final == {"a": (SubTaskStatus.CANCELLED, 2), "b": (SubTaskStatus.CANCELLED, 0)}
        assert (await stored_task(db, task)).status is TaskStatus.CANCELLED


# --- why a subtask is where it is -----------------------------------------------------------------------------------


async def test_an_attempt_whose_agent_vanished_is_queued_again_with_the_reason_and_no_agent(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await stored(lifecycle, {"a": []})
    await lifecycle.claim([(subtask_id(task, "a"), 1, "agent-gone")])  # on an agent this registry never saw

    await RecoveryService(lifecycle, test_redis, consumer_ids=[]).run_once()

    [subtask] = (await stored_task(db, task)).subtasks
    assert (subtask.status, subtask.attempt_count, subtask.assigned_agent) == (QUEUED, 2, None)
    assert subtask.last_error == "agent agent-gone stopped heartbeating while running the subtask"
    assert subtask.failed_agent_ids == ["agent-gone"]
