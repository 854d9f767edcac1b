"""The lifecycle publishes each transition's events once it commits, with full payloads and the task's trace id, on
the tenant's stream and the task's own (the real PostgreSQL and Redis, no HTTP): a task's stream tells its story in
order and ends with the task; a result that changes nothing publishes nothing; events Redis cannot take are dropped
with one warning, and hold up nothing."""

from typing import Any

from structlog.testing import capture_logs

from orchestrator.fleet_view import FleetView
from orchestrator.lifecycle import TaskLifecycle
from shared.config import Settings
from shared.database import DatabaseManager
from shared.follow_up import AttemptCredential, FollowUpSubtask
from shared.models import AgentCapability, ProviderWait, ReportedResult, ResultStatus, SubTask, Task, TokenUsage
from shared.redis import EventType, StreamedEvent
from shared.redis_manager import RedisManager
from tests.events_contract import contract_problems, kinds, task_stream, tenant_stream
from tests.factories import build_planned_task, build_result, current_result, run_attempt, subtask_id
from tests.integration.orchestrator.test_attempt_output import written

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
FAILED = ResultStatus.FAILED
AGENT_FAILED = EventType.AGENT_FAILED


async def told(redis: RedisManager, task: Task) -> list[StreamedEvent]:
    """The task's stream, each event checked against the contract and carrying the task's trace id."""
    events = await task_stream(redis, task.id)
    for streamed in events:
        assert contract_problems(streamed) == []
        assert (streamed.event.task_id, streamed.event.trace_id) == (task.id, TRACE_ID)
    return events


def names(task: Task, events: list[StreamedEvent]) -> list[str]:
    """`kinds` with the subtask ids shortened to their plan names."""
    return [kind.replace(f"{task.id}_", "") for kind in kinds(events)]


def data(events: list[StreamedEvent], event_type: EventType) -> list[dict[str, Any]]:
    return [dict(item.event.data) for item in events if item.event.event_type is event_type]


async def submitted(lifecycle: TaskLifecycle, plan: dict[str, list[str]]) -> Task:
    task = build_planned_task(plan, trace_id=TRACE_ID, user_id="ana")
    await lifecycle.submit(task)
    return task


async def offered(db: DatabaseManager, task: Task, name: str, agent_id: str = "agent1") -> SubTask:
    return await run_attempt(db.repositories(), subtask_id(task, name), agent_id=agent_id)


async def test_a_submit_tells_the_task_its_plan_and_the_attempts_it_queued(
    lifecycle: TaskLifecycle, test_redis: RedisManager
) -> None:
    task = await submitted(lifecycle, {"a": [], "b": ["a"]})

    events = await told(test_redis, task)
    assert names(task, events) == ["TASK_SUBMITTED", "TASK_PLANNED", "SUBTASK_QUEUED a"]
    assert events[0].event.data == {
        "description": task.description,
        "user_id": "ana",
        "task_type": "GENERAL",
        "context_pack_id": None,
    }
    planned = events[1].event.data
    assert [(s["id"], s["dependencies"]) for s in planned["subtasks"]] == [
        (subtask_id(task, "a"), []),
        (subtask_id(task, "b"), [subtask_id(task, "a")]),
    ]
    assert planned["fallback_used"] is False
    assert events[2].event.data["attempt"] == 1
    assert events[2].event.data["required_capabilities"] == [AgentCapability.DATA_ANALYSIS.value]
    assert [item.event for item in await tenant_stream(test_redis)] == [item.event for item in events]


