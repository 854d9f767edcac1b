"""Attempts the provider could not serve wait on the queue as the same attempt, on the real PostgreSQL and Redis.

A provider wait is not a failure: the subtask goes back to `queued` with its attempt number unchanged (MAX_RETRIES
counts genuine failures only), not before the provider's retry-after or the fleet's back-off, with a status reason
that says so on the subtask and on its task; a stale or repeated report of one changes nothing.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.lifecycle import TaskLifecycle
from orchestrator.recovery import RecoveryService
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import (
    ProviderWait,
    QueuedSubtask,
    ResultStatus,
    SubTask,
    SubTaskResult,
    SubTaskStatus,
    Task,
    TaskStatus,
)
from shared.redis_manager import RedisManager
from tests.factories import current_result, run_attempt, subtask_id
from tests.integration.orchestrator.test_lifecycle import submitted

RATE_LIMITED = ProviderWait(kind="rate_limited", retry_after_seconds=30)
OVERLOADED = ProviderWait(kind="overloaded")  # no retry-after: the fleet backs off
RATE_LIMIT_ERROR = "Claude API error 429: API Error: Request rejected (429) · slow down"


async def provider_wait(
    repos: Repositories, task: Task, wait: ProviderWait = RATE_LIMITED, **fields: Any
) -> SubTaskResult:
    """What the agent running subtask `a` reports when the provider could not serve it."""
    return await current_result(
        repos, task, "a", status=ResultStatus.FAILED, error=RATE_LIMIT_ERROR, provider_wait=wait, **fields
    )


async def subtask_a(repos: Repositories, task: Task) -> SubTask:
    found = await repos.subtasks.get_subtask(subtask_id(task, "a"))
    assert found is not None
    return found


async def queue_items(redis: RedisManager, task: Task) -> list[QueuedSubtask]:
    items = [QueuedSubtask.model_validate_json(item) for item in await redis.task_queue.waiting_and_inflight()]
    return [item for item in items if item.task_id == task.id]


async def test_a_provider_wait_queues_the_same_attempt_until_the_retry_after_with_the_reason(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager, orchestrator_settings: Settings
) -> None:
    repos = db.repositories()
    task = await submitted(lifecycle, {"a": []}, repos)
    before = datetime.now(UTC)

    outcome = await lifecycle.apply_results([await provider_wait(repos, task)])

    assert len(outcome.applied) == 1
    waiting = await subtask_a(repos, task)
    assert (waiting.status, waiting.attempt_count, waiting.provider_waits) == (SubTaskStatus.QUEUED, 1, 1)
    assert waiting.failed_agent_ids == []  # the provider failed, not the agent
    assert waiting.not_before is not None
    # The retry-after, and a random share of the back-off base on top, so held-back work does not return at once.
    spread = orchestrator_settings.provider_backoff_base_seconds
    assert before + timedelta(seconds=30) <= waiting.not_before <= datetime.now(UTC) + timedelta(seconds=30 + spread)
    assert waiting.status_reason is not None and waiting.status_reason.code == "provider_unavailable"
    assert waiting.status_reason.message == (
        f"waiting on Claude: rate limited (429), next try at {waiting.not_before.astimezone(UTC):%H:%M:%S} UTC"
    )
    stored = await repos.tasks.get_task(task.id)
    assert stored is not None and stored.status_reason == waiting.status_reason
    # The queue item carries the time: the dispatcher holds it until then.
    assert (1, waiting.not_before) in [(item.attempt, item.not_before) for item in await queue_items(test_redis, task)]
    # Not claimed before its time, whichever item names it.
    assert await repos.subtasks.claim(waiting.id, 1, "agent2") is None
    [row] = await repos.results.get_subtask_results(task.id)
    assert row.provider_wait == RATE_LIMITED and row.status is ResultStatus.FAILED


async def test_recovery_restores_a_waiting_item_with_its_time(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    task = await submitted(lifecycle, {"a": []}, repos)
    await lifecycle.apply_results([await provider_wait(repos, task)])
    for item in await test_redis.task_queue.waiting_and_inflight():
        await test_redis.task_queue.remove(item)  # Redis lost them

    await RecoveryService(lifecycle, test_redis, consumer_ids=[]).run_once()

    waiting = await subtask_a(repos, task)
    assert [(item.attempt, item.not_before) for item in await queue_items(test_redis, task)] == [
        (1, waiting.not_before)
    ]


async def test_waits_never_spend_attempts_and_back_off_with_jitter_up_to_the_cap(
    orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager, lifecycle: TaskLifecycle
) -> None:
    settings = orchestrator_settings.model_copy(
        update={"provider_backoff_base_seconds": 2.0, "provider_backoff_max_seconds": 5.0, "max_retries": 2}
    )
    lifecycle.settings = settings
    repos = db.repositories()
    task = await submitted(lifecycle, {"a": []}, repos)
    for wait_number in range(1, 6):  # more waits than MAX_RETRIES allows attempts
        started = datetime.now(UTC)
        await lifecycle.apply_results([await provider_wait(repos, task, OVERLOADED)])
        waiting = await subtask_a(repos, task)
        assert (waiting.attempt_count, waiting.provider_waits) == (1, wait_number)
        assert waiting.not_before is not None
        ceiling = min(5.0, 2.0 * 2 ** (wait_number - 1))
        assert started <= waiting.not_before <= datetime.now(UTC) + timedelta(seconds=ceiling)
        assert waiting.status_reason is not None and "overloaded (529)" in waiting.status_reason.message
        await db.pool.execute("UPDATE subtasks SET not_before = now() WHERE id = $1", waiting.id)  # its time came
        await run_attempt(repos, waiting.id, agent_id="agent1")

    outcome = await lifecycle.apply_results([await current_result(repos, task, "a")])

    assert outcome.finished == {task.id: TaskStatus.COMPLETED}
    done = await subtask_a(repos, task)
    assert (done.attempt_count, done.status_reason, done.not_before) == (1, None, None)
    timeline = await repos.attempts.task_timeline(task.id)
    assert [(item.attempt, item.status) for item in timeline or []] == [(1, "provider_wait")] * 5 + [(1, "completed")]


async def test_a_stale_or_repeated_provider_wait_changes_nothing(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await submitted(lifecycle, {"a": []}, repos)
    first = await provider_wait(repos, task)
    repeated = first.model_copy(update={"result_id": f"{first.result_id}-again"})

    outcome = await lifecycle.apply_results([first, repeated])

    assert [result.result_id for result in outcome.applied] == [first.result_id]
    waiting = await subtask_a(repos, task)
    assert waiting.provider_waits == 1
    await db.pool.execute("UPDATE subtasks SET not_before = now() WHERE id = $1", waiting.id)
    running = await run_attempt(repos, waiting.id, agent_id="agent2")
    late = first.model_copy(update={"result_id": f"{first.result_id}-late"})  # the earlier offer's token

    assert (await lifecycle.apply_results([late])).applied == []
    unchanged = await subtask_a(repos, task)
    assert (unchanged.status, unchanged.delivery_token, unchanged.provider_waits) == (
        SubTaskStatus.RUNNING,
        running.delivery_token,
        1,
    )


async def test_a_task_that_fails_after_waiting_names_only_its_genuine_failure(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    repos = db.repositories()
    task = await submitted(lifecycle, {"a": []}, repos)
    await lifecycle.apply_results([await provider_wait(repos, task)])
    await db.pool.execute("UPDATE subtasks SET not_before = now() WHERE id = $1", subtask_id(task, "a"))
    await run_attempt(repos, subtask_id(task, "a"))

    failure = await current_result(repos, task, "a", status=ResultStatus.FAILED, error="the data is missing")
    outcome = await lifecycle.apply_results([failure])

    assert outcome.finished == {task.id: TaskStatus.FAILED}
    failed = await repos.tasks.get_task(task.id)
    assert failed is not None and failed.error is not None
    assert "the data is missing" in failed.error and "429" not in failed.error
