"""A task whose planning the provider cannot serve waits for its plan, never gets a fallback one, and completes once
the provider answers: a live orchestrator, the simulator over real HTTP, fake agents."""

from datetime import datetime
from typing import Any

from shared.models import AgentCapability
from shared.serving import bound_socket
from simulator.testing import running_simulator
from tests.fake_agent import result_for
from tests.orchestrator_harness import Fleet, OrchestratorFactory, plan, task_state, wait_for_request, wait_until_ended

DATA = AgentCapability.DATA_ANALYSIS
TASK = "Summarise the quarterly numbers for the board"
SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "quarterly numbers", "plan": plan(("s1", "sum them", ["DATA_ANALYSIS"], []))}]
}
QUICK_BACKOFF = {"provider_backoff_base_seconds": 0.2, "provider_backoff_max_seconds": 0.5}


async def submitted(client: Any) -> dict[str, Any]:
    response = await client.post("/tasks", params={"description": TASK})
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


async def finish(client: Any, fleet: Fleet, agent: Any, task_id: str) -> dict[str, Any]:
    await wait_for_request(agent, "sum them")
    await fleet.report(result_for(agent.requests_for("sum them")[0], "agent1", output="42"))
    return await wait_until_ended(client, task_id)


async def test_an_unreachable_provider_makes_the_task_wait_for_its_plan_then_it_completes(
    orchestrator: OrchestratorFactory, fleet: Fleet
) -> None:
    agent = await fleet.add("agent1", DATA)
    closed = bound_socket()  # bound but not listening: connections are refused until the simulator serves on it
    address = f"http://127.0.0.1:{closed.getsockname()[1]}"
    async with orchestrator(SCENARIOS, anthropic_base_url=address, **QUICK_BACKOFF) as client:
        created = await submitted(client)
        assert (created["subtasks_count"], created["initial_subtasks_queued"]) == (0, 0)
        waiting = (await task_state(client, created["task_id"]))["task"]
        assert (waiting["status"], waiting["subtasks"], waiting["decomposition_fallback"]) == ("pending", [], False)
        assert waiting["status_reason"]["code"] == "provider_unavailable"
        assert waiting["status_reason"]["message"].startswith("waiting on Claude: unreachable, next try at ")

        with running_simulator(SCENARIOS, sock=closed):  # the provider answers again
            state = await finish(client, fleet, agent, created["task_id"])

    task = state["task"]
    assert (task["status"], task["decomposition_fallback"], task["status_reason"]) == ("completed", False, None)
    assert [subtask["description"] for subtask in task["subtasks"]] == ["sum them"]


async def test_a_rate_limited_planning_waits_out_the_retry_after_then_the_task_completes(
    orchestrator: OrchestratorFactory, fleet: Fleet, tmp_path: Any
) -> None:
    agent = await fleet.add("agent1", DATA)
    limited = {**SCENARIOS, "bursts": [{"requests": 1, "error": {"status": 429, "retry_after": 2}}]}
    with running_simulator(limited, request_log=tmp_path / "requests.jsonl") as simulator:
        async with orchestrator(SCENARIOS, anthropic_base_url=simulator.base_url) as client:
            created = await submitted(client)
            assert created["subtasks_count"] == 0
            reason = (await task_state(client, created["task_id"]))["task"]["status_reason"]
            assert reason["message"].startswith("waiting on Claude: rate limited (429), next try at ")

            state = await finish(client, fleet, agent, created["task_id"])
        limited_at, planned_at = (datetime.fromisoformat(entry["timestamp"]) for entry in simulator.requests())

    assert state["task"]["status"] == "completed" and not state["task"]["decomposition_fallback"]
    assert (planned_at - limited_at).total_seconds() >= 2  # not asked again before the provider's retry-after


async def test_a_dry_run_the_provider_cannot_serve_answers_503_with_when_to_try_again(
    orchestrator: OrchestratorFactory,
) -> None:
    closed = bound_socket()  # a dry run stores nothing that could wait for the provider: the caller tries again
    async with orchestrator(SCENARIOS, anthropic_base_url=f"http://127.0.0.1:{closed.getsockname()[1]}") as client:
        response = await client.post("/tasks", params={"description": TASK, "dry_run": "true"})
        listed = (await client.get("/tasks")).json()

    assert response.status_code == 503, response.text
    assert "Claude is unreachable" in response.json()["error"]
    assert int(response.headers["Retry-After"]) >= 1
    assert listed["total"] == 0
    closed.close()
