"""Estimates and dry runs on a live orchestrator (real HTTP, PostgreSQL, Redis, simulator): a submit answers what its
plan may cost; `dry_run=true` answers the plan and that estimate and stores, queues, runs and publishes nothing."""

from pathlib import Path
from typing import Any

import pytest

from shared.database import DatabaseManager
from shared.redis_manager import RedisManager
from simulator.testing import running_simulator
from tests.events_contract import tenant_stream
from tests.orchestrator_harness import OrchestratorFactory, plan

SCENARIOS: dict[str, Any] = {
    "plans": [
        {
            "match": "sales against prices",
            "plan": plan(
                ("s1", "Fetch the quarterly sales figures", ["DATABASE_OPERATIONS"], []),
                ("s2", "Compare the sales with the competitors' prices", ["DATA_ANALYSIS"], ["s1"]),
            ),
        }
    ]
}
DESCRIPTION = "Compare our sales against prices of the competitors"


async def stored_rows(db: DatabaseManager) -> tuple[int, int]:
    tasks = await db.pool.fetchval("SELECT count(*) FROM tasks")
    subtasks = await db.pool.fetchval("SELECT count(*) FROM subtasks")
    return tasks, subtasks


@pytest.mark.parametrize(
    "request_fields",
    [
        {"params": {"description": DESCRIPTION, "dry_run": "true"}},
        {"params": {"dry_run": "true"}, "json": {"description": DESCRIPTION, "deadline_seconds": 60}},
    ],
    ids=["query", "body"],
)
async def test_a_dry_run_answers_the_plan_and_its_estimate_and_stores_queues_and_publishes_nothing(
    orchestrator: OrchestratorFactory,
    db: DatabaseManager,
    test_redis: RedisManager,
    tmp_path: Path,
    request_fields: dict[str, Any],
) -> None:
    with running_simulator(SCENARIOS, request_log=tmp_path / "requests.jsonl") as simulator:
        async with orchestrator(SCENARIOS, anthropic_base_url=simulator.base_url) as client:
            answer = await client.post("/tasks", **request_fields)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["subtasks_count"], body["decomposition_fallback"]) == ("dry_run", 2, False)
    fetch, compare = body["subtasks"]
    assert (fetch["required_capabilities"], fetch["dependencies"]) == (["DATABASE_OPERATIONS"], [])
    assert (compare["required_capabilities"], compare["dependencies"]) == (["DATA_ANALYSIS"], [fetch["id"]])
    estimate = body["estimate"]
    assert estimate["basis"] == "count_tokens" and 0 < estimate["min_usd"] < estimate["max_usd"]
    assert body["decomposition"]["token_usage"]["input_tokens"] > 0  # the planning call was made, and counted
    charged = await db.pool.fetchval("SELECT sum(cost_usd)::float8 FROM model_calls WHERE task_id IS NULL")
    assert body["decomposition"]["cost_usd"] == pytest.approx(charged) and charged > 0  # the ledger's figure
    assert [request["source"] for request in simulator.requests()][-1] == "count_tokens"
    # Nothing stored, queued or published.
    assert await stored_rows(db) == (0, 0)
    assert await test_redis.queued_task_items() == set()
    assert await tenant_stream(test_redis) == []


async def test_a_submit_answers_its_plan_s_estimate(orchestrator: OrchestratorFactory, db: DatabaseManager) -> None:
    async with orchestrator(SCENARIOS) as client:
        answer = await client.post("/tasks", params={"description": DESCRIPTION})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["subtasks_count"]) == ("created", 2)
    assert body["estimate"]["basis"] == "count_tokens"
    assert 0 < body["estimate"]["min_usd"] < body["estimate"]["max_usd"]
    assert await stored_rows(db) == (1, 2)


async def test_a_dry_run_of_an_invalid_request_is_refused_before_claude_is_asked(
    orchestrator: OrchestratorFactory, tmp_path: Path
) -> None:
    with running_simulator(SCENARIOS, request_log=tmp_path / "requests.jsonl") as simulator:
        async with orchestrator(SCENARIOS, anthropic_base_url=simulator.base_url) as client:
            answer = await client.post("/tasks", params={"description": "too short", "dry_run": "true"})

    assert answer.status_code == 400, answer.text
    assert "description" in answer.json()["error"]
    assert simulator.requests() == []
