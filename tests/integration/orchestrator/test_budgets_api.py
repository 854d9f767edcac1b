"""Budgets over HTTP: a live orchestrator (its dispatcher, result processors and loops) against the simulator, with
fake agents reporting what each attempt cost.

A task with a tiny max_cost_usd pauses (not fails) with what it did kept, and runs to completion after a resume with
a higher budget; the tenant's daily budget pauses work across tasks, refuses submits with 429 and Retry-After, and
its tasks resume when the UTC day turns (the spend's timestamps moved back a day) or by hand once it is raised.
"""

from typing import Any

import httpx

from shared.database import DatabaseManager
from shared.models import AgentCapability, TaskExecutionRequest
from tests.fake_agent import FakeAgent, result_for
from tests.orchestrator_harness import (
    Fleet,
    OrchestratorFactory,
    plan,
    submit,
    task_state,
    wait_for_request,
    wait_until_ended,
)
from tests.polling import eventually

DATA = AgentCapability.DATA_ANALYSIS
SCENARIOS: dict[str, Any] = {
    "plans": [
        {
            "match": "three sales steps",
            "plan": plan(
                ("s1", "count the north sales", ["DATA_ANALYSIS"], []),
                ("s2", "count the south sales", ["DATA_ANALYSIS"], ["s1"]),
                ("s3", "add both counts up", ["DATA_ANALYSIS"], ["s2"]),
            ),
        },
        {
            "match": "two stock steps",
            "plan": plan(
                ("s1", "count the stock", ["DATA_ANALYSIS"], []),
                ("s2", "price the stock", ["DATA_ANALYSIS"], ["s1"]),
            ),
        },
    ]
}
# Only what the attempts report counts: the decomposition is left unpriced.
UNPRICED = {"model_prices": {}}


# The offers already answered, by delivery token: each report answers the next offer of its subtask.
_answered: set[str | None] = set()


async def run_next(fleet: Fleet, agent: FakeAgent, description: str, cost: float) -> TaskExecutionRequest:
    """Wait for the agent to hold an offer of `description` not answered yet, and report it completed at `cost`."""

    async def unanswered() -> list[TaskExecutionRequest]:
        return [
            request for request in agent.requests_for(description) if request.subtask.delivery_token not in _answered
        ]

    [request] = await eventually(unanswered, bool)
    _answered.add(request.subtask.delivery_token)
    await fleet.report(result_for(request, agent.agent_id).model_copy(update={"cost_usd": cost}))
    return request


async def wait_for_status(client: httpx.AsyncClient, task_id: str, status: str) -> dict[str, Any]:
    return await eventually(lambda: task_state(client, task_id), lambda state: state["task"]["status"] == status)


def subtask_statuses(state: dict[str, Any]) -> dict[str, str]:
    return {subtask["description"]: subtask["status"] for subtask in state["task"]["subtasks"]}


