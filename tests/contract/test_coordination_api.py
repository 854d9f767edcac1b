"""Contract of the coordination pool's API (seed 004) against a live orchestrator: real HTTP, PostgreSQL, Redis."""

import re

import httpx
import pytest

from shared.database import Repositories
from tests.contract.orchestrator_support import TWO_STEP_TASK

# --- trace ids -------------------------------------------------------------------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
GENERATED_TRACE_ID = re.compile(r"[0-9a-f]{32}")


async def stored_trace_ids(repositories: Repositories, task_id: str) -> tuple[str | None, set[str | None]]:
    """The trace id stored with the task, and those stored with its subtasks."""
    task = await repositories.tasks.get_task(task_id)
    assert task is not None
    return task.trace_id, {subtask.trace_id for subtask in task.subtasks}


async def test_submit_with_a_traceparent_answers_stores_and_shows_its_trace_id(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    response = await orchestrator_client.post(
        "/tasks", params={"description": TWO_STEP_TASK}, headers={"traceparent": TRACEPARENT, "X-Request-ID": "req-1"}
    )

    assert response.status_code == 200, response.text
    created = response.json()
    assert created["trace_id"] == TRACE_ID and response.headers["x-request-id"] == TRACE_ID
    assert await stored_trace_ids(orchestrator_repositories, created["task_id"]) == (TRACE_ID, {TRACE_ID})
    shown = await orchestrator_client.get(f"/tasks/{created['task_id']}", headers={"traceparent": "unrelated"})
    assert shown.status_code == 200, shown.text
    task = shown.json()["task"]
    assert task["trace_id"] == TRACE_ID
    assert [subtask["trace_id"] for subtask in task["subtasks"]] == [TRACE_ID, TRACE_ID]
    assert shown.headers["x-request-id"] != TRACE_ID  # reading the task is a request of its own trace


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"X-Request-ID": "checkout-7f3a"}, "checkout-7f3a", id="x-request-id"),
        pytest.param({"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01", "X-Request-ID": "r-2"}, "r-2", id="zero"),
        pytest.param({"traceparent": "00-nonsense", "X-Request-ID": "has a space"}, None, id="neither-usable"),
        pytest.param({}, None, id="none"),
    ],
)
async def test_submit_takes_the_trace_id_from_x_request_id_or_makes_one(
    orchestrator_client: httpx.AsyncClient,
    orchestrator_repositories: Repositories,
    headers: dict[str, str],
    expected: str | None,
) -> None:
    response = await orchestrator_client.post("/tasks", json={"description": TWO_STEP_TASK}, headers=headers)

    assert response.status_code == 200, response.text
    trace_id = response.json()["trace_id"]
    if expected is None:
        assert GENERATED_TRACE_ID.fullmatch(trace_id), trace_id
    else:
        assert trace_id == expected
    assert response.headers["x-request-id"] == trace_id
    assert await stored_trace_ids(orchestrator_repositories, response.json()["task_id"]) == (trace_id, {trace_id})


async def test_every_answer_carries_its_request_s_trace_id(orchestrator_client: httpx.AsyncClient) -> None:
    headers = {"traceparent": TRACEPARENT}
    answers = [
        await orchestrator_client.get("/health", headers=headers),
        await orchestrator_client.get("/tasks/task_unknown", headers=headers),
        await orchestrator_client.get("/tasks", params={"limit": 0}, headers=headers),
        await orchestrator_client.get("/tasks", headers={**headers, "Authorization": "Bearer mats_nope"}),
        await orchestrator_client.post("/tasks", content=b"x", headers={**headers, "Content-Type": "text/plain"}),
    ]

    assert [answer.status_code for answer in answers] == [200, 404, 400, 401, 415]
    assert {answer.headers["x-request-id"] for answer in answers} == {TRACE_ID}
    made = {(await orchestrator_client.get("/tasks/task_unknown")).headers["x-request-id"] for _ in range(2)}
    assert len(made) == 2 and all(GENERATED_TRACE_ID.fullmatch(trace_id) for trace_id in made)