async def test_completions_tell_their_results_then_what_they_made_ready_and_the_task_s_end_comes_last(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await submitted(lifecycle, {"a": [], "b": ["a"]})
    usage = TokenUsage(input_tokens=120, output_tokens=30)
    running = await offered(db, task, "a")
    await lifecycle.apply_results(
        [build_result(running, output="Q4=151000", token_usage=usage, cost_usd=0.002, num_turns=2)]
    )
    running = await offered(db, task, "b", agent_id="agent2")
    await lifecycle.apply_results([build_result(running, agent_id="agent2", output="report written")])

    events = await told(test_redis, task)
    assert names(task, events)[2:] == [
        "SUBTASK_QUEUED a",
        "AGENT_COMPLETED a",
        "SUBTASK_QUEUED b",
        "AGENT_COMPLETED b",
        "TASK_COMPLETED",
    ]
    first, _ = data(events, EventType.AGENT_COMPLETED)
    assert first == {
        "agent_id": "agent1",
        "attempt": 1,
        "output": "Q4=151000",
        "token_usage": usage.model_dump(),
        "cost_usd": 0.002,
        "num_turns": 2,
        "execution_time": 0.25,
        "simulated": False,
        "artifacts": [],
    }
    [ended] = data(events, EventType.TASK_COMPLETED)
    assert [entry["output"] for entry in ended["result"]["outputs"]] == ["Q4=151000", "report written"]


async def test_a_completion_references_the_artifacts_its_attempt_made(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await submitted(lifecycle, {"a": []})
    running = await offered(db, task, "a")
    written(lifecycle, running, {"report.md": "# Report", "tables/q1.csv": "a,b"})

    outcome = await lifecycle.apply_results([build_result(running)])

    [completed] = data(await told(test_redis, task), EventType.AGENT_COMPLETED)
    told_refs = {ref["name"]: ref for ref in completed["artifacts"]}
    assert told_refs == {ref.name: ref.model_dump(mode="json") for ref in outcome.artifacts[(running.id, 1)]}
    assert {name: ref["type"] for name, ref in told_refs.items()} == {"report.md": "report", "tables/q1.csv": "data"}


async def test_a_retryable_failure_tells_that_it_will_be_retried_and_queues_the_next_attempt(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await submitted(lifecycle, {"a": []})
    running = await offered(db, task, "a")

    await lifecycle.apply_results([build_result(running, status=FAILED, retryable=True, error="the tool crashed")])

    events = await told(test_redis, task)
    assert names(task, events)[3:] == ["AGENT_FAILED a", "SUBTASK_RETRIED a", "SUBTASK_QUEUED a"]
    [failure] = data(events, EventType.AGENT_FAILED)
    assert failure == {
        "agent_id": "agent1",
        "attempt": 1,
        "error": "the tool crashed",
        "retryable": True,
        "will_retry": True,
        "execution_time": 0.25,
        "provider_wait": None,
    }
    assert data(events, EventType.SUBTASK_RETRIED) == [{"attempt": 2, "failed_agent_ids": ["agent1"]}]
    assert [d["attempt"] for d in data(events, EventType.SUBTASK_QUEUED)] == [1, 2]


async def test_a_provider_wait_tells_it_and_queues_the_same_attempt_with_its_time(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await submitted(lifecycle, {"a": []})
    running = await offered(db, task, "a")
    wait = ProviderWait(kind="rate_limited", retry_after_seconds=20)

    await lifecycle.apply_results(
        [build_result(running, status=FAILED, retryable=True, error="Claude API error 429", provider_wait=wait)]
    )

    events = await told(test_redis, task)
    assert names(task, events)[3:] == ["AGENT_FAILED a", "SUBTASK_QUEUED a"]  # no SUBTASK_RETRIED: no new attempt
    [failure] = data(events, EventType.AGENT_FAILED)
    assert failure["provider_wait"] == {"kind": "rate_limited", "retry_after_seconds": 20.0}
    assert failure["will_retry"] is True
    first, again = data(events, EventType.SUBTASK_QUEUED)
    assert (first["attempt"], first["not_before"], again["attempt"]) == (1, None, 1)
    waiting = await db.repositories().subtasks.get_subtask(running.id)
    assert waiting is not None and waiting.not_before is not None
    assert again["not_before"] == waiting.not_before.isoformat()


async def test_a_last_attempt_s_failure_blocks_every_dependent_and_fails_the_task(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager, orchestrator_settings: Settings
) -> None:
    task = await submitted(lifecycle, {"a": [], "b": ["a"], "c": ["b"]})
    for attempt in range(1, orchestrator_settings.max_retries + 1):
        running = await offered(db, task, "a", agent_id=f"agent{attempt}")
        failure = build_result(running, attempt=attempt, agent_id=f"agent{attempt}", status=FAILED, retryable=True)
        await lifecycle.apply_results([failure])

    events = await told(test_redis, task)
    assert names(task, events)[-5:] == [
        "SUBTASK_QUEUED a",
        "AGENT_FAILED a",
        "SUBTASK_BLOCKED b",
        "SUBTASK_BLOCKED c",
        "TASK_FAILED",
    ]
    assert [d["will_retry"] for d in data(events, EventType.AGENT_FAILED)] == [True, True, False]
    assert data(events, EventType.SUBTASK_BLOCKED) == [{"blocked_by": subtask_id(task, "a")}] * 2
    [ended] = data(events, EventType.TASK_FAILED)
    assert "it broke" in ended["error"]


async def test_a_late_duplicate_stale_or_forged_result_publishes_nothing(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await submitted(lifecycle, {"a": [], "b": []})
    genuine = build_result(await offered(db, task, "a"))
    await lifecycle.apply_results([genuine])
    running_b = await offered(db, task, "b")
    before = await tenant_stream(test_redis)

    forged = genuine.model_copy(update={"subtask_id": f"{task.id}_forged", "result_id": "forged"})
    stale = build_result(running_b, delivery_token="an earlier offer's token")
    outcome = await lifecycle.apply_results([genuine, stale, forged])  # genuine: delivered again

    assert outcome.applied == [] and list(outcome.rejected) == [2]
    assert await tenant_stream(test_redis) == before


async def test_a_stranded_attempt_and_a_handed_back_one_publish_their_failure_with_the_reason(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await submitted(lifecycle, {"a": [], "b": []})
    stranded = await offered(db, task, "a", agent_id="agent-gone")
    await offered(db, task, "b", agent_id="agent-failed")

    await lifecycle.fail_stranded([(stranded, "agent agent-gone stopped heartbeating")])
    await lifecycle.hand_back("agent-failed", "declared failed by an operator")

    events = await told(test_redis, task)
    failures = {item.event.subtask_id: item.event.data for item in events if item.event.event_type is AGENT_FAILED}
    assert failures[subtask_id(task, "a")]["error"] == "agent agent-gone stopped heartbeating"
    assert failures[subtask_id(task, "a")]["agent_id"] == "agent-gone"
    assert failures[subtask_id(task, "b")]["error"] == "declared failed by an operator"
    assert all(failure["will_retry"] and failure["retryable"] for failure in failures.values())
    assert names(task, events).count("SUBTASK_RETRIED a") == names(task, events).count("SUBTASK_RETRIED b") == 1


async def test_a_cancel_tells_each_unfinished_subtask_then_the_task_and_a_later_result_tells_nothing(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await submitted(lifecycle, {"a": [], "b": ["a"]})
    running = await offered(db, task, "a")

    await lifecycle.cancel(task.id)
    await lifecycle.apply_results([build_result(running)])

    events = await told(test_redis, task)
    assert names(task, events)[3:] == ["SUBTASK_CANCELLED a", "SUBTASK_CANCELLED b", "TASK_CANCELLED"]
    assert events[-1].event.data == {"error": "cancelled by request"}


async def test_a_follow_up_is_told_once_and_queued_when_its_dependencies_are_done(
    lifecycle: TaskLifecycle, db: DatabaseManager, test_redis: RedisManager
) -> None:
    task = await submitted(lifecycle, {"a": []})
    running = await offered(db, task, "a")
    signed = build_result(running)  # signed for the test's fleet, like the offer the agent holds
    assert isinstance(signed, ReportedResult) and signed.assignment and running.delivery_token
    by = AttemptCredential(
        task_id=task.id,
        subtask_id=running.id,
        attempt=1,
        delivery_token=running.delivery_token,
        agent_id="agent1",
        assignment=signed.assignment,
    )
    follow_up = FollowUpSubtask(
        id=f"{task.id}_tally", description="Tally the ledger", required_capabilities=[AgentCapability.DATA_ANALYSIS]
    )

    await lifecycle.add_follow_up(by, follow_up)
    await lifecycle.add_follow_up(by, follow_up)  # the agent's retry of the same request

    events = await told(test_redis, task)
    assert names(task, events)[3:] == ["SUBTASK_ADDED tally", "SUBTASK_QUEUED tally"]
    [added] = data(events, EventType.SUBTASK_ADDED)
    assert added["added_by"] == {"subtask_id": running.id, "attempt": 1}
    assert added["description"] == "Tally the ledger"


async def test_events_redis_cannot_take_are_dropped_with_one_warning_and_the_results_still_apply(
    orchestrator_settings: Settings, db: DatabaseManager, test_redis: RedisManager, unreachable_redis: RedisManager
) -> None:
    fleet = FleetView.of(test_redis, orchestrator_settings.heartbeat_ttl_seconds)
    task = await submitted(TaskLifecycle(orchestrator_settings, db, test_redis, fleet), {"a": [], "b": []})
    repos = db.repositories()
    for name in ("a", "b"):
        await offered(db, task, name)
    cut_off = TaskLifecycle(orchestrator_settings, db, unreachable_redis, fleet)

    with capture_logs() as logs:
        outcome = await cut_off.apply_results([await current_result(repos, task, name) for name in ("a", "b")])

    assert len(outcome.applied) == 2 and outcome.finished == {task.id: "completed"}
    [dropped] = [line for line in logs if line["event"] == "events_dropped"]
    assert dropped["log_level"] == "warning" and dropped["count"] == 3  # two completions and the task's end
    assert names(task, await told(test_redis, task)) == [
        "TASK_SUBMITTED",
        "TASK_PLANNED",
        "SUBTASK_QUEUED a",
        "SUBTASK_QUEUED b",
    ]
