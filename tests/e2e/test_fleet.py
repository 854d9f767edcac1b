"""The seed's quickstart scenarios and the failure drills, against the fleet running as real processes."""

import asyncio
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from shared.database import DatabaseManager
from shared.fleet_trust import fleet_status_token
from shared.local_fleet import LocalFleet
from shared.models import AgentCapability, LogLevel, ResultStatus, SubTaskResult, TaskExecutionRequest
from shared.redis_manager import RedisManager
from tests.e2e.conftest import FLEET, follow, submit, wait_for_agents, wait_until_running
from tests.factories import build_subtask
from tests.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.sdk]


def capabilities_of(agent_id: str) -> set[str]:
    return set(FLEET[agent_id].split(","))


async def test_factorial_is_computed_through_the_database_tool(
    api: httpx.AsyncClient, fleet_database: DatabaseManager, process_fleet: LocalFleet
) -> None:
    task_id = await submit(api, "Calculate factorial of 10")
    state, seen = await follow(api, task_id)

    assert seen[0] in ("pending", "in_progress") and seen[-1] == "completed"
    assert "in_progress" in seen
    task = state["task"]
    assert len(task["subtasks"]) == 1
    [result] = state["subtask_results"]
    assert "factorial_10 = 3628800" in result["output"]
    assert result["execution_time"] > 0 and result["num_turns"] >= 2 and result["simulated"] is True
    assert task["result"]["summary"] == result["output"]
    repos = fleet_database.repositories()
    [call] = await repos.audit.list_tool_calls(task_id)
    assert call.tool_name == "database_query" and "factorial(10)" in call.arguments["query"] and not call.is_error
    assert await fleet_database.pool.fetchval("SELECT status FROM tasks WHERE id = $1", task_id) == "completed"
    assert await fleet_database.pool.fetchval("SELECT count(*) FROM subtask_results WHERE task_id = $1", task_id) == 1
    # The agent that ran it counts it in its Prometheus metrics (no key), with its tokens, and nothing of the task.
    async with httpx.AsyncClient(base_url=process_fleet.services[result["agent_id"]].url) as agent:
        scraped = await agent.get("/metrics")
    assert scraped.status_code == 200
    samples = [sample for family in text_string_to_metric_families(scraped.text) for sample in family.samples]
    completed = [
        s.value for s in samples if s.name == "fleet_agent_attempts_total" and s.labels["outcome"] == "completed"
    ]
    tokens = sum(s.value for s in samples if s.name == "fleet_agent_tokens_total" and s.labels["kind"] == "output")
    assert completed and completed[0] >= 1 and tokens >= result["token_usage"]["output_tokens"] > 0
    assert task_id not in scraped.text and "factorial" not in scraped.text.lower()


async def test_three_dependent_subtasks_run_in_order_on_capable_agents(
    api: httpx.AsyncClient, process_fleet: LocalFleet, fleet_settings_dir: Path
) -> None:
    task_id = await submit(api, "Build the quarterly sales report")
    state, _ = await follow(api, task_id)

    assert state["task"]["status"] == "completed", state["task"]["error"]
    subtasks = state["task"]["subtasks"]
    assert len(subtasks) == 3
    results = {result["subtask_id"]: result for result in state["subtask_results"]}
    for subtask in subtasks:
        agent = results[subtask["id"]]["agent_id"]
        assert set(subtask["required_capabilities"]) <= capabilities_of(agent)
        for dependency in subtask["dependencies"]:
            # A dependent is handed out only after its dependency's result was in.
            assert subtask["assigned_at"] > results[dependency]["created_at"]
    outputs = state["task"]["result"]["outputs"]
    assert [entry["subtask_id"] for entry in outputs] == [subtask["id"] for subtask in subtasks]
    assert "Q4=151000" in outputs[0]["output"]
    report = fleet_settings_dir / "shared_files" / task_id / "output" / "quarterly_sales_report.md"
    assert "Quarterly sales report" in report.read_text()


async def test_the_code_role_writes_a_file_and_runs_it_in_the_sandbox(
    api: httpx.AsyncClient, fleet_database: DatabaseManager, fleet_settings_dir: Path
) -> None:
    task_id = await submit(api, "Write and check a slugify function")
    state, _ = await follow(api, task_id)

    assert state["task"]["status"] == "completed", state["task"]["error"]
    [result] = state["subtask_results"]
    assert "exited with 0: slugify self-check passed" in result["output"]
    assert "run_command" in result["allowed_tools"]
    script = fleet_settings_dir / "shared_files" / task_id / "output" / "slugify.py"
    assert "def slugify" in script.read_text()
    calls = await fleet_database.repositories().audit.list_tool_calls(task_id)
    assert [(call.tool_name, call.is_error) for call in calls] == [("write_file", False), ("run_command", False)]


async def test_a_subtask_that_fails_for_good_blocks_its_dependent_and_fails_the_task(
    api: httpx.AsyncClient, fleet_database: DatabaseManager
) -> None:
    task_id = await submit(api, "Compare the supplier price feeds")
    state, _ = await follow(api, task_id)

    assert state["task"]["status"] == "failed"
    by_description = {subtask["description"]: subtask for subtask in state["task"]["subtasks"]}
    statuses = sorted(subtask["status"] for subtask in by_description.values())
    assert statuses == ["blocked", "completed", "failed"]
    blocked = next(s for s in by_description.values() if s["status"] == "blocked")
    assert blocked["assigned_agent"] is None  # it never ran
    assert "unknown currency 'XBT'" in state["task"]["error"]
    failure = next(r for r in state["subtask_results"] if r["status"] == "failed")
    assert "unknown currency 'XBT'" in failure["error"] and failure["retryable"] is False
    logs = await fleet_database.repositories().audit.list_agent_logs(task_id=task_id, level=LogLevel.ERROR)
    assert any("unknown currency 'XBT'" in log.message for log in logs)


