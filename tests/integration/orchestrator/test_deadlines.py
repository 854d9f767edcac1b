"""Deadlines on the real PostgreSQL and Redis, through the lifecycle: a task past its deadline fails in one transition
(its unfinished subtasks cancelled, the reason `deadline_exceeded`), whatever it waits on; an ended task, a task
with time left and another tenant's task are left alone; what an agent reports afterwards changes nothing."""

from datetime import UTC, datetime, timedelta

from orchestrator.deadline_watch import DeadlineWatch
from orchestrator.lifecycle import TaskLifecycle
from shared.database import DatabaseManager, Repositories
from shared.models import DEADLINE_EXCEEDED, SubTaskStatus, Task, TaskStatus
from shared.redis import EventType
from shared.redis_manager import RedisManager
from tests.events_contract import kinds, task_stream
from tests.factories import build_planned_task, build_result
from tests.integration.orchestrator.test_lifecycle import offer, statuses


async def with_deadline(lifecycle: TaskLifecycle, plan: dict[str, list[str]], seconds_from_now: float) -> Task:
    task = build_planned_task(plan)
    task.deadline_at = datetime.now(UTC) + timedelta(seconds=seconds_from_now)
    await lifecycle.submit(task)
    return task


async def stored_task(repos: Repositories, task: Task) -> Task:
    found = await repos.tasks.get_task(task.id)
    assert found is not None
    return found


async def test_a_task_past_its_deadline_fails_with_the_reason_and_its_unfinished_subtasks_are_cancelled(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    task = await with_deadline(lifecycle, {"done": [], "running": [], "waiting": ["running"]}, -1)
    done = await offer(lifecycle, task, "done", "agent1")
    assert (await lifecycle.apply_results([build_result(done)])).applied
    running = await offer(lifecycle, task, "running", "agent2")

    [failed] = await lifecycle.fail_past_deadline(100)

    stored = await stored_task(repos, task)
    assert failed.id == task.id and stored.status is TaskStatus.FAILED
    assert stored.status_reason is not None and stored.status_reason.code == DEADLINE_EXCEEDED
    assert stored.error == stored.status_reason.message
    assert stored.deadline_at is not None and stored.deadline_at.isoformat(timespec="seconds") in stored.error
    assert await statuses(repos, task) == {
        "done": SubTaskStatus.COMPLETED,
        "running": SubTaskStatus.CANCELLED,
        "waiting": SubTaskStatus.CANCELLED,
    }
    # Events as for any failed task: what was cancelled, then the task's end, which names the deadline.
    events = await task_stream(test_redis, task.id)
    assert kinds(events)[-3:] == [
        f"SUBTASK_CANCELLED {task.id}_running",
        f"SUBTASK_CANCELLED {task.id}_waiting",
        "TASK_FAILED",
    ]
    assert events[-1].event.event_type is EventType.TASK_FAILED and events[-1].event.data == {"error": stored.error}
    # The stopped attempt's report comes later: recorded, and nothing changes.
    late = await lifecycle.apply_results([build_result(running, agent_id="agent2")])
    assert late.applied == [] and (await stored_task(repos, task)).status is TaskStatus.FAILED
    assert await lifecycle.fail_past_deadline(100) == []


async def test_only_unended_tasks_of_this_tenant_whose_deadline_passed_fail(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    repos = db.repositories()
    overdue = await with_deadline(lifecycle, {"a": []}, -0.5)
    with_time_left = await with_deadline(lifecycle, {"a": []}, 3600)
    no_deadline = build_planned_task({"a": []})
    await lifecycle.submit(no_deadline)
    ended = await with_deadline(lifecycle, {"a": []}, -5)
    await lifecycle.cancel(ended.id)
    theirs = build_planned_task({"a": []}, deadline_at=datetime.now(UTC) - timedelta(seconds=5))
    await Repositories(db.pool, "another-tenant").tasks.create_task(theirs)

    await DeadlineWatch(lifecycle).run_once()

    assert (await stored_task(repos, overdue)).status is TaskStatus.FAILED
    assert (await stored_task(repos, with_time_left)).status is TaskStatus.PENDING
    assert (await stored_task(repos, no_deadline)).status is TaskStatus.PENDING
    assert (await stored_task(repos, ended)).status is TaskStatus.CANCELLED
    assert (await stored_task(Repositories(db.pool, "another-tenant"), theirs)).status is TaskStatus.PENDING


async def test_a_task_with_no_plan_yet_fails_at_its_deadline_too(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    """A task stored while its planning waits (on the provider): no subtasks, pending."""
    task = await with_deadline(lifecycle, {}, -1)

    [failed] = await lifecycle.fail_past_deadline(100)

    assert failed.id == task.id and failed.status is TaskStatus.FAILED and failed.subtasks == []
    assert failed.status_reason is not None and failed.status_reason.code == DEADLINE_EXCEEDED
