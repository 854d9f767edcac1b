"""Server-side history on the real PostgreSQL and Redis, its rows written by the task lifecycle as in production:
per-minute buckets, attempt timelines, and agent records that outlive the agents, each within its tenant."""

from datetime import timedelta
from itertools import pairwise

from orchestrator.agent_sightings import AgentSightings
from orchestrator.fleet_history import agent_histories
from orchestrator.fleet_view import AgentDirectory
from orchestrator.lifecycle import TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, AgentStatus, DecompositionInfo, ResultStatus, SubTask, Task
from shared.redis_manager import RedisManager
from tests.factories import build_planned_task, build_result, subtask_id

FAILED = ResultStatus.FAILED


async def run(lifecycle: TaskLifecycle, subtask: str, attempt: int, agent_id: str, **outcome: object) -> SubTask:
    """Claim the attempt on `agent_id`, then apply the result it reports (`outcome`: its fields)."""
    [claimed] = await lifecycle.claim([(subtask, attempt, agent_id)])
    result = build_result(claimed.subtask, attempt=attempt, agent_id=agent_id, **outcome)
    applied = await lifecycle.apply_results([result])
    assert applied.applied == [result]
    return claimed.subtask


async def retried_then_completed(lifecycle: TaskLifecycle) -> Task:
    """A task whose subtask a fails on agent1 (retryable) and completes on agent2, and whose b waits on the queue."""
    task = build_planned_task({"a": [], "b": []})
    await lifecycle.submit(task)
    a = subtask_id(task, "a")
    await run(lifecycle, a, 1, "agent1", status=FAILED, error="the API timed out", retryable=True, cost_usd=0.25)
    await run(lifecycle, a, 2, "agent2", cost_usd=0.5)
    return task


