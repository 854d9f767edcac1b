"""Deadlines and stopped attempts on a live orchestrator (real HTTP, PostgreSQL, Redis, simulator) with real agent
services: past its deadline a task fails with the reason whatever it waits on, and an attempt of a task that was
cancelled or ran out of time is stopped on its agent, which frees the slot instead of spending tokens on it."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from shared.database import DatabaseManager
from simulator.testing import running_simulator
from tests.integration.test_coordination_pool import (
    AgentFleet,
    listed_agents,
    real_agent,
    results_of,
    sdk_agents,
)
from tests.orchestrator_harness import OrchestratorFactory, plan, submit, task_state, wait_until_ended
from tests.polling import eventually

__all__ = ["sdk_agents"]  # the fixture, imported so this module's tests can use it

SCENARIOS: dict[str, Any] = {
    "plans": [
        {"match": "long report", "plan": plan(("s1", "Write the long report", ["DATA_ANALYSIS"], []))},
        {"match": "scrape the catalogue", "plan": plan(("s1", "Scrape the catalogue", ["WEB_SCRAPING"], []))},
    ],
    # The model takes a minute to answer: only a stop ends the attempt sooner.
    "subtasks": [{"match": "(?i)write the long report", "delay_ms": 60_000, "turns": [{"final": "the report"}]}],
}
FAST_WATCH = {"deadline_check_interval_seconds": 0.2}


def deadline_of(state: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(state["task"]["deadline_at"])


@pytest.mark.sdk
async def test_a_long_attempt_past_its_task_s_deadline_is_stopped_and_the_task_fails_with_the_reason(
    orchestrator: OrchestratorFactory, orchestrator_settings: Settings, sdk_agents: AgentFleet, db: DatabaseManager
) -> None:
    with running_simulator(SCENARIOS) as simulator:
        async with (
            sdk_agents(orchestrator_settings, simulator.base_url, ["writer"]),
            orchestrator(SCENARIOS, anthropic_base_url=simulator.base_url, **FAST_WATCH) as client,
        ):
            await eventually(lambda: listed_agents(client), lambda agents: "writer" in agents)
            task_id = await submit(client, "A long report on the quarter", deadline_seconds="4")
            submitted = await task_state(client, task_id)
            assert deadline_of(submitted) - datetime.fromisoformat(submitted["task"]["created_at"]) == timedelta(
                seconds=4
            )

            ended = await wait_until_ended(client, task_id, timeout=30)

            task = ended["task"]
            assert task["status"] == "failed", task
            assert task["status_reason"]["code"] == "deadline_exceeded"
            assert task["error"].startswith("deadline exceeded") and task["deadline_at"][:19] in task["error"]
            assert [subtask["status"] for subtask in task["subtasks"]] == ["cancelled"]
            # The agent stopped the attempt (its model had 56 s still to go): the slot is free, the report says why.
            results = await eventually(lambda: results_of(db, task_id), bool, timeout=20)
            assert [(agent, status, applied) for agent, status, applied, _ in results] == [("writer", "failed", False)]
            assert results[0][3] == f"stopped by the orchestrator: {task['error']}"
            writer = await eventually(
                lambda: listed_agents(client), lambda agents: agents["writer"]["current_tasks"] == [], timeout=10
            )
            assert writer["writer"]["is_available"] is True


async def test_a_cancelled_task_s_running_attempt_is_stopped_on_its_agent(
    orchestrator: OrchestratorFactory, orchestrator_settings: Settings, db: DatabaseManager, tmp_path: Path
) -> None:
    async with orchestrator(SCENARIOS) as client:
        with real_agent(orchestrator_settings, tmp_path, "slow", stub_delay_seconds=120) as slow:
            await eventually(lambda: listed_agents(client), lambda agents: "slow" in agents)
            task_id = await submit(client, "A long report on the year")
            await eventually(slow.running, bool)  # it accepted the offer and runs it

            cancelled = await client.post(f"/tasks/{task_id}/cancel")

            assert cancelled.status_code == 200, cancelled.text
            # Stopped at once, not after the two minutes the attempt would have taken.
            await eventually(slow.running, lambda running: running == [], timeout=10)
            results = await eventually(lambda: results_of(db, task_id), bool, timeout=10)
            assert [(agent, status, applied, error) for agent, status, applied, error in results] == [
                ("slow", "failed", False, "stopped by the orchestrator: cancelled by request")
            ]
            assert (await task_state(client, task_id))["task"]["status"] == "cancelled"


async def test_a_task_waiting_for_an_agent_that_does_not_exist_fails_at_its_deadline(
    orchestrator: OrchestratorFactory,
) -> None:
    async with orchestrator(SCENARIOS, **FAST_WATCH) as client:
        task_id = await client.post(
            "/tasks", json={"description": "Scrape the catalogue of the shop", "deadline_seconds": 1}
        )
        assert task_id.status_code == 200, task_id.text

        ended = await wait_until_ended(client, task_id.json()["task_id"], timeout=15)

        task = ended["task"]
        assert (task["status"], task["status_reason"]["code"]) == ("failed", "deadline_exceeded")
        assert [subtask["status"] for subtask in task["subtasks"]] == ["cancelled"]


@pytest.mark.parametrize(
    ("request_fields", "problem"),
    [
        ({"params": {"deadline_seconds": "0"}}, "deadline_seconds"),
        ({"params": {"deadline_seconds": "604801"}}, "deadline_seconds"),
        ({"params": {"deadline_seconds": "soon"}}, "deadline_seconds"),
        ({"json": {"description": "A long report on the quarter", "deadline_seconds": 0}}, "deadline_seconds"),
        ({"json": {"description": "A long report on the quarter", "deadline_seconds": 1.5}}, "deadline_seconds"),
    ],
)
async def test_a_deadline_out_of_range_is_refused_with_a_400_naming_it(
    orchestrator: OrchestratorFactory, db: DatabaseManager, request_fields: dict[str, Any], problem: str
) -> None:
    async with orchestrator(SCENARIOS) as client:
        if "params" in request_fields:
            request_fields["params"] = {"description": "A long report on the quarter", **request_fields["params"]}

        answer = await client.post("/tasks", **request_fields)

        assert answer.status_code == 400, answer.text
        assert problem in answer.text
        assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 0


async def test_a_task_without_a_deadline_has_none(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(SCENARIOS) as client:
        task_id = await submit(client, "A long report on the quarter")

        assert (await task_state(client, task_id))["task"]["deadline_at"] is None
