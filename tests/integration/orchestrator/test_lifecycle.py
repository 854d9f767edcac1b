"""The task lifecycle and the loops around it, called directly on the real PostgreSQL and Redis: no HTTP, no sleeps.

Poison results (a forged subtask id, another tenant's subtask, a value PostgreSQL refuses) are set aside with their
reason and never hold back the genuine results of their batch; an enqueue Redis cannot take is left to recovery.
"""

import asyncio

import pytest

from orchestrator.dispatcher import Dispatcher
from orchestrator.fleet_view import FleetView
from orchestrator.lifecycle import TaskLifecycle
from orchestrator.recovery import RecoveryService
from orchestrator.result_processor import ResultProcessor
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.errors import TooManyRequestsError
from shared.models import (
    QueuedSubtask,
    ReportedResult,
    ResultStatus,
    SubTask,
    SubTaskResult,
    SubTaskStatus,
    Task,
    TaskStatus,
)
from shared.redis_manager import RedisManager
from tests.factories import build_planned_task, build_result, current_result, run_attempt, subtask_id

COMPLETED = ResultStatus.COMPLETED


async def submitted(lifecycle: TaskLifecycle, plan: dict[str, list[str]], repos: Repositories) -> Task:
    task = build_planned_task(plan)
    await lifecycle.submit(task)
    for name, dependencies in plan.items():
        if not dependencies:
            await run_attempt(repos, subtask_id(task, name))
    return task


async def statuses(repos: Repositories, task: Task) -> dict[str, SubTaskStatus]:
    return {s.id.removeprefix(f"{task.id}_"): s.status for s in await repos.subtasks.list_for_task(task.id)}


def forged(task: Task) -> SubTaskResult:
    """A result for a subtask id nobody assigned, as a caller of an agent's /execute could make one report."""
    genuine = build_result(task.subtasks[0])
    return genuine.model_copy(update={"subtask_id": f"{task.id}_forged", "result_id": f"{genuine.result_id}x"})


