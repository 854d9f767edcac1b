"""Budgets that pause, not kill, through the task lifecycle on the real PostgreSQL and Redis (no HTTP, no sleeps).

A task over its max_cost_usd, or a tenant over its daily budget, pauses: its running attempts finish and their
results apply, nothing queued is claimed, and a resume (by hand, or when the UTC day turns) puts it back on the queue.
"""

from collections.abc import Sequence

import pytest

from orchestrator.budgets import BUDGET_EXHAUSTED, TENANT_DAILY_BUDGET
from orchestrator.fleet_view import FleetView
from orchestrator.lifecycle import TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.errors import ConflictError, NotFoundError, TooManyRequestsError
from shared.models import ModelCallUsage, ResultStatus, SubTaskStatus, Task, TaskStatus, TokenUsage
from shared.redis import EventType
from shared.redis.keys import TASK_QUEUE
from shared.redis_manager import RedisManager
from tests.events_contract import contract_problems, task_stream
from tests.factories import build_planned_task, current_result, run_attempt, subtask_id


def lifecycle_with(settings: Settings, db: DatabaseManager, redis: RedisManager, **overrides: object) -> TaskLifecycle:
    """The lifecycle of an orchestrator of the same tenant run with other settings (a restart with a raised budget)."""
    changed = settings.model_copy(update=overrides)
    return TaskLifecycle(changed, db, redis, FleetView.of(redis, changed.heartbeat_ttl_seconds))


async def started(lifecycle: TaskLifecycle, repos: Repositories, plan: dict[str, list[str]], **fields: object) -> Task:
    """A submitted task whose subtasks without dependencies the dispatcher claimed (running; the task in progress)."""
    task = build_planned_task(plan, **fields)
    await lifecycle.submit(task)
    roots = [subtask_id(task, name) for name, dependencies in plan.items() if not dependencies]
    assert len(await lifecycle.claim([(root, 1, "agent1") for root in roots])) == len(roots)
    return task


async def report(
    lifecycle: TaskLifecycle, repos: Repositories, task: Task, name: str, cost: float, **fields: object
) -> None:
    outcome = await lifecycle.apply_results([await current_result(repos, task, name, cost_usd=cost, **fields)])
    assert not outcome.rejected, outcome.rejected


async def status_of(repos: Repositories, task: Task) -> tuple[TaskStatus, str | None]:
    stored = await repos.tasks.get_task(task.id)
    assert stored is not None
    return stored.status, stored.status_reason.code if stored.status_reason else None


async def queued_on_redis(redis: RedisManager) -> set[str]:
    return {subtask for subtask, _ in await redis.queued_task_items()}


async def events_of(redis: RedisManager, task: Task, *kinds: EventType) -> list[dict[str, object]]:
    events = await task_stream(redis, task.id)
    assert [problem for event in events for problem in contract_problems(event)] == []
    return [event.event.data for event in events if event.event.event_type in kinds]


def ids(task: Task, *names: str) -> set[str]:
    return {subtask_id(task, name) for name in names}


# --- a task's own budget -------------------------------------------------------------------------------------------