async def test_a_killed_agent_s_subtask_is_retried_on_another_capable_agent(
    api: httpx.AsyncClient, process_fleet: LocalFleet
) -> None:
    task_id = await submit(api, "Run a slow inventory count")
    victim = await agent_running_the_subtask(api, process_fleet, task_id)
    process_fleet.services[victim].kill()
    try:
        state, _ = await follow(api, task_id)
    finally:
        process_fleet.start(victim)

    assert state["task"]["status"] == "completed", state["task"]["error"]
    [subtask] = state["task"]["subtasks"]
    assert subtask["attempt_count"] == 2 and subtask["failed_agent_ids"] == [victim]
    completed = [r for r in state["subtask_results"] if r["status"] == "completed"]
    assert len(completed) == 1 and completed[0]["agent_id"] != victim
    assert AgentCapability.DATA_ANALYSIS.value in capabilities_of(completed[0]["agent_id"])


async def agent_running_the_subtask(api: httpx.AsyncClient, fleet: LocalFleet, task_id: str) -> str:
    """The agent that has accepted the task's first subtask (a claim alone may still be refused)."""
    subtask = await wait_until_running(api, task_id)

    token = fleet_status_token(SecretStr(fleet.base_env["FLEET_SECRET"]))

    async def holder() -> str | None:
        for agent_id in FLEET:
            answer = await api.get(
                f"{fleet.services[agent_id].url}/status", headers={"Authorization": f"Bearer {token}"}
            )
            if subtask["id"] in answer.json()["current_tasks"]:
                return agent_id
        return None

    agent_id = await eventually(holder, lambda found: found is not None, timeout=30)
    assert agent_id is not None
    return agent_id


async def test_the_task_completes_across_an_orchestrator_crash(
    api: httpx.AsyncClient, process_fleet: LocalFleet
) -> None:
    task_id = await submit(api, "Run a slow inventory count")
    # Once an agent really runs it: a crash between the claim and the delivery is the lost-delivery case instead.
    await agent_running_the_subtask(api, process_fleet, task_id)
    orchestrator = process_fleet.services["orchestrator"]
    orchestrator.kill()  # no graceful shutdown: whatever it held in flight must be recovered
    orchestrator.start()
    orchestrator.wait_healthy()
    state, _ = await follow(api, task_id)

    assert state["task"]["status"] == "completed", state["task"]["error"]
    assert state["task"]["subtasks"][0]["attempt_count"] == 1  # the agent kept running it; nothing was redone
    assert [r["status"] for r in state["subtask_results"]] == ["completed"]


async def test_ten_tasks_submitted_at_once_all_complete(api: httpx.AsyncClient) -> None:
    descriptions = ["Calculate factorial of 10", "Build the quarterly sales report"] * 5
    task_ids = await asyncio.gather(*(submit(api, description) for description in descriptions))
    outcomes = await asyncio.gather(*(follow(api, task_id, timeout=180) for task_id in task_ids))

    assert [state["task"]["status"] for state, _ in outcomes] == ["completed"] * 10, [
        s["task"]["error"] for s, _ in outcomes
    ]
    await wait_for_agents(api, len(FLEET))


async def test_a_forged_result_is_dead_lettered_while_every_genuine_task_completes(
    api: httpx.AsyncClient, process_fleet: LocalFleet, fleet_redis: RedisManager, fleet_database: DatabaseManager
) -> None:
    """Whoever can reach an agent or the result queue may forge a result for a subtask nobody assigned: the agent
    refuses the forged offer, and a forged result pushed past it goes to the dead-letter list with its reason,
    without holding back the genuine results that arrive around it."""
    task_ids = list(await asyncio.gather(*(submit(api, "Calculate factorial of 10") for _ in range(3))))
    await wait_until_running(api, task_ids[0])  # genuine results are on their way
    forged_id = f"{task_ids[0]}_forged"
    subtask = build_subtask(
        task_ids[0], id=forged_id, delivery_token="forged", required_capabilities=[AgentCapability.API_INTEGRATION]
    )
    request = TaskExecutionRequest(task_id=task_ids[0], subtask=subtask)

    offered = await api.post(f"{process_fleet.services['agent2'].url}/execute", content=request.model_dump_json())
    forged = SubTaskResult(
        subtask_id=forged_id,
        task_id=task_ids[0],
        agent_id="agent2",
        attempt=1,
        delivery_token="forged",
        status=ResultStatus.COMPLETED,
        output="factorial_10 = 42",
        execution_time=0.1,
    )
    await fleet_redis.enqueue_result(forged)
    finals = await asyncio.gather(*(follow(api, task_id) for task_id in task_ids))

    assert 400 <= offered.status_code < 500, offered.text  # not accepted, so never run
    letters = await eventually(
        fleet_redis.result_queue.dead_letters, lambda found: any(forged_id in letter.payload for letter in found)
    )
    [letter] = [letter for letter in letters if forged_id in letter.payload]
    assert SubTaskResult.model_validate_json(letter.payload).result_id == forged.result_id
    assert "no subtask" in letter.reason and forged_id in letter.reason
    assert [state["task"]["status"] for state, _ in finals] == ["completed"] * len(task_ids)
    for state, _ in finals:
        assert [r["output"] for r in state["subtask_results"]] == [state["task"]["result"]["summary"]]
        assert "factorial_10 = 3628800" in state["subtask_results"][0]["output"]
    recorded = await fleet_database.pool.fetchval(
        "SELECT count(*) FROM subtask_results WHERE subtask_id = $1", forged_id
    )
    assert recorded == 0