async def test_a_forged_result_is_rejected_and_the_rest_of_its_batch_applies(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    repos = db.repositories()
    task = await submitted(lifecycle, {"a": [], "b": []}, repos)
    results = [await current_result(repos, task, "a"), forged(task), await current_result(repos, task, "b")]

    outcome = await lifecycle.apply_results(results)

    assert list(outcome.rejected) == [1] and "no subtask" in outcome.rejected[1]
    assert [result.subtask_id for result in outcome.applied] == [results[0].subtask_id, results[2].subtask_id]
    assert outcome.finished == {task.id: TaskStatus.COMPLETED}
    assert await statuses(repos, task) == {"a": SubTaskStatus.COMPLETED, "b": SubTaskStatus.COMPLETED}


async def test_a_result_naming_another_task_or_tenant_is_rejected(
    lifecycle: TaskLifecycle, db: DatabaseManager, orchestrator_settings: Settings
) -> None:
    repos = db.repositories()
    mine = await submitted(lifecycle, {"a": []}, repos)
    theirs_repos = Repositories(db.pool, "another-tenant")
    theirs = await theirs_repos.tasks.create_task(build_planned_task({"x": []}))
    await theirs_repos.subtasks.queue_ready(theirs.id)
    running = await run_attempt(theirs_repos, subtask_id(theirs, "x"))
    wrong_task = (await current_result(repos, mine, "a")).model_copy(update={"task_id": theirs.id})
    other_tenant = build_result(running, attempt=running.attempt_count)

    outcome = await lifecycle.apply_results([wrong_task, other_tenant])

    assert "belongs to task" in outcome.rejected[0] and "no subtask" in outcome.rejected[1]
    assert outcome.applied == []
    assert (await theirs_repos.subtasks.get_subtask(running.id)).status is SubTaskStatus.RUNNING  # type: ignore[union-attr]


async def test_a_result_postgresql_refuses_is_rejected_alone(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    """A NUL character passes every check of ours; PostgreSQL text cannot hold it, so the batch is refused once,
    then each result is applied alone."""
    repos = db.repositories()
    task = await submitted(lifecycle, {"a": [], "b": []}, repos)
    poisoned = await current_result(repos, task, "a", output="half\x00a report")

    outcome = await lifecycle.apply_results([poisoned, await current_result(repos, task, "b")])

    assert list(outcome.rejected) == [0] and "PostgreSQL refused it" in outcome.rejected[0]
    assert await statuses(repos, task) == {"a": SubTaskStatus.RUNNING, "b": SubTaskStatus.COMPLETED}


async def test_the_result_processor_dead_letters_poison_and_acks_the_rest(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    repos = db.repositories()
    task = await submitted(lifecycle, {"a": []}, repos)
    genuine = await current_result(repos, task, "a")
    for result in (forged(task), genuine):
        await test_redis.enqueue_result(result)
    processor = ResultProcessor(lifecycle, test_redis, 0)

    await processor.run_once()

    [letter] = await test_redis.result_queue.dead_letters()
    assert ReportedResult.model_validate_json(letter.payload).subtask_id == f"{task.id}_forged"
    assert "no subtask" in letter.reason
    assert await test_redis.result_queue.inflight(processor.consumer_id) == []
    assert await statuses(repos, task) == {"a": SubTaskStatus.COMPLETED}


async def test_an_enqueue_redis_cannot_take_is_left_to_recovery(
    orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager, unreachable_redis: RedisManager
) -> None:
    fleet = FleetView.of(test_redis, orchestrator_settings.heartbeat_ttl_seconds)
    cut_off = TaskLifecycle(orchestrator_settings, db, unreachable_redis, fleet)
    task = build_planned_task({"a": []})

    queued = await cut_off.submit(task)  # stored in PostgreSQL; Redis is away, and that is no error

    assert [subtask.status for subtask in queued] == [SubTaskStatus.QUEUED]
    assert await test_redis.queued_task_items() == set()
    restored = TaskLifecycle(orchestrator_settings, db, test_redis, fleet)
    assert await restored.requeue_missing() == 1
    assert await test_redis.queued_task_items() == {(queued[0].id, 1)}


async def test_submits_arriving_together_never_overshoot_the_queue_limit(
    orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager
) -> None:
    limited = orchestrator_settings.model_copy(update={"max_queue_depth": 10})
    lifecycle = TaskLifecycle(limited, db, test_redis, FleetView.of(test_redis, limited.heartbeat_ttl_seconds))

    outcomes = await asyncio.gather(
        *(lifecycle.submit(build_planned_task({"a": []})) for _ in range(50)), return_exceptions=True
    )

    refused = [outcome for outcome in outcomes if isinstance(outcome, TooManyRequestsError)]
    assert len(refused) == 40 and len(outcomes) - len(refused) == 10, outcomes
    assert await db.repositories().subtasks.count_queued() == 10
    assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 10


# --- Fencing: an offer runs on one agent, and only the current offer's result applies ----------------------------


async def offer(lifecycle: TaskLifecycle, task: Task, name: str, agent_id: str) -> SubTask:
    """The dispatcher's claim of the subtask's queued attempt for `agent_id`: a new offer, a new token."""
    [claimed] = await lifecycle.claim([(subtask_id(task, name), 1, agent_id)])
    assert claimed.subtask.delivery_token is not None
    return claimed.subtask


async def stored(lifecycle: TaskLifecycle, plan: dict[str, list[str]]) -> Task:
    task = build_planned_task(plan)
    await lifecycle.submit(task)
    return task


async def test_an_offer_given_up_on_goes_to_another_agent_and_the_late_one_cannot_run_it(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    """The stalled agent: the dispatcher's POST timed out, the attempt went to agent2, then agent1 woke up."""
    repos = db.repositories()
    task = await stored(lifecycle, {"a": []})
    stale = await offer(lifecycle, task, "a", "agent1")

    assert await lifecycle.release_unaccepted(
        [(stale.id, stale.delivery_token or "")]
    )  # nobody accepted it: taken back
    current = await offer(lifecycle, task, "a", "agent2")
    assert current.attempt_count == stale.attempt_count == 1  # a delivery that never ran is no failed attempt
    assert not await repos.subtasks.accept_delivery(stale.id, stale.delivery_token or "", "agent1")
    assert await repos.subtasks.accept_delivery(current.id, current.delivery_token or "", "agent2")


async def test_an_offer_accepted_while_the_dispatcher_gave_up_stays_with_its_agent(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    task = await stored(lifecycle, {"a": []})
    offered = await offer(lifecycle, task, "a", "agent1")
    assert await db.repositories().subtasks.accept_delivery(offered.id, offered.delivery_token or "", "agent1")

    assert not await lifecycle.release_unaccepted(
        [(offered.id, offered.delivery_token or "")]
    )  # the agent runs it: no second offer
    assert await lifecycle.claim([(offered.id, 1, "agent2")]) == []


@pytest.mark.parametrize("stale_first", [True, False], ids=["stale report first", "stale report last"])
async def test_only_the_current_offer_s_result_applies(
    lifecycle: TaskLifecycle, db: DatabaseManager, stale_first: bool
) -> None:
    repos = db.repositories()
    task = await stored(lifecycle, {"a": []})
    stale = await offer(lifecycle, task, "a", "agent1")
    await lifecycle.release_unaccepted([(stale.id, stale.delivery_token or "")])
    current = await offer(lifecycle, task, "a", "agent2")
    stale_report = build_result(stale, agent_id="agent1", output="the stalled agent's answer")
    current_report = build_result(current, agent_id="agent2", output="the running agent's answer")

    reports = [stale_report, current_report] if stale_first else [current_report, stale_report]
    outcomes = [await lifecycle.apply_results([report]) for report in reports]

    applied = [result for outcome in outcomes for result in outcome.applied]
    assert [result.agent_id for result in applied] == ["agent2"]
    detail = await repos.tasks.get_task_detail(task.id, applied_only=True)
    assert detail is not None and detail[0].status is TaskStatus.COMPLETED
    assert [result.output for result in detail[1]] == ["the running agent's answer"]


async def test_a_result_without_the_offer_s_token_never_applies(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    task = await stored(lifecycle, {"a": []})
    offered = await offer(lifecycle, task, "a", "agent1")

    outcome = await lifecycle.apply_results([build_result(offered, delivery_token=None)])

    assert outcome.applied == [] and outcome.rejected == {}  # on record, changing nothing
    assert await statuses(db.repositories(), task) == {"a": SubTaskStatus.RUNNING}


# --- The loops' iterations, one at a time -------------------------------------------------------------------------


async def test_a_recovery_iteration_requeues_what_redis_lost_and_retries_work_of_vanished_agents(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await stored(lifecycle, {"lost": [], "stranded": []})
    [lost_item] = [
        item
        for item in await test_redis.task_queue.waiting_and_inflight()
        if QueuedSubtask.model_validate_json(item).subtask_id == subtask_id(task, "lost")
    ]
    await test_redis.task_queue.remove(lost_item)  # Redis lost it
    await offer(lifecycle, task, "stranded", "agent-gone")  # on an agent this registry never saw
    recovery = RecoveryService(lifecycle, test_redis, consumer_ids=[])

    await recovery.run_once()

    states = {s.id.removeprefix(f"{task.id}_"): (s.status, s.attempt_count) for s in await lifecycle_subtasks(db, task)}
    assert states == {"lost": (SubTaskStatus.QUEUED, 1), "stranded": (SubTaskStatus.QUEUED, 2)}
    restored_and_retried = {(subtask_id(task, "lost"), 1), (subtask_id(task, "stranded"), 2)}
    assert restored_and_retried <= await test_redis.queued_task_items()  # beside the stale item of attempt 1


async def test_a_dispatcher_iteration_takes_queued_work_into_its_backlog_and_holds_it_in_flight(
    lifecycle: TaskLifecycle, test_redis: RedisManager
) -> None:
    task = await stored(lifecycle, {"a": [], "b": []})
    dispatcher = Dispatcher(lifecycle, test_redis)

    await dispatcher.run_once()

    assert dispatcher.match() == 0  # no agent registered: nothing can be offered
    inflight = await test_redis.task_queue.inflight(dispatcher.consumer_id)
    assert sorted(QueuedSubtask.model_validate_json(item).subtask_id for item in inflight) == sorted(
        subtask_id(task, name) for name in ("a", "b")
    )


async def lifecycle_subtasks(db: DatabaseManager, task: Task) -> list[SubTask]:
    return await db.repositories().subtasks.list_for_task(task.id)
