"""The subtask state machine on the real server: each transition names the state and attempt it leaves.

A transition whose precondition no longer holds (a duplicate, late or racing caller) finds no row and
changes nothing; the race tests run two real transactions against each other.
"""

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from shared.database import DatabaseManager, Repositories
from shared.models import RunningAttempt, StatusReason, SubTask, SubTaskStatus, Task, TaskStatus
from tests.factories import build_planned_task, build_result, run_attempt, subtask_id

COMPLETED = SubTaskStatus.COMPLETED
FAILED = SubTaskStatus.FAILED


async def store(db: DatabaseManager, plan: dict[str, list[str]], *, queue: bool = True) -> Task:
    """Store a task with this plan and, unless told otherwise, queue its ready subtasks."""
    task = await db.repositories().tasks.create_task(build_planned_task(plan))
    if queue:
        await db.repositories().subtasks.queue_ready(task.id)
    return task


async def states(repos: Repositories, task: Task) -> dict[str, tuple[SubTaskStatus, int]]:
    """Each subtask's (status, attempt_count), keyed by its name in the plan."""
    prefix = f"{task.id}_"
    return {
        subtask.id.removeprefix(prefix): (subtask.status, subtask.attempt_count)
        for subtask in await repos.subtasks.list_for_task(task.id)
    }


async def current(repos: Repositories, task: Task, name: str) -> SubTask:
    subtask = await repos.subtasks.get_subtask(subtask_id(task, name))
    assert subtask is not None
    return subtask


def names(task: Task, subtasks: list[SubTask] | list[str]) -> list[str]:
    prefix = f"{task.id}_"
    return [(item if isinstance(item, str) else item.id).removeprefix(prefix) for item in subtasks]


# --- Queueing -------------------------------------------------------------------------------------------------------


