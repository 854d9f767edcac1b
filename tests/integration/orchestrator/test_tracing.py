"""The trace id of a task travels with its work through the orchestrator: queue items, signed offers to the agents,
results, and the orchestrator's own verdicts on attempts; each line logged about one of them carries it."""

from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from orchestrator.lifecycle import TaskLifecycle
from orchestrator.recovery import RecoveryService
from shared.config import Settings
from shared.database import DatabaseManager
from shared.fleet_trust import FleetTrust, UntrustedCallerError
from shared.models import AgentCapability, QueuedSubtask, ReportedResult, Task
from shared.redis_manager import RedisManager
from tests.factories import build_planned_task, run_attempt, subtask_id
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, wait_for_request, wait_until_ended

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))}]
}
MERGED = [structlog.contextvars.merge_contextvars]


async def traced_task(lifecycle: TaskLifecycle, trace_id: str, plan: dict[str, list[str]]) -> Task:
    task = build_planned_task(plan, trace_id=trace_id)
    await lifecycle.submit(task)
    return task


async def test_queue_items_carry_the_trace_id_and_so_do_those_recovery_restores(
    lifecycle: TaskLifecycle, test_redis: RedisManager
) -> None:
    task = await traced_task(lifecycle, TRACE_ID, {"a": [], "b": ["a"]})
    [item] = await test_redis.task_queue.waiting_and_inflight()
    assert QueuedSubtask.model_validate_json(item).trace_id == TRACE_ID

    await test_redis.task_queue.remove(item)  # Redis lost it
    await RecoveryService(lifecycle, test_redis, consumer_ids=[]).run_once()

    [restored] = [
        QueuedSubtask.model_validate_json(item) for item in await test_redis.task_queue.waiting_and_inflight()
    ]
    assert (restored.subtask_id, restored.trace_id) == (subtask_id(task, "a"), TRACE_ID)


async def test_a_stranded_attempt_s_failure_and_its_log_lines_carry_the_task_s_trace_id(
    lifecycle: TaskLifecycle, db: DatabaseManager
) -> None:
    task = await traced_task(lifecycle, TRACE_ID, {"a": []})
    other = await traced_task(lifecycle, "another-trace", {"a": []})
    repos = db.repositories()
    stranded = [(await run_attempt(repos, subtask_id(t, "a")), "agent1 stopped heartbeating") for t in (task, other)]

    with capture_logs(MERGED) as logs:
        outcome = await lifecycle.fail_stranded(stranded)

    assert [(r.subtask_id, r.trace_id) for r in outcome.applied if isinstance(r, ReportedResult)] == [
        (subtask_id(task, "a"), TRACE_ID),
        (subtask_id(other, "a"), "another-trace"),
    ]
    applied = {line["subtask_id"]: line["trace_id"] for line in logs if line["event"] == "result_applied"}
    assert applied == {subtask_id(task, "a"): TRACE_ID, subtask_id(other, "a"): "another-trace"}
    # The orchestrator's own agent_logs row about the failure carries the task's trace too (GET /logs?trace_id=).
    [logged] = await repos.audit.list_agent_logs(trace_id=TRACE_ID)
    assert (logged.subtask_id, logged.level.value) == (subtask_id(task, "a"), "WARNING")
    assert structlog.contextvars.get_contextvars() == {}  # nothing bound for one result outlives it


async def test_each_offer_carries_the_trace_id_under_its_signature_and_the_result_brings_it_back(
    orchestrator: OrchestratorFactory, fleet: Fleet, orchestrator_settings: Settings
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    trust = FleetTrust.from_settings(orchestrator_settings)
    with capture_logs(MERGED) as logs:
        async with orchestrator(SCENARIOS) as client:
            response = await client.post(
                "/tasks",
                params={"description": "Do a single step of work"},
                headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
            )
            assert response.status_code == 200, response.text
            await wait_for_request(agent, "the only step")
            [request] = agent.requests_for("the only step")
            await fleet.report(result_for(request, "agent1"))
            state = await wait_until_ended(client, response.json()["task_id"])

    assert state["task"]["status"] == "completed"
    assert request.subtask.trace_id == TRACE_ID
    trust.check_offer(request, "agent1")  # raises if the trace id is not what was signed
    refiled = request.model_copy(update={"subtask": request.subtask.model_copy(update={"trace_id": "another-trace"})})
    with pytest.raises(UntrustedCallerError, match="not what was assigned"):
        trust.check_offer(refiled, "agent1")
    about_it = [line for line in logs if line.get("subtask_id") == request.subtask.id]
    assert {"subtask_dispatched", "result_applied"} <= {line["event"] for line in about_it}
    assert {line.get("trace_id") for line in about_it} == {TRACE_ID}
    # The dispatch's and the result's lines name the agent too, bound around each, not only passed to one line.
    bound_lines = [line for line in about_it if line["event"] in {"subtask_dispatched", "result_applied"}]
    assert {(line["task_id"], line["agent_id"]) for line in bound_lines} == {(request.task_id, "agent1")}