async def test_a_task_whose_next_attempt_would_pass_its_budget_pauses_and_nothing_queued_is_claimed(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    task = await started(lifecycle, repos, {"a": [], "b": [], "c": ["a"]}, max_cost_usd=0.05)
    await test_redis.client.delete(test_redis.keys.queue(TASK_QUEUE))  # what the dispatcher took; only new items show

    await report(lifecycle, repos, task, "a", 0.03)  # 0.03 spent + 0.03 for the next attempt > 0.05

    assert await status_of(repos, task) == (TaskStatus.PAUSED, BUDGET_EXHAUSTED)
    stored = await repos.tasks.get_task(task.id)
    assert stored is not None and stored.status_reason is not None
    assert "spent $0.0300 of its $0.0500 budget" in stored.status_reason.message
    subtasks = {s.id: s for s in stored.subtasks}
    assert subtasks[subtask_id(task, "a")].status is SubTaskStatus.COMPLETED  # what it did is kept
    assert subtasks[subtask_id(task, "c")].status is SubTaskStatus.QUEUED  # ready, but not offered
    assert await queued_on_redis(test_redis) == set()
    detail = await repos.tasks.get_task_detail(task.id)
    assert detail is not None and [result.output for result in detail[1]] == ["done"]
    # The claim refuses what a paused task has queued (a stale queue item), and recovery does not queue it again.
    c = subtasks[subtask_id(task, "c")]
    assert await repos.subtasks.claim(c.id, c.attempt_count, "agent2") is None
    assert await lifecycle.requeue_missing() == 0
    [paused] = await events_of(test_redis, task, EventType.TASK_PAUSED)
    assert paused["reason"]["code"] == BUDGET_EXHAUSTED and paused["max_cost_usd"] == 0.05  # type: ignore[index]
    pauses = lifecycle.metrics.registry.get_sample_value("fleet_task_pauses_total", {"reason": BUDGET_EXHAUSTED})
    assert pauses == 1


async def test_a_task_within_its_budget_runs_on(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await started(lifecycle, repos, {"a": [], "b": []}, max_cost_usd=0.05)

    await report(lifecycle, repos, task, "a", 0.02)  # 0.02 + 0.02 <= 0.05

    assert await status_of(repos, task) == (TaskStatus.IN_PROGRESS, None)


@pytest.mark.parametrize(
    ("last", "ending"), [(ResultStatus.COMPLETED, TaskStatus.COMPLETED), (ResultStatus.FAILED, TaskStatus.FAILED)]
)
async def test_running_attempts_of_a_paused_task_finish_and_end_it(
    lifecycle: TaskLifecycle, db: DatabaseManager, last: ResultStatus, ending: TaskStatus
) -> None:
    repos = db.repositories()
    task = await started(lifecycle, repos, {"a": [], "b": []}, max_cost_usd=0.05)
    await report(lifecycle, repos, task, "a", 0.04)
    assert await status_of(repos, task) == (TaskStatus.PAUSED, BUDGET_EXHAUSTED)

    await report(lifecycle, repos, task, "b", 0.04, status=last)  # b was running when the task paused

    assert await status_of(repos, task) == (ending, None)  # why it paused is no longer true


async def test_a_paused_task_can_be_cancelled(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await started(lifecycle, repos, {"a": [], "b": ["a"]}, max_cost_usd=0.01)
    await report(lifecycle, repos, task, "a", 0.02)
    assert (await status_of(repos, task))[0] is TaskStatus.PAUSED

    cancelled = await lifecycle.cancel(task.id)

    assert cancelled.status is TaskStatus.CANCELLED
    assert {s.id: s.status for s in cancelled.subtasks}[subtask_id(task, "b")] is SubTaskStatus.CANCELLED


async def test_resume_needs_a_budget_that_covers_the_next_attempt_and_then_queues_what_waited(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    task = await started(lifecycle, repos, {"a": [], "b": ["a"]}, max_cost_usd=0.05)
    await report(lifecycle, repos, task, "a", 0.04)
    await test_redis.client.delete(test_redis.keys.queue(TASK_QUEUE))

    with pytest.raises(ConflictError, match=r"spent \$0\.0400 .* max_cost_usd above \$0\.0800"):
        await lifecycle.resume(task.id)
    with pytest.raises(ConflictError, match="max_cost_usd above"):
        await lifecycle.resume(task.id, 0.07)
    assert await status_of(repos, task) == (TaskStatus.PAUSED, BUDGET_EXHAUSTED)

    outcome = await lifecycle.resume(task.id, 0.5)

    assert outcome.task.status is TaskStatus.IN_PROGRESS and outcome.task.max_cost_usd == 0.5
    assert {subtask.id for subtask in outcome.requeued} == ids(task, "b")
    assert await queued_on_redis(test_redis) == ids(task, "b")
    await run_attempt(repos, subtask_id(task, "b"))  # offered again
    await report(lifecycle, repos, task, "b", 0.04)
    assert await status_of(repos, task) == (TaskStatus.COMPLETED, None)
    [resumed] = await events_of(test_redis, task, EventType.TASK_RESUMED)
    assert resumed == {"status": "in_progress", "max_cost_usd": 0.5, "by": "operator"}


async def test_only_a_paused_task_of_this_tenant_resumes(
    lifecycle: TaskLifecycle, db: DatabaseManager, orchestrator_settings: Settings
) -> None:
    repos = db.repositories()
    task = await started(lifecycle, repos, {"a": []})
    with pytest.raises(ConflictError, match="is in_progress: only a paused task can be resumed"):
        await lifecycle.resume(task.id)
    theirs = Repositories(db.pool, "another-tenant")
    other = await theirs.tasks.create_task(build_planned_task({"x": []}))
    with pytest.raises(NotFoundError):
        await lifecycle.resume(other.id)


async def test_a_decomposition_that_passed_the_budget_stores_the_task_paused_and_queues_nothing(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    task = build_planned_task({"a": []}, max_cost_usd=0.01)
    # 2,000 output tokens of the default model: $0.03 at its list price (MODEL_PRICES).
    planning = ModelCallUsage(purpose="decomposition", model="claude-sonnet-5-5", usage=TokenUsage(output_tokens=2000))

    queued = await lifecycle.submit(task, [planning])

    assert queued == []
    assert await status_of(repos, task) == (TaskStatus.PAUSED, BUDGET_EXHAUSTED)
    assert await queued_on_redis(test_redis) == set()
    outcome = await lifecycle.resume(task.id, 1.0)
    assert outcome.task.status is TaskStatus.PENDING  # nothing of it ran yet
    assert await queued_on_redis(test_redis) == ids(task, "a")


# --- the tenant's daily budget -------------------------------------------------------------------------------------


async def move_spend_back_a_day(db: DatabaseManager, tasks: Sequence[Task]) -> None:
    """The UTC day turns, as the ledger sees it: everything spent so far was spent yesterday."""
    task_ids = [task.id for task in tasks]
    await db.pool.execute(
        "UPDATE model_calls SET created_at = created_at - interval '1 day' WHERE task_id = ANY ($1)", task_ids
    )


async def test_the_tenant_daily_budget_pauses_its_tasks_refuses_submits_and_they_resume_when_the_day_turns(
    orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager
) -> None:
    lifecycle = lifecycle_with(orchestrator_settings, db, test_redis, tenant_daily_budget_usd=0.05)
    repos = db.repositories()
    first = await started(lifecycle, repos, {"a": [], "b": ["a"]})
    second = await started(lifecycle, repos, {"x": [], "y": ["x"]})
    await report(lifecycle, repos, first, "a", 0.03)
    assert await status_of(repos, second) == (TaskStatus.IN_PROGRESS, None)
    await test_redis.client.delete(test_redis.keys.queue(TASK_QUEUE))

    await report(lifecycle, repos, second, "x", 0.03)  # 0.06 today: the budget is spent

    for task in (first, second):
        assert await status_of(repos, task) == (TaskStatus.PAUSED, TENANT_DAILY_BUDGET)
    assert await queued_on_redis(test_redis) == set()
    with pytest.raises(TooManyRequestsError, match=r"\$0\.0600 of \$0\.0500 today") as refused:
        await lifecycle.refuse_when_over_budget()
    assert refused.value.headers is not None and 1 <= int(refused.value.headers["Retry-After"]) <= 86_400
    with pytest.raises(ConflictError, match="daily budget is still spent"):
        await lifecycle.resume(first.id)
    assert await lifecycle.resume_within_daily_budget() == 0

    await move_spend_back_a_day(db, [first, second])

    assert await lifecycle.resume_within_daily_budget() == 2
    for task in (first, second):
        assert await status_of(repos, task) == (TaskStatus.IN_PROGRESS, None)
    assert await queued_on_redis(test_redis) == ids(first, "b") | ids(second, "y")
    await lifecycle.refuse_when_over_budget()  # a new day, a new budget
    [resumed] = await events_of(test_redis, first, EventType.TASK_RESUMED)
    assert resumed["by"] == "daily_budget"


async def test_tasks_paused_on_the_daily_budget_resume_by_hand_once_it_is_raised(
    orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager
) -> None:
    lifecycle = lifecycle_with(orchestrator_settings, db, test_redis, tenant_daily_budget_usd=0.05)
    repos = db.repositories()
    task = await started(lifecycle, repos, {"a": [], "b": ["a"]})
    await report(lifecycle, repos, task, "a", 0.06)
    assert await status_of(repos, task) == (TaskStatus.PAUSED, TENANT_DAILY_BUDGET)
    with pytest.raises(ConflictError, match="daily budget is still spent"):
        await lifecycle.resume(task.id)

    raised = lifecycle_with(orchestrator_settings, db, test_redis, tenant_daily_budget_usd=1.0)  # a restart

    outcome = await raised.resume(task.id)
    assert outcome.task.status is TaskStatus.IN_PROGRESS
    assert {subtask.id for subtask in outcome.requeued} == ids(task, "b")


async def test_a_task_whose_own_budget_is_spent_stays_paused_when_the_day_turns(
    orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager
) -> None:
    lifecycle = lifecycle_with(orchestrator_settings, db, test_redis, tenant_daily_budget_usd=0.05)
    repos = db.repositories()
    task = await started(lifecycle, repos, {"a": [], "b": [], "c": []}, max_cost_usd=0.5)
    await report(lifecycle, repos, task, "a", 0.2)  # 0.2 + 0.2 <= 0.5, but the day's budget is spent
    assert await status_of(repos, task) == (TaskStatus.PAUSED, TENANT_DAILY_BUDGET)
    await report(lifecycle, repos, task, "b", 0.2)  # a running attempt finishes: 0.4 + 0.2 > 0.5
    await move_spend_back_a_day(db, [task])

    assert await lifecycle.resume_within_daily_budget() == 0

    assert await status_of(repos, task) == (TaskStatus.PAUSED, BUDGET_EXHAUSTED)


# --- an operator's retry -------------------------------------------------------------------------------------------


async def test_a_retry_of_a_task_that_failed_over_its_budget_pauses_it_instead_of_running_on(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    task = await started(lifecycle, repos, {"a": [], "b": ["a"]}, max_cost_usd=0.05)
    await report(lifecycle, repos, task, "a", 0.06, status=ResultStatus.FAILED, retryable=False)
    assert await status_of(repos, task) == (TaskStatus.FAILED, None)  # it ended before its spend was checked
    await test_redis.client.delete(test_redis.keys.queue(TASK_QUEUE))

    outcome = await lifecycle.retry(task.id)

    assert outcome.task.status is TaskStatus.PAUSED and outcome.requeued == []
    assert await status_of(repos, task) == (TaskStatus.PAUSED, BUDGET_EXHAUSTED)
    assert await queued_on_redis(test_redis) == set()
    a = await repos.subtasks.get_subtask(subtask_id(task, "a"))
    assert a is not None and a.status is SubTaskStatus.QUEUED
    assert await repos.subtasks.claim(a.id, a.attempt_count, "agent1") is None  # not one more attempt over budget
    resumed = await lifecycle.resume(task.id, 0.5)  # the way on: a budget that covers it
    assert resumed.task.status is TaskStatus.IN_PROGRESS and await queued_on_redis(test_redis) == ids(task, "a")


async def test_a_retry_while_the_tenant_daily_budget_is_spent_pauses_the_task(
    orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager
) -> None:
    lifecycle = lifecycle_with(orchestrator_settings, db, test_redis, tenant_daily_budget_usd=0.05)
    repos = db.repositories()
    task = await started(lifecycle, repos, {"a": []})
    await report(lifecycle, repos, task, "a", 0.06, status=ResultStatus.FAILED, retryable=False)
    assert await status_of(repos, task) == (TaskStatus.FAILED, None)
    await test_redis.client.delete(test_redis.keys.queue(TASK_QUEUE))

    outcome = await lifecycle.retry(task.id)

    assert outcome.task.status is TaskStatus.PAUSED and outcome.requeued == []
    assert await status_of(repos, task) == (TaskStatus.PAUSED, TENANT_DAILY_BUDGET)
    assert await queued_on_redis(test_redis) == set()
    await move_spend_back_a_day(db, [task])
    assert await lifecycle.resume_within_daily_budget() == 1
    assert await queued_on_redis(test_redis) == ids(task, "a")