async def test_queue_ready_waits_for_every_dependency_to_complete(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": [], "b": [], "c": ["a", "b"], "d": ["c"]}, queue=False)

    assert sorted(names(task, await repos.subtasks.queue_ready(task.id))) == ["a", "b"]
    assert await states(repos, task) == {
        "a": (SubTaskStatus.QUEUED, 1),
        "b": (SubTaskStatus.QUEUED, 1),
        "c": (SubTaskStatus.PENDING, 0),
        "d": (SubTaskStatus.PENDING, 0),
    }

    await run_attempt(repos, subtask_id(task, "a"), finish=COMPLETED)
    assert await repos.subtasks.queue_ready(task.id) == []  # c still waits on b

    await run_attempt(repos, subtask_id(task, "b"), finish=COMPLETED)
    assert names(task, await repos.subtasks.queue_ready(task.id)) == ["c"]
    assert await repos.subtasks.queue_ready(task.id) == []
    assert (await states(repos, task))["c"] == (SubTaskStatus.QUEUED, 1)
    assert (await states(repos, task))["d"] == (SubTaskStatus.PENDING, 0)


async def test_a_failed_dependency_does_not_count_as_done(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": [], "b": ["a"]})

    await run_attempt(repos, subtask_id(task, "a"), finish=FAILED)

    assert await repos.subtasks.queue_ready(task.id) == []


async def test_queue_ready_returns_higher_priority_first(db: DatabaseManager) -> None:
    task = build_planned_task({"low": [], "high": [], "middle": []})
    for subtask, priority in zip(task.subtasks, [1, 9, 5], strict=True):
        subtask.priority = priority
    await db.repositories().tasks.create_task(task)

    queued = await db.repositories().subtasks.queue_ready(task.id)

    assert names(task, queued) == ["high", "middle", "low"]


async def test_queue_ready_leaves_other_tasks_alone(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []}, queue=False)
    other = await store(db, {"a": []}, queue=False)

    await repos.subtasks.queue_ready(task.id)

    assert await states(repos, other) == {"a": (SubTaskStatus.PENDING, 0)}


# --- Claiming -------------------------------------------------------------------------------------------------------


async def test_claim_takes_only_the_queued_current_attempt(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": [], "b": ["a"]})
    a, b = subtask_id(task, "a"), subtask_id(task, "b")

    assert await repos.subtasks.claim(b, 0, "agent1") is None  # pending
    assert await repos.subtasks.claim(a, 2, "agent1") is None  # not the current attempt
    claimed = await repos.subtasks.claim(a, 1, "agent7")
    assert await repos.subtasks.claim(a, 1, "agent8") is None  # already running

    assert claimed is not None
    assert (claimed.status, claimed.attempt_count, claimed.assigned_agent) == (SubTaskStatus.RUNNING, 1, "agent7")
    assert claimed.assigned_at is not None and claimed.assigned_at >= claimed.created_at
    assert await current(repos, task, "a") == claimed


async def test_claim_records_the_latency_since_queueing(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    await db.pool.execute(
        "UPDATE subtasks SET queued_at = queued_at - interval '2 seconds' WHERE id = $1", subtask_id(task, "a")
    )

    claimed = await repos.subtasks.claim(subtask_id(task, "a"), 1, "agent1")

    assert claimed is not None and claimed.assignment_latency_ms is not None
    assert claimed.assignment_latency_ms >= 2000  # milliseconds, measured from queued_at


async def test_unclaim_puts_the_same_attempt_back_in_the_queue(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    a = subtask_id(task, "a")
    offered = await run_attempt(repos, a, agent_id="agent1")
    assert offered.delivery_token is not None

    assert await repos.subtasks.unclaim(a, "another offer's token") is None
    unclaimed = await repos.subtasks.unclaim(a, offered.delivery_token)
    assert await repos.subtasks.unclaim(a, offered.delivery_token) is None  # already back in the queue

    assert unclaimed is not None
    assert (unclaimed.status, unclaimed.attempt_count) == (SubTaskStatus.QUEUED, 1)
    assert (unclaimed.assigned_agent, unclaimed.assigned_at, unclaimed.failed_agent_ids) == (None, None, [])
    assert unclaimed.delivery_token is None
    reclaimed = await repos.subtasks.claim(a, 1, "agent2")
    assert reclaimed is not None and reclaimed.assigned_agent == "agent2"
    assert reclaimed.delivery_token not in (None, offered.delivery_token)  # a new offer, a new identity


async def test_an_offer_is_taken_back_for_the_agent_it_was_made_to_only(db: DatabaseManager) -> None:
    """A refusal names its agent: one naming another (forged, or confused) takes nothing back."""
    repos = db.repositories()
    task = await store(db, {"a": []})
    a = subtask_id(task, "a")
    offered = await run_attempt(repos, a, agent_id="agent1")
    token = offered.delivery_token or ""

    assert await repos.subtasks.unclaim_many([(a, token)], offered_to=["agent2"]) == []
    [released] = await repos.subtasks.unclaim_many([(a, token)], offered_to=["agent1"])
    assert (released.id, released.status) == (a, SubTaskStatus.QUEUED)


async def test_an_offer_is_accepted_once_by_its_own_agent_and_then_cannot_be_taken_back(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    a = subtask_id(task, "a")
    offered = await run_attempt(repos, a, agent_id="agent1")
    token = offered.delivery_token
    assert token is not None

    assert not await repos.subtasks.accept_delivery(a, token, "agent2")  # offered to agent1, not agent2
    assert not await repos.subtasks.accept_delivery(a, "a stale offer's token", "agent1")
    assert await repos.subtasks.accept_delivery(a, token, "agent1")
    assert not await repos.subtasks.accept_delivery(a, token, "agent1")  # the same request again

    assert await repos.subtasks.unclaim(a, token) is None  # agent1 runs it: the dispatcher may not take it back
    assert (await current(repos, task, "a")).status is SubTaskStatus.RUNNING


async def test_an_offer_taken_back_can_no_longer_be_accepted(db: DatabaseManager) -> None:
    """The stalled agent that wakes up after its offer was taken back finds nothing to run."""
    repos = db.repositories()
    task = await store(db, {"a": []})
    a = subtask_id(task, "a")
    stale = await run_attempt(repos, a, agent_id="agent1")
    assert stale.delivery_token is not None
    await repos.subtasks.unclaim(a, stale.delivery_token)
    current_offer = await repos.subtasks.claim(a, 1, "agent1")  # even to the very same agent, a new offer
    assert current_offer is not None and current_offer.delivery_token is not None

    assert not await repos.subtasks.accept_delivery(a, stale.delivery_token, "agent1")
    assert await repos.subtasks.accept_delivery(a, current_offer.delivery_token, "agent1")


# --- Finishing and retrying -----------------------------------------------------------------------------------------


async def test_finish_needs_the_attempt_to_be_running(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    a = subtask_id(task, "a")

    assert await repos.subtasks.finish_attempt(a, 1, None, COMPLETED) is None  # queued, not running
    token = (await run_attempt(repos, a)).delivery_token
    assert await repos.subtasks.finish_attempt(a, 1, "a stale offer's token", COMPLETED) is None
    assert await repos.subtasks.finish_attempt(a, 1, None, COMPLETED) is None  # a result without a token
    finished = await repos.subtasks.finish_attempt(a, 1, token, COMPLETED)
    assert await repos.subtasks.finish_attempt(a, 1, token, FAILED) is None  # a duplicate result

    assert finished is not None and finished.status is COMPLETED
    assert (await current(repos, task, "a")).status is COMPLETED


async def test_late_result_of_a_retried_attempt_changes_nothing(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    a = subtask_id(task, "a")
    first = await run_attempt(repos, a, agent_id="agent1")
    await repos.subtasks.retry_attempt(a, 1, first.delivery_token, "agent1")

    assert await repos.subtasks.finish_attempt(a, 1, first.delivery_token, COMPLETED) is None
    assert (await current(repos, task, "a")).status is SubTaskStatus.QUEUED

    second = await run_attempt(repos, a, agent_id="agent2")
    assert await repos.subtasks.finish_attempt(a, 1, first.delivery_token, COMPLETED) is None
    assert (await current(repos, task, "a")).status is SubTaskStatus.RUNNING

    finished = await repos.subtasks.finish_attempt(a, 2, second.delivery_token, FAILED)
    assert finished is not None and (finished.status, finished.attempt_count) == (FAILED, 2)


@pytest.mark.parametrize("status", [SubTaskStatus.QUEUED, SubTaskStatus.RUNNING, SubTaskStatus.BLOCKED])
async def test_an_attempt_finishes_only_as_completed_or_failed(db: DatabaseManager, status: SubTaskStatus) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    await run_attempt(repos, subtask_id(task, "a"))

    with pytest.raises(ValueError, match="completed or failed"):
        await repos.subtasks.finish_attempt(subtask_id(task, "a"), 1, None, status)

    assert (await current(repos, task, "a")).status is SubTaskStatus.RUNNING


async def test_retry_queues_the_next_attempt_and_remembers_each_failed_agent_once(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    a = subtask_id(task, "a")

    history = []
    for agent_id in ["agent1", "agent1", "agent2"]:
        running = await run_attempt(repos, a, agent_id=agent_id)
        retry = await repos.subtasks.retry_attempt(a, running.attempt_count, running.delivery_token, agent_id)
        assert retry is not None
        retried = retry.subtask
        history.append((retried.status, retried.attempt_count, retried.failed_agent_ids))
        # The failed attempt's times come back; the subtask's now belong to the next attempt.
        assert retry.failed_attempt.assigned_at == running.assigned_at and retried.assigned_at is None

    assert history == [
        (SubTaskStatus.QUEUED, 2, ["agent1"]),
        (SubTaskStatus.QUEUED, 3, ["agent1"]),
        (SubTaskStatus.QUEUED, 4, ["agent1", "agent2"]),
    ]
    retried = await current(repos, task, "a")
    assert (retried.assigned_agent, retried.assigned_at, retried.assignment_latency_ms) == (None, None, None)


async def test_retry_needs_the_attempt_to_be_running(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    a = subtask_id(task, "a")

    assert await repos.subtasks.retry_attempt(a, 1, None, "agent1") is None  # queued, not running
    token = (await run_attempt(repos, a)).delivery_token
    assert await repos.subtasks.retry_attempt(a, 2, token, "agent1") is None  # not the running attempt
    assert await repos.subtasks.retry_attempt(a, 1, "a stale offer's token", "agent1") is None

    assert await states(repos, task) == {"a": (SubTaskStatus.RUNNING, 1)}


# --- Ending a task --------------------------------------------------------------------------------------------------


async def test_a_failure_blocks_transitive_dependents_only(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": [], "b": ["a"], "c": ["b"], "d": [], "e": ["d"], "f": ["a", "d"]})
    await run_attempt(repos, subtask_id(task, "a"), finish=FAILED)

    blocked = await repos.subtasks.block_dependents(task.id, subtask_id(task, "a"))

    assert sorted(names(task, blocked)) == ["b", "c", "f"]
    assert await states(repos, task) == {
        "a": (FAILED, 1),
        "b": (SubTaskStatus.BLOCKED, 0),
        "c": (SubTaskStatus.BLOCKED, 0),
        "d": (SubTaskStatus.QUEUED, 1),
        "e": (SubTaskStatus.PENDING, 0),
        "f": (SubTaskStatus.BLOCKED, 0),
    }
    assert await repos.subtasks.block_dependents(task.id, subtask_id(task, "a")) == []


async def test_cancel_ends_every_unfinished_subtask(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"done": [], "running": [], "queued": [], "pending": ["queued"]})
    await run_attempt(repos, subtask_id(task, "done"), finish=COMPLETED)
    running_offer = await run_attempt(repos, subtask_id(task, "running"))

    cancelled = await repos.subtasks.cancel_unfinished([task.id])

    assert sorted(names(task, [subtask.subtask_id for subtask in cancelled])) == ["pending", "queued", "running"]
    # The attempt an agent was running is named by its offer, so it can be told to stop; the rest ran nowhere.
    assert [subtask.running for subtask in cancelled if subtask.running] == [
        RunningAttempt(
            task_id=task.id,
            subtask_id=running_offer.id,
            attempt=1,
            delivery_token=running_offer.delivery_token or "",
            agent_id="agent1",
        )
    ]
    assert (await states(repos, task))["done"] == (COMPLETED, 1)
    # What an agent reports afterwards, or a dispatcher still holding the queue item, finds nothing live.
    running = await current(repos, task, "running")
    assert await repos.subtasks.finish_attempt(running.id, 1, running.delivery_token, COMPLETED) is None
    assert await repos.subtasks.claim(subtask_id(task, "queued"), 1, "agent1") is None
    assert await repos.subtasks.count_by_status(task.id) == {COMPLETED: 1, SubTaskStatus.CANCELLED: 3}


# --- What the scheduler reads ---------------------------------------------------------------------------------------


async def test_queued_and_running_subtasks_are_listed_across_tasks(db: DatabaseManager) -> None:
    repos = db.repositories()
    first = await store(db, {"a": [], "b": [], "c": ["a"]})
    second = await store(db, {"x": []})
    await run_attempt(repos, subtask_id(first, "a"), agent_id="agent3")
    retried = await run_attempt(repos, subtask_id(second, "x"))
    await repos.subtasks.retry_attempt(retried.id, 1, retried.delivery_token, "agent1")
    # Queued longest ago comes first: make the second task's subtask the oldest in the queue.
    await db.pool.execute(
        "UPDATE subtasks SET queued_at = queued_at - interval '1 minute' WHERE id = $1", subtask_id(second, "x")
    )

    queued = await repos.subtasks.list_queued()
    running = await repos.subtasks.list_running()

    assert await repos.subtasks.count_queued() == 2
    assert [(item.task_id, item.subtask_id, item.attempt) for item in queued] == [
        (second.id, subtask_id(second, "x"), 2),
        (first.id, subtask_id(first, "b"), 1),
    ]
    assert [(subtask.id, subtask.assigned_agent) for subtask in running] == [(subtask_id(first, "a"), "agent3")]


# --- Races ----------------------------------------------------------------------------------------------------------

Transition = Callable[[Repositories], Awaitable[bool]]


async def race(db: DatabaseManager, *transitions: Transition) -> list[bool]:
    """Run each transition in its own transaction, all begun before any of them writes."""
    all_open = asyncio.Barrier(len(transitions))

    async def run(transition: Transition) -> bool:
        async with db.transaction() as repos:
            await all_open.wait()
            return await transition(repos)

    return list(await asyncio.gather(*(run(transition) for transition in transitions)))


def apply_result(running: SubTask, agent_id: str) -> Transition:
    """What the result processor does with an agent's result: finish the attempt, record whether it counted."""

    async def apply(repos: Repositories) -> bool:
        finished = await repos.subtasks.finish_attempt(
            running.id, running.attempt_count, running.delivery_token, COMPLETED
        )
        result = build_result(running, attempt=running.attempt_count, agent_id=agent_id)
        await repos.results.save_subtask_result(result, applied=finished is not None)
        return finished is not None

    return apply


def retry(running: SubTask) -> Transition:
    """What recovery does with an attempt whose agent is gone."""

    async def retry_elsewhere(repos: Repositories) -> bool:
        assert running.assigned_agent is not None
        retried = await repos.subtasks.retry_attempt(
            running.id, running.attempt_count, running.delivery_token, running.assigned_agent
        )
        return retried is not None

    return retry_elsewhere


async def test_of_two_concurrent_results_for_an_attempt_exactly_one_applies(db: DatabaseManager) -> None:
    task = await store(db, {"a": []})
    repos = db.repositories()
    running = await run_attempt(repos, subtask_id(task, "a"))

    outcomes = await race(db, apply_result(running, "agent1"), apply_result(running, "agent1"))

    assert sorted(outcomes) == [False, True]
    assert len(await repos.results.get_subtask_results(task.id)) == 2  # both deliveries are on record
    assert len(await repos.results.get_subtask_results(task.id, applied_only=True)) == 1
    assert await states(repos, task) == {"a": (COMPLETED, 1)}


async def test_a_result_racing_a_retry_of_its_attempt_leaves_one_outcome(db: DatabaseManager) -> None:
    task = await store(db, {"a": []})
    repos = db.repositories()
    running = await run_attempt(repos, subtask_id(task, "a"))

    result_applied, retried = await race(db, apply_result(running, "agent1"), retry(running))

    assert result_applied != retried
    applied = await repos.results.get_subtask_results(task.id, applied_only=True)
    if result_applied:
        assert (await states(repos, task), len(applied)) == ({"a": (COMPLETED, 1)}, 1)
    else:
        assert (await states(repos, task), applied) == ({"a": (SubTaskStatus.QUEUED, 2)}, [])


async def until_another_transaction_waits_for_a_lock(db: DatabaseManager) -> None:
    """Return once a backend of this database is blocked on a lock; fail after 10 s if none ever is."""
    async with asyncio.timeout(10):
        # Only the server knows that a backend waits; asking it again and again is the one way to see it.
        while not await db.pool.fetchval(  # noqa: ASYNC110
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ):
            await asyncio.sleep(0.01)


async def test_two_dependencies_completing_together_queue_their_dependent_once(db: DatabaseManager) -> None:
    task = await store(db, {"a": [], "b": [], "c": ["a", "b"]})
    repos = db.repositories()
    tokens = {name: (await run_attempt(repos, subtask_id(task, name))).delivery_token for name in ("a", "b")}
    newly_queued: list[str] = []
    finished_first: list[str] = []

    def complete_and_queue_dependents(name: str) -> Transition:
        async def complete(repos: Repositories) -> bool:
            await repos.tasks.lock_task(task.id)
            finished = await repos.subtasks.finish_attempt(subtask_id(task, name), 1, tokens[name], COMPLETED)
            if not finished_first:
                # Force the worst interleaving: the other completion is under way before this one commits.
                finished_first.append(name)
                await until_another_transaction_waits_for_a_lock(db)
            newly_queued.extend(names(task, await repos.subtasks.queue_ready(task.id)))
            return finished is not None

        return complete

    outcomes = await race(db, complete_and_queue_dependents("a"), complete_and_queue_dependents("b"))

    assert outcomes == [True, True]
    assert newly_queued == ["c"]
    assert await states(repos, task) == {"a": (COMPLETED, 1), "b": (COMPLETED, 1), "c": (SubTaskStatus.QUEUED, 1)}


# --- Status reasons (why a queued subtask waits) --------------------------------------------------------------------

NO_SCRAPER = StatusReason(code="no_live_agent", message="waiting: no live agent with WEB_SCRAPING")


async def task_reason(repos: Repositories, task: Task) -> StatusReason | None:
    stored = await repos.tasks.get_task(task.id)
    assert stored is not None
    return stored.status_reason


async def test_a_queued_subtask_s_reason_is_stored_and_shown_on_its_task(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": [], "b": []})

    changed = await repos.subtasks.set_status_reasons([(subtask_id(task, "b"), 1, NO_SCRAPER)])

    assert names(task, changed) == ["b"]
    assert (await current(repos, task, "b")).status_reason == NO_SCRAPER
    assert (await current(repos, task, "a")).status_reason is None
    assert await task_reason(repos, task) == NO_SCRAPER
    assert [summary.status_reason for summary in await repos.tasks.list_tasks()] == [NO_SCRAPER]


async def test_setting_the_same_reason_again_changes_no_row(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    await repos.subtasks.set_status_reasons([(subtask_id(task, "a"), 1, NO_SCRAPER)])

    assert await repos.subtasks.set_status_reasons([(subtask_id(task, "a"), 1, NO_SCRAPER)]) == []


async def test_a_reason_is_not_set_on_a_claimed_or_superseded_attempt(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": [], "b": []})
    await run_attempt(repos, subtask_id(task, "a"))

    changed = await repos.subtasks.set_status_reasons(
        [(subtask_id(task, "a"), 1, NO_SCRAPER), (subtask_id(task, "b"), 2, NO_SCRAPER)]
    )

    assert changed == []
    assert await task_reason(repos, task) is None


async def test_a_claim_clears_the_subtask_s_reason_and_its_task_s_follows_the_others(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": [], "b": []})
    other_reason = StatusReason(code="dependency_unavailable", message="waiting: DISCOVERY needs x")
    await repos.subtasks.set_status_reasons(
        [(subtask_id(task, "a"), 1, NO_SCRAPER), (subtask_id(task, "b"), 1, other_reason)]
    )

    [claimed] = await repos.subtasks.claim_for_delivery([(subtask_id(task, "a"), 1, "agent2")])

    assert claimed.subtask.status_reason is None
    assert (await current(repos, task, "a")).status_reason is None
    assert await task_reason(repos, task) == other_reason  # the subtask still waiting says why
    await repos.subtasks.claim_for_delivery([(subtask_id(task, "b"), 1, "agent1")])
    assert await task_reason(repos, task) is None


async def test_clearing_the_reasons_clears_the_task_s(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    await repos.subtasks.set_status_reasons([(subtask_id(task, "a"), 1, NO_SCRAPER)])

    await repos.subtasks.set_status_reasons([(subtask_id(task, "a"), 1, None)])

    assert (await current(repos, task, "a")).status_reason is None
    assert await task_reason(repos, task) is None


async def test_cancelling_a_waiting_task_clears_its_reasons(db: DatabaseManager) -> None:
    repos = db.repositories()
    task = await store(db, {"a": []})
    await repos.subtasks.set_status_reasons([(subtask_id(task, "a"), 1, NO_SCRAPER)])

    await repos.subtasks.cancel_unfinished([task.id])
    await repos.tasks.update_task_status(task.id, TaskStatus.CANCELLED)

    assert (await current(repos, task, "a")).status_reason is None
    assert await task_reason(repos, task) is None
