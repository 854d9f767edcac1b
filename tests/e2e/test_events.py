"""Real tasks through the real fleet (SDK agents against the simulator) tell their stories on the event streams: each
task's own stream holds exactly its expected sequence, ending with the task (a task an operator retried goes on after
its failure); the tenant's stream holds the same events; every event keeps contracts/events.yaml; a late result
(after a cancel) publishes nothing."""

from collections import defaultdict
from typing import Any

import httpx
import pytest

from shared.database import DatabaseManager
from shared.redis import StreamedEvent
from shared.redis_manager import RedisManager
from tests.e2e.conftest import follow, submit
from tests.events_contract import contract_problems, task_stream, tenant_stream
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.sdk]

ONE_ATTEMPT = ["SUBTASK_QUEUED", "AGENT_STARTED", "AGENT_COMPLETED"]


async def ended_stream(redis: RedisManager, task_id: str) -> list[StreamedEvent]:
    """The task's stream once its ending event is on it (published just after the ending commits); every event on
    it keeps the contract, and each is on the tenant's stream too, in the same order."""
    events = await eventually(
        lambda: task_stream(redis, task_id), lambda found: bool(found) and found[-1].event.event_type.ends_task
    )
    problems = [problem for streamed in events for problem in contract_problems(streamed)]
    assert problems == []
    on_tenant_stream = [item.event for item in await tenant_stream(redis) if item.event.task_id == task_id]
    assert on_tenant_stream == [item.event for item in events]
    return events


def by_subtask(events: list[StreamedEvent]) -> tuple[list[str], dict[str, list[str]]]:
    """The task's own events in order, and each subtask's events in order, by description (from TASK_PLANNED)."""
    planned = next(item.event.data for item in events if item.event.event_type == "TASK_PLANNED")
    descriptions = {subtask["id"]: subtask["description"] for subtask in planned["subtasks"]}
    task_level: list[str] = []
    subtasks: dict[str, list[str]] = defaultdict(list)
    for item in events:
        if item.event.subtask_id is None:
            task_level.append(item.event.event_type.value)
        else:
            subtasks[descriptions[item.event.subtask_id]].append(item.event.event_type.value)
    return task_level, dict(subtasks)


def payloads(events: list[StreamedEvent], event_type: str) -> list[dict[str, Any]]:
    return [dict(item.event.data) for item in events if item.event.event_type == event_type]


async def test_a_completed_task_s_stream_holds_its_whole_story_in_order(
    api: httpx.AsyncClient, fleet_redis: RedisManager
) -> None:
    response = await api.post("/tasks", params={"description": "Build the quarterly sales report", "user_id": "e2e"})
    task_id, trace_id = response.json()["task_id"], response.json()["trace_id"]
    state, _ = await follow(api, task_id)
    assert state["task"]["status"] == "completed", state["task"]["error"]

    events = await ended_stream(fleet_redis, task_id)

    plan = [subtask["id"] for subtask in state["task"]["subtasks"]]
    expected = ["TASK_SUBMITTED", "TASK_PLANNED"]
    expected += [f"{kind} {subtask}" for subtask in plan for kind in ONE_ATTEMPT]
    expected += ["TASK_COMPLETED"]
    assert [" ".join(filter(None, (i.event.event_type.value, i.event.subtask_id))) for i in events] == expected
    assert {item.event.trace_id for item in events} == {trace_id}
    results = {result["subtask_id"]: result for result in state["subtask_results"]}
    for started, completed in zip(payloads(events, "AGENT_STARTED"), payloads(events, "AGENT_COMPLETED"), strict=True):
        assert started["agent_id"] == completed["agent_id"]
        assert (started["attempt"], started["executor"], started["context_pack_path"]) == (1, "sdk", None)
    for item in events:
        if item.event.event_type == "AGENT_COMPLETED":
            told, result = item.event.data, results[item.event.subtask_id]
            assert (told["output"], told["token_usage"]) == (result["output"], result["token_usage"])
            assert told["simulated"] is True
    assert payloads(events, "TASK_COMPLETED") == [{"result": state["task"]["result"]}]


async def test_a_failed_attempt_is_told_with_its_retry_and_the_next_attempt_completes(
    api: httpx.AsyncClient, fleet_redis: RedisManager
) -> None:
    task_id = await submit(api, "Fetch the flaky exchange rates")
    state, _ = await follow(api, task_id)
    assert state["task"]["status"] == "completed", state["task"]["error"]

    events = await ended_stream(fleet_redis, task_id)

    task_level, subtasks = by_subtask(events)
    assert task_level == ["TASK_SUBMITTED", "TASK_PLANNED", "TASK_COMPLETED"]
    assert subtasks == {
        "Fetch the flaky exchange rate feed": [
            "SUBTASK_QUEUED",
            "AGENT_STARTED",
            "AGENT_FAILED",
            "SUBTASK_RETRIED",
            "SUBTASK_QUEUED",
            "AGENT_STARTED",
            "AGENT_COMPLETED",
        ]
    }
    [failure] = payloads(events, "AGENT_FAILED")
    assert (failure["attempt"], failure["retryable"], failure["will_retry"]) == (1, True, True)
    assert "conflict" in failure["error"]
    assert payloads(events, "SUBTASK_RETRIED") == [{"attempt": 2, "failed_agent_ids": [failure["agent_id"]]}]
    [completed] = payloads(events, "AGENT_COMPLETED")
    assert completed["attempt"] == 2 and completed["agent_id"] != failure["agent_id"]  # failed over
    assert "EUR/USD 1.08" in completed["output"]


