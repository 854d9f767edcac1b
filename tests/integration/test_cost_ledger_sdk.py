"""A task's cost ledger end to end on the real PostgreSQL, Redis and simulator: a live orchestrator plans it (one
repair round), real agents (the Claude Agent SDK's CLI) run its subtasks over several turns, and the ledger holds a
row per call whose roll-ups per subtask, task, tenant and day equal what the results and the decomposition cost, as
GET /tasks/{id}/cost, GET /tasks/{id}, GET /tasks and GET /spend all say."""

from collections import Counter
from typing import Any

import pytest

from shared.config import Settings
from shared.database import Repositories
from tests.integration.test_coordination_pool import SdkFleet, sdk_agents, sdk_fleet
from tests.orchestrator_harness import plan, submit, wait_until_ended

__all__ = ["sdk_agents", "sdk_fleet"]  # the fixtures, imported so this module's tests can use them

NOTE = {"tool": "write_file", "input": {"path": "note.md", "content": "noted"}}
CYCLIC = plan(("s1", "Count the rows", ["DATA_ANALYSIS"], ["s2"]), ("s2", "Sum the rows", ["DATA_ANALYSIS"], ["s1"]))
VALID = plan(("s1", "Count the rows", ["DATA_ANALYSIS"], []), ("s2", "Sum the rows", ["DATA_ANALYSIS"], ["s1"]))
SCENARIOS: dict[str, Any] = {
    "plans": [{"match": "(?i)tally the ledger", "plans": [CYCLIC, VALID]}],  # invalid first: one repair round
    "subtasks": [
        {"match": "(?i)count the rows", "turns": [{"tool_calls": [NOTE]}, {"final": "12 rows"}]},
        {"match": "(?i)sum the rows", "turns": [{"tool_calls": [NOTE]}, {"tool_calls": [NOTE]}, {"final": "sum 42"}]},
    ],
}


@pytest.mark.sdk
async def test_a_task_s_ledger_rolls_up_to_what_its_results_and_its_planning_cost(
    orchestrator_settings: Settings, orchestrator_repositories: Repositories, sdk_fleet: SdkFleet
) -> None:
    async with sdk_fleet(SCENARIOS, ["agent_a"]) as client:
        task_id = await submit(client, "Tally the ledger of the shop")
        detail = await wait_until_ended(client, task_id, timeout=90)
        cost = (await client.get(f"/tasks/{task_id}/cost")).json()
        [listed] = (await client.get("/tasks")).json()["tasks"]
        spend = (await client.get("/spend", params={"days": 2})).json()

    assert detail["task"]["status"] == "completed", detail["task"]["error"]
    results = detail["subtask_results"]
    by_subtask = {subtask["id"]: subtask for subtask in detail["task"]["subtasks"]}
    turns = {by_subtask[result["subtask_id"]]["description"]: result["num_turns"] for result in results}
    assert turns == {"Count the rows": 2, "Sum the rows": 3}

    # One row per call: the decomposition, its repair, and each turn of each attempt.
    rows = cost["model_calls"]
    assert Counter(row["purpose"] for row in rows) == {"decomposition": 1, "repair": 1, "attempt": 5}
    per_attempt = Counter((row["subtask_id"], row["attempt"]) for row in rows if row["purpose"] == "attempt")
    assert per_attempt == {(result["subtask_id"], result["attempt"]): result["num_turns"] for result in results}
    assert all(row["price_version"] is not None and row["cost_usd"] > 0 for row in rows)

    # Roll-ups: per subtask and task they equal the results' costs plus the decomposition's.
    decomposition = detail["task"]["decomposition"]
    assert decomposition["repaired"] and cost["decomposition_usd"] == pytest.approx(decomposition["cost_usd"])
    assert cost["attempts_usd"] == pytest.approx(sum(result["cost_usd"] for result in results))
    for subtask in cost["subtasks"]:
        mine = [result for result in results if result["subtask_id"] == subtask["subtask_id"]]
        assert subtask["totals"]["cost_usd"] == pytest.approx(sum(result["cost_usd"] for result in mine))
        tokens = subtask["totals"]["tokens"]
        assert tokens == {kind: sum(result["token_usage"][kind] for result in mine) for kind in tokens}
    total = cost["total_usd"]
    assert total == pytest.approx(cost["decomposition_usd"] + cost["attempts_usd"])
    assert detail["cost_usd"] == pytest.approx(total) and listed["cost_usd"] == pytest.approx(total)
    assert detail["total_tokens"] == listed["total_tokens"] == sum(cost["total"]["tokens"].values())
    stored = await orchestrator_repositories.ledger.task_spend([task_id])
    assert stored[task_id] == pytest.approx(total)
    # Per tenant and day: the tenant spent nothing else, today.
    assert spend["today_usd"] == pytest.approx(total) and spend["total"]["calls"] == len(rows)
    [today_models] = [day["models"] for day in spend["daily"] if day["totals"]["calls"]]
    assert [(share["model"], share["totals"]["cost_usd"]) for share in today_models] == [
        (orchestrator_settings.claude_model, pytest.approx(total))
    ]
