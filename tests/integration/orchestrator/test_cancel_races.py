"""Cancel against everything else that moves a task, on the real PostgreSQL and Redis: no HTTP, no sleeps.

Cancel and the application of results both take the task's row lock, so one of them goes first and the other sees
its effect. Whichever goes first, the task ends one way only: completed with every subtask completed, or cancelled
with no subtask left to run. A cancelled task's attempts are never claimed, re-queued or accepted again.
"""

import asyncio
from collections.abc import Awaitable, Coroutine
from typing import Any

import asyncpg
import pytest

from orchestrator.lifecycle import BatchOutcome, TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.errors import ConflictError, NotFoundError
from shared.models import ResultStatus, SubTask, SubTaskStatus, Task, TaskStatus
from shared.redis_manager import RedisManager
from tests.factories import build_planned_task, build_result, subtask_id
from tests.integration.orchestrator.test_lifecycle import offer, statuses, stored
from tests.polling import eventually

LIVE = {SubTaskStatus.PENDING, SubTaskStatus.QUEUED, SubTaskStatus.RUNNING}
# The results that race a cancel: the last subtask's completion, and a failure that would retry it.
LATE_RESULTS: dict[str, dict[str, Any]] = {
    "completed": {"status": ResultStatus.COMPLETED},
    "failed, retryable": {"status": ResultStatus.FAILED, "retryable": True},
    "failed for good": {"status": ResultStatus.FAILED, "retryable": False},
}


async def last_step_running(lifecycle: TaskLifecycle) -> tuple[Task, SubTask]:
    """A two-step task whose first step completed and whose last step an agent runs."""
    task = await stored(lifecycle, {"first": [], "last": ["first"]})
    first = await offer(lifecycle, task, "first", "agent1")
    assert (await lifecycle.apply_results([build_result(first)])).applied
    return task, await offer(lifecycle, task, "last", "agent2")


async def task_status(db: DatabaseManager, task: Task) -> TaskStatus:
    stored_task = await db.repositories().tasks.get_task(task.id)
    assert stored_task is not None
    return stored_task.status


async def assert_ended_one_way(db: DatabaseManager, task: Task) -> TaskStatus:
    """Completed with every subtask completed, or failed or cancelled with none left to run; never in between."""
    status = await task_status(db, task)
    subtasks = await statuses(db.repositories(), task)
    if status is TaskStatus.COMPLETED:
        assert set(subtasks.values()) == {SubTaskStatus.COMPLETED}, subtasks
    else:
        assert status in (TaskStatus.FAILED, TaskStatus.CANCELLED), status
        assert not LIVE & set(subtasks.values()), subtasks
    return status


async def applied_results(repos: Repositories, task: Task) -> list[tuple[str, ResultStatus]]:
    return [
        (result.subtask_id.removeprefix(f"{task.id}_"), result.status)
        for result in await repos.results.get_subtask_results(task.id, applied_only=True)
    ]


# --- one after the other ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("late", LATE_RESULTS.values(), ids=LATE_RESULTS.keys())
async def test_a_result_arriving_after_cancel_changes_nothing(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager, late: dict[str, Any]
) -> None:
    repos = db.repositories()
    task, running = await last_step_running(lifecycle)
    await lifecycle.cancel(task.id)
    queue_before = await test_redis.queued_task_items()

    outcome = await lifecycle.apply_results([build_result(running, agent_id="agent2", **late)])

    assert (outcome.applied, outcome.queued, outcome.finished, outcome.rejected) == ([], [], {}, {})
    assert await task_status(db, task) is TaskStatus.CANCELLED
    assert await statuses(repos, task) == {"first": SubTaskStatus.COMPLETED, "last": SubTaskStatus.CANCELLED}
    assert (await repos.subtasks.get_subtask(running.id)).attempt_count == 1  # type: ignore[union-attr]
    assert await test_redis.queued_task_items() == queue_before  # no retry went on the queue
    assert await applied_results(repos, task) == [("first", ResultStatus.COMPLETED)]  # the late one only on record
    assert len(await repos.results.get_subtask_results(task.id)) == 2


