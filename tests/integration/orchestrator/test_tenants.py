"""Two tenants' orchestrators on one database: neither lists, reads, cancels, requeues, retries nor re-runs the other's
work."""

import asyncio
import uuid
from typing import Any

from shared.database import DatabaseManager, Repositories
from shared.models import AgentCapability, LogLevel, ToolCall
from tests.fake_agent import result_for
from tests.orchestrator_harness import (
    Fleet,
    OrchestratorFactory,
    plan,
    submit,
    task_state,
    wait_for_request,
    wait_until_ended,
)

SCENARIOS: dict[str, Any] = {
    "plans": [
        {"match": "single step", "plan": plan(("s1", "the only step", ["DATA_ANALYSIS"], []))},
        {"match": "code step", "plan": plan(("s1", "write the code", ["CODE_GENERATION"], []))},
    ]
}
# Several of the other orchestrator's recovery passes (each 0.3 s in these tests; the first runs at start-up).
RECOVERY_PASSES_SECONDS = 2.0


async def test_another_tenants_orchestrator_leaves_this_tenants_work_alone(
    orchestrator: OrchestratorFactory, fleet: Fleet, db: DatabaseManager
) -> None:
    agent = await fleet.add("agent1", AgentCapability.DATA_ANALYSIS)
    async with orchestrator(SCENARIOS) as client:
        running_task = await submit(client, "Do a single step of work")
        waiting_task = await submit(client, "Do one code step")  # no agent can run it: it stays queued
        await wait_for_request(agent, "the only step")

        # The other tenant's orchestrator knows neither agent1 nor this tenant's queue.
        async with orchestrator(SCENARIOS, tenant_id=f"other-{uuid.uuid4().hex[:10]}") as other:
            await asyncio.sleep(RECOVERY_PASSES_SECONDS)
            listed = (await other.get("/tasks")).json()
            assert listed["total"] == 0 and listed["tasks"] == []

        results = await db.pool.fetchval("SELECT count(*) FROM subtask_results WHERE task_id = $1", running_task)
        assert results == 0, "the other tenant's recovery retried an attempt its own registry does not know"
        [waiting] = (await task_state(client, waiting_task))["task"]["subtasks"]
        assert (waiting["status"], waiting["attempt_count"]) == ("queued", 1)
        assert len(agent.received) == 1

        await fleet.report(result_for(agent.received[0], "agent1"))
        state = await wait_until_ended(client, running_task)
        listed = (await client.get("/tasks")).json()

    assert state["task"]["status"] == "completed"
    assert {task["id"] for task in listed["tasks"]} == {running_task, waiting_task}


async def test_another_tenants_ids_answer_like_unknown_ones(
    orchestrator: OrchestratorFactory, db: DatabaseManager
) -> None:
    other_tenant = f"other-{uuid.uuid4().hex[:10]}"
    async with orchestrator(SCENARIOS) as ours, orchestrator(SCENARIOS, tenant_id=other_tenant) as theirs:
        their_task = await submit(theirs, "Do a single step of work")
        [their_subtask] = (await task_state(theirs, their_task))["task"]["subtasks"]
        their_audit = Repositories(db.pool, other_tenant).audit
        await their_audit.log_agent_activity(
            "agent1", their_task, LogLevel.INFO, "theirs", subtask_id=their_subtask["id"]
        )
        await their_audit.record_tool_call(
            ToolCall(agent_id="agent1", task_id=their_task, subtask_id=their_subtask["id"], attempt=1, tool_name="x")
        )
        unknown_task = "task_00000000000000000000000000000000"

        answers = {}
        for task_id in (their_task, unknown_task):
            answers[task_id] = [
                await ours.get(f"/tasks/{task_id}"),
                await ours.post(f"/tasks/{task_id}/cancel"),
                await ours.get(f"/tasks/{task_id}/tool-calls"),
                await ours.post(f"/tasks/{task_id}/retry"),
                await ours.post(f"/tasks/{task_id}/subtasks/{their_subtask['id']}/retry"),
                await ours.post(f"/tasks/{task_id}/rerun"),
            ]
        their_logs = await ours.get("/logs", params={"task_id": their_task})
        all_our_logs = await ours.get("/logs")
        theirs_seen_by_them = (await theirs.get(f"/tasks/{their_task}/tool-calls")).json()
        their_state = await task_state(theirs, their_task)

    for theirs_answer, unknown_answer in zip(answers[their_task], answers[unknown_task], strict=True):
        assert theirs_answer.status_code == unknown_answer.status_code == 404
        assert theirs_answer.json()["error"] == unknown_answer.json()["error"].replace(unknown_task, their_task)
    assert their_logs.status_code == 200 and their_logs.json() == {"logs": []}
    assert all_our_logs.json() == {"logs": []}
    # The other tenant's task was left alone, and it does see its own tool calls and logs.
    assert their_state["task"]["status"] != "cancelled"
    [attempt] = theirs_seen_by_them["attempts"]
    assert (attempt["subtask_id"], attempt["attempt"], attempt["tool_calls"][0]["tool_name"]) == (
        their_subtask["id"],
        1,
        "x",
    )