async def test_a_failed_task_retried_by_an_operator_completes_and_its_stream_goes_on(
    api: httpx.AsyncClient, fleet_redis: RedisManager
) -> None:
    task_id = await submit(api, "Reconcile the ledger after the fix")
    failed, _ = await follow(api, task_id)
    assert failed["task"]["status"] == "failed"
    [subtask] = failed["task"]["subtasks"]
    assert "the fix is not deployed yet" in subtask["last_error"]

    response = await api.post(f"/tasks/{task_id}/retry")

    assert response.status_code == 200, response.text
    assert response.json() == {"task_id": task_id, "status": "in_progress", "subtasks_requeued": 1}
    state, _ = await follow(api, task_id)
    assert state["task"]["status"] == "completed", state["task"]["error"]
    [subtask] = state["task"]["subtasks"]
    assert (subtask["attempt_count"], subtask["attempt_base"]) == (2, 1)
    assert [result["status"] for result in state["subtask_results"]] == ["failed", "completed"]
    events = await ended_stream(fleet_redis, task_id)
    task_level, subtasks = by_subtask(events)
    assert task_level == ["TASK_SUBMITTED", "TASK_PLANNED", "TASK_FAILED", "TASK_RETRIED", "TASK_COMPLETED"]
    assert subtasks == {
        "Reconcile the quarterly ledger": [
            *["SUBTASK_QUEUED", "AGENT_STARTED", "AGENT_FAILED", "SUBTASK_RETRIED"],
            *ONE_ATTEMPT,  # the agent's AGENT_STARTED is told: the retry opened the ended task's stream again
        ]
    }


async def test_a_subtask_that_fails_for_good_is_told_with_the_dependent_it_blocked(
    api: httpx.AsyncClient, fleet_redis: RedisManager
) -> None:
    task_id = await submit(api, "Compare the supplier price feeds")
    state, _ = await follow(api, task_id)
    assert state["task"]["status"] == "failed"

    events = await ended_stream(fleet_redis, task_id)

    task_level, subtasks = by_subtask(events)
    assert task_level == ["TASK_SUBMITTED", "TASK_PLANNED", "TASK_FAILED"]
    assert subtasks == {
        "Fetch supplier A's price feed from its web catalogue": ONE_ATTEMPT,
        "Fetch supplier B's price feed from its pricing API": ["SUBTASK_QUEUED", "AGENT_STARTED", "AGENT_FAILED"],
        "Compare both suppliers' price feeds and recommend the cheaper one": ["SUBTASK_BLOCKED"],
    }
    [failure] = payloads(events, "AGENT_FAILED")
    assert (failure["retryable"], failure["will_retry"]) == (False, False)
    failed_id = next(item.event.subtask_id for item in events if item.event.event_type == "AGENT_FAILED")
    assert payloads(events, "SUBTASK_BLOCKED") == [{"blocked_by": failed_id}]
    assert payloads(events, "TASK_FAILED") == [{"error": state["task"]["error"]}]


async def test_a_cancelled_task_s_stream_ends_with_it_and_the_late_result_publishes_nothing(
    api: httpx.AsyncClient, fleet_redis: RedisManager, fleet_database: DatabaseManager
) -> None:
    task_id = await submit(api, "Run a slow inventory count")
    await eventually(
        lambda: task_stream(fleet_redis, task_id),
        lambda found: any(item.event.event_type == "AGENT_STARTED" for item in found),
        timeout=30,
    )

    response = await api.post(f"/tasks/{task_id}/cancel")
    assert response.status_code == 200, response.text
    events = await ended_stream(fleet_redis, task_id)
    # The agent was not stopped: its result comes later and is recorded, changing nothing.
    await eventually(
        lambda: fleet_database.pool.fetchval("SELECT count(*) FROM subtask_results WHERE task_id = $1", task_id),
        lambda count: count == 1,
        timeout=30,
    )

    task_level, subtasks = by_subtask(events)
    assert task_level == ["TASK_SUBMITTED", "TASK_PLANNED", "TASK_CANCELLED"]
    assert subtasks == {"Count the inventory slowly": ["SUBTASK_QUEUED", "AGENT_STARTED", "SUBTASK_CANCELLED"]}
    assert [item.event for item in await task_stream(fleet_redis, task_id)] == [item.event for item in events]