async def test_minute_buckets_count_results_tasks_costs_and_the_queue(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    repos = db.repositories()
    await retried_then_completed(lifecycle)
    single = build_planned_task({"only": []}, decomposition=DecompositionInfo(cost_usd=0.0625))
    await lifecycle.submit(single)
    await run(lifecycle, subtask_id(single, "only"), 1, "agent1", cost_usd=0.125)

    buckets = await repos.history.minute_buckets(5)

    assert len(buckets) == 5
    assert [later.minute - earlier.minute for earlier, later in pairwise(buckets)] == [timedelta(minutes=1)] * 4
    totals = {
        field: sum(getattr(bucket, field) for bucket in buckets)
        for field in ("subtasks_completed", "subtasks_failed", "tasks_completed", "tasks_failed", "cost_usd")
    }
    assert totals == {
        "subtasks_completed": 2,
        "subtasks_failed": 1,
        "tasks_completed": 1,
        "tasks_failed": 0,
        "cost_usd": 0.9375,  # the results' and the decomposition's
    }
    busy = [bucket for bucket in buckets if bucket.subtasks_completed + bucket.subtasks_failed]
    assert busy and all(bucket.latency_p50_ms is not None and bucket.latency_p95_ms is not None for bucket in busy)
    for bucket in busy:
        assert bucket.failure_rate == bucket.subtasks_failed / (bucket.subtasks_completed + bucket.subtasks_failed)
    # Results came in one minute or two (across a minute's end): at least three of five minutes are empty.
    empty = [bucket for bucket in buckets if bucket not in busy]
    assert len(empty) >= 3
    assert all(
        (bucket.latency_p50_ms, bucket.latency_p95_ms, bucket.failure_rate, bucket.cost_usd) == (None, None, None, 0)
        for bucket in empty
    )
    assert buckets[-1].queue_depth == 1  # b waits; every other attempt was handed to an agent
    assert buckets[0].queue_depth == 0  # four minutes ago nothing had been queued


async def test_the_timeline_shows_each_attempt_with_its_waits_and_the_one_under_way(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    task = await retried_then_completed(lifecycle)

    timeline = await db.repositories().attempts.task_timeline(task.id)

    assert timeline is not None
    assert [(item.subtask_id, item.attempt, item.agent_id, item.status) for item in timeline] == [
        (subtask_id(task, "a"), 1, "agent1", "failed"),
        (subtask_id(task, "a"), 2, "agent2", "completed"),
        (subtask_id(task, "b"), 1, None, "queued"),
    ]
    first, second, waiting = timeline
    assert first.error == "the API timed out" and second.error is None
    for finished in (first, second):
        assert None not in (finished.queued_at, finished.assigned_at, finished.started_at, finished.ended_at)
        assert None not in (finished.wait_ms, finished.run_ms)
        assert finished.queued_at <= finished.assigned_at  # type: ignore[operator]
    assert first.assigned_at <= second.queued_at  # type: ignore[operator]  # the retry queued the second attempt
    assert (waiting.assigned_at, waiting.started_at, waiting.ended_at, waiting.run_ms) == (None, None, None, None)
    assert waiting.queued_at is not None and waiting.wait_ms is not None


async def test_a_cancelled_attempt_ends_when_it_was_cancelled(lifecycle: TaskLifecycle, db: DatabaseManager) -> None:
    task = build_planned_task({"a": [], "b": []})
    await lifecycle.submit(task)
    await lifecycle.claim([(subtask_id(task, "a"), 1, "agent1")])
    await lifecycle.cancel(task.id)

    timeline = await db.repositories().attempts.task_timeline(task.id)

    assert timeline is not None
    assert [(item.attempt, item.agent_id, item.status, item.run_ms) for item in timeline] == [
        (1, "agent1", "cancelled", None),  # it was running
        (1, None, "cancelled", None),  # it was waiting
    ]
    assert all(item.ended_at is not None and item.wait_ms is not None for item in timeline)
    assert (timeline[0].assigned_at is not None, timeline[1].assigned_at) == (True, None)


async def test_an_agents_attempts_are_listed_newest_first_with_the_running_one_on_top(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    task = await retried_then_completed(lifecycle)
    await lifecycle.claim([(subtask_id(task, "b"), 1, "agent2")])

    attempts = await db.repositories().attempts.agent_attempts("agent2", limit=50)

    assert [(item.subtask_id, item.attempt, item.status) for item in attempts] == [
        (subtask_id(task, "b"), 1, "running"),
        (subtask_id(task, "a"), 2, "completed"),
    ]
    assert [item.subtask_id for item in await db.repositories().attempts.agent_attempts("agent2", limit=1)] == [
        subtask_id(task, "b")
    ]


def registered(agent_id: str, *capabilities: AgentCapability) -> AgentStatus:
    return AgentStatus(
        agent_id=agent_id, url="http://127.0.0.1:9", port=8001, is_available=True, capabilities=capabilities
    )


async def test_an_agent_that_is_gone_or_restarted_keeps_its_record(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager, orchestrator_settings: Settings
) -> None:
    sightings = AgentSightings(db)
    directory = AgentDirectory(test_redis, orchestrator_settings.heartbeat_ttl_seconds, sightings)
    for agent in (
        registered("agent1", AgentCapability.DATA_ANALYSIS),
        registered("agent2", AgentCapability.DATA_ANALYSIS),
    ):
        await test_redis.register_agent(agent)
    await directory.refresh()
    await sightings.written()
    await retried_then_completed(lifecycle)
    await test_redis.registry.deregister_agent("agent1")  # it died
    await test_redis.register_agent(registered("agent3", AgentCapability.CODE_GENERATION))  # new, never sighted

    gone = {record.agent_id: record for record in await agent_histories(db, test_redis)}
    await test_redis.register_agent(registered("agent1", AgentCapability.DATA_ANALYSIS))  # it restarted
    back = {record.agent_id: record for record in await agent_histories(db, test_redis)}

    assert list(gone) == ["agent1", "agent2", "agent3"]
    agent1 = gone["agent1"]
    assert (agent1.alive, agent1.subtasks_completed, agent1.subtasks_failed) == (False, 0, 1)
    assert (agent1.last_error, agent1.capabilities) == ("the API timed out", ["DATA_ANALYSIS"])
    assert (gone["agent2"].alive, gone["agent2"].subtasks_completed, gone["agent2"].last_error) == (True, 1, None)
    assert (gone["agent3"].alive, gone["agent3"].subtasks_completed, gone["agent3"].capabilities) == (
        True,
        0,
        ["CODE_GENERATION"],
    )
    assert (back["agent1"].alive, back["agent1"].subtasks_failed, back["agent1"].first_seen) == (
        True,
        1,
        agent1.first_seen,
    )


async def test_an_agent_never_seen_in_the_registry_has_a_record_from_its_results(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    await retried_then_completed(lifecycle)  # neither agent was ever read from the registry

    records = await agent_histories(db, test_redis)

    assert [(r.agent_id, r.alive, r.subtasks_completed, r.subtasks_failed, r.capabilities) for r in records] == [
        ("agent1", False, 0, 1, []),
        ("agent2", False, 1, 0, []),
    ]
    assert all(record.first_seen <= record.last_seen for record in records)


async def test_sightings_are_written_once_a_minute_or_on_a_change(db: DatabaseManager) -> None:
    sightings = AgentSightings(db)
    agent = registered("agent1", AgentCapability.DATA_ANALYSIS)

    async def recorded() -> tuple[object, ...]:
        row = await db.pool.fetchrow("SELECT capabilities, last_seen FROM agents_seen WHERE agent_id = 'agent1'")
        return tuple(row) if row else ()

    sightings.note([agent])
    await sightings.written()
    first = await recorded()
    sightings.note([agent.model_copy(update={"last_heartbeat": agent.last_heartbeat + timedelta(seconds=10)})])
    await sightings.written()
    unchanged = await recorded()
    later = agent.last_heartbeat + timedelta(minutes=1)
    sightings.note([agent.model_copy(update={"last_heartbeat": later})])
    await sightings.written()
    refreshed = await recorded()
    sightings.note([agent.model_copy(update={"last_heartbeat": later, "capabilities": [AgentCapability.WEB_SCRAPING]})])
    await sightings.written()
    changed = await recorded()

    assert first == (["DATA_ANALYSIS"], agent.last_heartbeat) == unchanged
    assert refreshed == (["DATA_ANALYSIS"], later)
    assert changed == (["WEB_SCRAPING"], later)


async def test_another_tenant_sees_none_of_it(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager, orchestrator_settings: Settings
) -> None:
    sightings = AgentSightings(db)
    await test_redis.register_agent(registered("agent1", AgentCapability.DATA_ANALYSIS))
    await AgentDirectory(test_redis, orchestrator_settings.heartbeat_ttl_seconds, sightings).refresh()
    await sightings.written()
    task = await retried_then_completed(lifecycle)
    await test_redis.registry.deregister_agent("agent1")
    other = Repositories(db.pool, "another-tenant")

    buckets = await other.history.minute_buckets(5)

    assert await other.attempts.task_timeline(task.id) is None
    assert await other.attempts.agent_attempts("agent1", 50) == []
    assert await other.agent_records.agent_histories([]) == []  # agent1 ran none of its work and is gone
    assert {
        (b.subtasks_completed, b.subtasks_failed, b.tasks_completed, b.queue_depth, b.cost_usd) for b in buckets
    } == {(0, 0, 0, 0, 0)}