async def test_a_task_with_a_tiny_budget_pauses_keeps_its_work_and_completes_after_a_resume_with_more(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    agent = await fleet.add("agent1", DATA)
    async with orchestrator(SCENARIOS, **UNPRICED) as client:
        task_id = await submit(client, "Do the three sales steps", max_cost_usd="0.05")
        await run_next(fleet, agent, "count the north sales", 0.03)  # 0.03 + 0.03 > 0.05

        paused = await wait_for_status(client, task_id, "paused")

        assert paused["task"]["max_cost_usd"] == 0.05
        assert paused["task"]["status_reason"]["code"] == "budget_exhausted"
        assert "spent $0.0300 of its $0.0500 budget" in paused["task"]["status_reason"]["message"]
        assert subtask_statuses(paused)["count the north sales"] == "completed"
        assert [result["output"] for result in paused["subtask_results"]] == ["output of count the north sales"]
        listed = (await client.get("/tasks", params={"status": "paused"})).json()
        assert [task["id"] for task in listed["tasks"]] == [task_id] and listed["tasks"][0]["max_cost_usd"] == 0.05

        refused = await client.post(f"/tasks/{task_id}/resume")
        assert refused.status_code == 409, refused.text
        assert "max_cost_usd above $0.0600" in refused.json()["error"]
        assert agent.requests_for("count the south sales") == []  # queued, never offered while paused

        resumed = await client.post(f"/tasks/{task_id}/resume", json={"max_cost_usd": 1})
        assert resumed.status_code == 200, resumed.text
        assert resumed.json() == {
            "task_id": task_id,
            "status": "in_progress",
            "max_cost_usd": 1.0,
            "subtasks_requeued": 1,
        }
        await run_next(fleet, agent, "count the south sales", 0.03)
        await run_next(fleet, agent, "add both counts up", 0.03)
        ended = await wait_until_ended(client, task_id)

        again = await client.post(f"/tasks/{task_id}/resume")
    assert ended["task"]["status"] == "completed" and ended["task"]["status_reason"] is None
    assert ended["cost_usd"] == 0.09
    assert again.status_code == 409 and "is completed: only a paused task can be resumed" in again.json()["error"]


async def test_a_paused_task_can_be_cancelled_and_its_queued_subtask_never_runs(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    agent = await fleet.add("agent1", DATA)
    async with orchestrator(SCENARIOS, **UNPRICED) as client:
        task_id = await submit(client, "Do the two stock steps", max_cost_usd="0.01")
        await run_next(fleet, agent, "count the stock", 0.02)
        await wait_for_status(client, task_id, "paused")

        cancelled = await client.post(f"/tasks/{task_id}/cancel")

        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["subtasks_cancelled"] == 1
        assert agent.requests_for("price the stock") == []


async def move_spend_back_a_day(db: DatabaseManager) -> None:
    """The UTC day turns, as the ledger sees it: everything spent so far was spent yesterday."""
    await db.pool.execute("UPDATE model_calls SET created_at = created_at - interval '1 day'")


async def test_the_daily_budget_pauses_work_across_tasks_refuses_submits_and_resumes_when_the_day_turns(
    orchestrator: OrchestratorFactory, fleet: Fleet, db: DatabaseManager
) -> None:
    agent = await fleet.add("agent1", DATA, slots=2)
    budget = {**UNPRICED, "tenant_daily_budget_usd": 0.05, "budget_resume_interval_seconds": 0.2}
    async with orchestrator(SCENARIOS, **budget) as client:
        sales = await submit(client, "Do the three sales steps")
        stock = await submit(client, "Do the two stock steps")
        await wait_for_request(agent, "count the stock")  # both first steps run at once
        await run_next(fleet, agent, "count the north sales", 0.06)  # 0.06 today: the budget is spent

        for task_id in (sales, stock):
            paused = await wait_for_status(client, task_id, "paused")
            assert paused["task"]["status_reason"]["code"] == "tenant_daily_budget"
        await run_next(fleet, agent, "count the stock", 0.01)  # it was running: it finishes and applies
        await eventually(lambda: task_state(client, stock), lambda state: len(state["subtask_results"]) == 1)
        refused = await client.post("/tasks", params={"description": "Do the two stock steps again"})
        assert refused.status_code == 429, refused.text
        assert "$0.0700 of $0.0500 today" in refused.json()["error"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 86_400
        assert agent.requests_for("count the south sales") == agent.requests_for("price the stock") == []
        assert (await task_state(client, stock))["task"]["status"] == "paused"

        await move_spend_back_a_day(db)

        for task_id in (sales, stock):
            await wait_for_status(client, task_id, "in_progress")
        await run_next(fleet, agent, "count the south sales", 0.01)
        await run_next(fleet, agent, "price the stock", 0.01)
        await run_next(fleet, agent, "add both counts up", 0.01)
        for task_id in (sales, stock):
            assert (await wait_until_ended(client, task_id))["task"]["status"] == "completed"


async def test_tasks_paused_on_the_daily_budget_resume_once_a_restarted_orchestrator_raises_it(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    agent = await fleet.add("agent1", DATA)
    async with orchestrator(SCENARIOS, **UNPRICED, tenant_daily_budget_usd=0.05) as client:
        task_id = await submit(client, "Do the two stock steps")
        await run_next(fleet, agent, "count the stock", 0.06)
        await wait_for_status(client, task_id, "paused")
        refused = await client.post(f"/tasks/{task_id}/resume")
        assert refused.status_code == 409 and "daily budget is still spent" in refused.json()["error"]

    async with orchestrator(SCENARIOS, **UNPRICED, tenant_daily_budget_usd=1.0) as client:
        await wait_for_status(client, task_id, "in_progress")  # the budget allows again: it resumes by itself
        await run_next(fleet, agent, "price the stock", 0.01)
        assert (await wait_until_ended(client, task_id))["task"]["status"] == "completed"


async def test_budgets_are_checked_at_the_edge(orchestrator: OrchestratorFactory, fleet: Fleet) -> None:
    await fleet.add("agent1", DATA)
    async with orchestrator(SCENARIOS, **UNPRICED) as client:
        for bad in ("0", "-1", "1000001", "lots"):
            answer = await client.post("/tasks", params={"description": "Do the two stock steps", "max_cost_usd": bad})
            assert answer.status_code == 400, (bad, answer.text)
            assert "max_cost_usd" in answer.json()["error"]
        task_id = await submit(client, "Do the two stock steps", max_cost_usd="0.5")
        disagreeing = await client.post(f"/tasks/{task_id}/resume?max_cost_usd=2", json={"max_cost_usd": 3})
        assert disagreeing.status_code == 400 and "disagree" in disagreeing.json()["error"]
        not_paused = await client.post(f"/tasks/{task_id}/resume", json={"max_cost_usd": 2})
        assert not_paused.status_code == 409 and "only a paused task can be resumed" in not_paused.json()["error"]
        unknown = await client.post("/tasks/task_0123456789abcdef/resume")
        assert unknown.status_code == 404
        key = {"Idempotency-Key": "budget-key-1"}
        first = await client.post(
            "/tasks", headers=key, json={"description": "Do the two stock steps", "max_cost_usd": 1}
        )
        other = await client.post(
            "/tasks", headers=key, json={"description": "Do the two stock steps", "max_cost_usd": 2}
        )
        assert first.status_code == 200 and other.status_code == 409, other.text
        assert "max_cost_usd" in other.json()["error"]


async def test_a_budget_or_deadline_sent_in_the_query_beside_a_json_body_is_kept_or_refused_never_dropped(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    await fleet.add("agent1", DATA)
    async with orchestrator(SCENARIOS, **UNPRICED) as client:
        for bad in ("nan", "inf", "-inf", "1e309", "0x10"):
            answer = await client.post("/tasks", params={"description": "Do the two stock steps", "max_cost_usd": bad})
            assert answer.status_code == 400, (bad, answer.text)
        body = {"description": "Do the two stock steps"}

        both = await client.post("/tasks", params={"max_cost_usd": "0.5", "deadline_seconds": "600"}, json=body)

        assert both.status_code == 200, both.text
        task = (await task_state(client, both.json()["task_id"]))["task"]
        assert task["max_cost_usd"] == 0.5 and task["deadline_at"] is not None
        for name, query, given in (("max_cost_usd", "0.5", 2), ("deadline_seconds", "600", 60)):
            disagreeing = await client.post("/tasks", params={name: query}, json={**body, name: given})
            assert disagreeing.status_code == 400, disagreeing.text
            assert f"{name}: the query parameter and the JSON body disagree" in disagreeing.json()["error"]
        agreeing = await client.post("/tasks", params={"max_cost_usd": "2"}, json={**body, "max_cost_usd": 2})
        assert agreeing.status_code == 200, agreeing.text