async def test_an_offer_cancelled_before_its_agent_accepted_it_is_neither_taken_back_nor_run(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    """The dispatcher claimed the attempt and is still waiting for the agent's answer when the task is cancelled."""
    repos = db.repositories()
    task = await stored(lifecycle, {"a": []})
    offered = await offer(lifecycle, task, "a", "agent1")
    await lifecycle.cancel(task.id)
    queue_before = await test_redis.queued_task_items()

    assert not await lifecycle.release_unaccepted(
        [(offered.id, offered.delivery_token or "")]
    )  # nothing to put back on the queue
    assert not await repos.subtasks.accept_delivery(offered.id, offered.delivery_token or "", "agent1")

    assert await statuses(repos, task) == {"a": SubTaskStatus.CANCELLED}
    assert await lifecycle.claim([(offered.id, 1, "agent2")]) == []
    assert await test_redis.queued_task_items() == queue_before
    assert await repos.subtasks.count_queued() == 0


async def test_a_cancelled_attempt_still_on_the_queue_is_never_claimed(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await stored(lifecycle, {"a": [], "b": ["a"]})
    await lifecycle.cancel(task.id)

    assert (subtask_id(task, "a"), 1) in await test_redis.queued_task_items()  # cancel leaves the item to the queue
    assert await lifecycle.claim([(subtask_id(task, "a"), 1, "agent1")]) == []
    assert await statuses(db.repositories(), task) == {"a": SubTaskStatus.CANCELLED, "b": SubTaskStatus.CANCELLED}


@pytest.mark.parametrize("ending", ["completed", "failed", "cancelled"])
async def test_cancelling_a_task_that_has_ended_is_a_conflict(
    lifecycle: TaskLifecycle, db: DatabaseManager, ending: str
) -> None:
    task = await stored(lifecycle, {"a": []})
    if ending == "cancelled":
        await lifecycle.cancel(task.id)
    else:
        running = await offer(lifecycle, task, "a", "agent1")
        status = ResultStatus.COMPLETED if ending == "completed" else ResultStatus.FAILED
        await lifecycle.apply_results([build_result(running, status=status, retryable=False)])
    assert (await task_status(db, task)).value == ending

    with pytest.raises(ConflictError, match="already ended"):
        await lifecycle.cancel(task.id)

    assert (await task_status(db, task)).value == ending


async def test_cancelling_an_unknown_task_is_not_found(lifecycle: TaskLifecycle) -> None:
    with pytest.raises(NotFoundError):
        await lifecycle.cancel("task_that_never_was")


async def test_another_tenant_s_task_is_unknown_to_cancel(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    theirs_repos = Repositories(db.pool, "another-tenant")
    theirs = await theirs_repos.tasks.create_task(build_planned_task({"x": []}))
    await theirs_repos.subtasks.queue_ready(theirs.id)

    with pytest.raises(NotFoundError):
        await lifecycle.cancel(theirs.id)

    assert (await theirs_repos.tasks.get_task(theirs.id)).status is TaskStatus.PENDING  # type: ignore[union-attr]
    assert await statuses(theirs_repos, theirs) == {"x": SubTaskStatus.QUEUED}


# --- at the same time ---------------------------------------------------------------------------------------------


async def cancel_outcome(lifecycle: TaskLifecycle, task: Task) -> Task | ConflictError:
    try:
        return await lifecycle.cancel(task.id)
    except ConflictError as error:
        return error


async def in_lock_order(
    db: DatabaseManager, settings: Settings, task: Task, *contenders: Coroutine[Any, Any, Any]
) -> list[Any]:
    """Run the contenders so that they reach the task's row lock in the order given: the lock is held while each
    is started and until it waits on it (PostgreSQL grants a row lock to its waiters in turn)."""

    async def waiting() -> int:
        count: int = await db.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return count

    holder = await asyncpg.connect(settings.postgres_url)
    try:
        started: list[asyncio.Task[Any]] = []
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", task.id)
            for contender in contenders:
                started.append(asyncio.ensure_future(contender))
                await eventually(waiting, lambda count: count >= len(started))
        return list(await asyncio.gather(*started))
    finally:
        await holder.close()


@pytest.mark.parametrize("late", LATE_RESULTS.values(), ids=LATE_RESULTS.keys())
async def test_a_cancel_that_locks_the_task_first_wins_over_a_result(
    lifecycle: TaskLifecycle,
    db: DatabaseManager,
    orchestrator_settings: Settings,
    test_redis: RedisManager,
    late: dict[str, Any],
) -> None:
    task, running = await last_step_running(lifecycle)
    result = build_result(running, agent_id="agent2", **late)

    cancelled, outcome = await in_lock_order(
        db, orchestrator_settings, task, cancel_outcome(lifecycle, task), lifecycle.apply_results([result])
    )

    assert isinstance(cancelled, Task) and cancelled.status is TaskStatus.CANCELLED
    assert outcome.applied == [] and outcome.queued == []
    assert await assert_ended_one_way(db, task) is TaskStatus.CANCELLED
    assert (running.id, 2) not in await test_redis.queued_task_items()


# What a result that locks the task before a cancel leaves: the task's status, and whether the cancel still applied.
RESULT_FIRST = {
    "completed": (TaskStatus.COMPLETED, False),
    "failed, retryable": (TaskStatus.CANCELLED, True),  # the retry was queued, then cancelled
    "failed for good": (TaskStatus.FAILED, False),
}


@pytest.mark.parametrize("late", LATE_RESULTS, ids=LATE_RESULTS.keys())
async def test_a_result_that_locks_the_task_first_is_applied_before_the_cancel(
    lifecycle: TaskLifecycle, db: DatabaseManager, orchestrator_settings: Settings, late: str
) -> None:
    task, running = await last_step_running(lifecycle)
    result = build_result(running, agent_id="agent2", **LATE_RESULTS[late])

    outcome, cancelled = await in_lock_order(
        db, orchestrator_settings, task, lifecycle.apply_results([result]), cancel_outcome(lifecycle, task)
    )

    ending, cancel_applied = RESULT_FIRST[late]
    assert [applied.result_id for applied in outcome.applied] == [result.result_id]
    assert await assert_ended_one_way(db, task) is ending
    assert isinstance(cancelled, Task) == cancel_applied
    assert await lifecycle.claim([(running.id, 2, "agent3")]) == []  # a retry, if any, never runs


async def test_cancel_and_the_last_completion_at_once_end_the_task_one_way(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    """No arranged order: both race for the lock, in both orders of starting, several times over."""
    for round_number in range(10):
        task, running = await last_step_running(lifecycle)
        completion = lifecycle.apply_results([build_result(running, agent_id="agent2")])
        cancel = cancel_outcome(lifecycle, task)
        contenders: list[Awaitable[Any]] = [cancel, completion] if round_number % 2 else [completion, cancel]

        outcomes = await asyncio.gather(*contenders)

        cancelled = next(item for item in outcomes if not isinstance(item, BatchOutcome))
        outcome = next(item for item in outcomes if isinstance(item, BatchOutcome))
        status = await assert_ended_one_way(db, task)
        # Exactly one of the two took effect, and it is the one the task's status names.
        assert isinstance(cancelled, ConflictError) == bool(outcome.applied) == (status is TaskStatus.COMPLETED)
