"""Contract of the coordination pool's API (seed 004) against a live orchestrator: real HTTP, PostgreSQL, Redis."""

from typing import Any

import httpx
import pytest

from shared.database import DatabaseManager, Repositories
from shared.models import TaskType
from tests.contract.orchestrator_support import TWO_STEP_TASK, assert_error
from tests.polling import eventually

# --- task types and status_reason ---


async def task_detail(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


KNOWN_TYPES = "'DISCOVERY', 'MIGRATION', 'HEARTBEAT', 'INGEST', 'RESEARCH' or 'GENERAL'"


@pytest.mark.parametrize(
    ("submitted", "expected"),
    [
        pytest.param({}, "GENERAL", id="default"),
        pytest.param({"task_type": "MIGRATION"}, "MIGRATION", id="named"),
        pytest.param({"task_type": "research"}, "RESEARCH", id="any-case"),
    ],
)
@pytest.mark.parametrize("form", ["json", "query"])
async def test_submit_takes_a_task_type_that_the_task_and_its_subtasks_carry(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_repositories: Repositories,
    form: str,
    submitted: dict[str, str],
    expected: str,
) -> None:
    fields = {"description": TWO_STEP_TASK, **submitted}
    response = await (
        orchestrator_client.post("/tasks", json=fields)
        if form == "json"
        else orchestrator_client.post("/tasks", params=fields)
    )

    assert response.status_code == 200, response.text
    task_id = response.json()["task_id"]
    detail = await task_detail(orchestrator_client, task_id)
    assert detail["task"]["task_type"] == expected
    assert {subtask["task_type"] for subtask in detail["task"]["subtasks"]} == {expected}
    # The shared orchestrator has no agent: the queued first step waits, saying so, on itself and on its task.
    waiting = {"code": "no_live_agent", "message": "waiting: no live agent with DATABASE_OPERATIONS"}
    detail = await eventually(
        lambda: task_detail(orchestrator_client, task_id), lambda detail: detail["task"]["status_reason"] is not None
    )
    assert detail["task"]["status_reason"] == waiting
    assert [subtask["status_reason"] for subtask in detail["task"]["subtasks"]] == [waiting, None]
    [summary] = (await orchestrator_client.get("/tasks")).json()["tasks"]
    assert (summary["task_type"], summary["status_reason"]) == (expected, waiting)
    stored = await orchestrator_repositories.tasks.get_task(task_id)
    assert stored is not None and stored.task_type is TaskType(expected)


@pytest.mark.parametrize("form", ["json", "query"])
async def test_submit_refuses_an_unknown_task_type_naming_the_known_ones(
    orchestrator_client: httpx.AsyncClient, db: DatabaseManager, form: str
) -> None:
    fields = {"description": TWO_STEP_TASK, "task_type": "database_query"}
    response = await (
        orchestrator_client.post("/tasks", json=fields)
        if form == "json"
        else orchestrator_client.post("/tasks", params=fields)
    )

    assert_error(response, 400, "task_type", KNOWN_TYPES)
    assert await db.pool.fetchval("SELECT count(*) FROM tasks") == 0
