"""Contract of the orchestrator API (seed 003 T004-T006, T021) against a live app: real HTTP, PostgreSQL, Redis.

The shared orchestrator has no agents, so the subtasks it queues stay queued; Claude is the simulator.
"""

from typing import Any

import httpx
import pytest

from shared.database import DatabaseManager, Repositories
from shared.models import SubTaskStatus, TaskStatus
from tests.contract.orchestrator_support import TWO_STEP_TASK, assert_error
from tests.factories import build_result

TASK_FIELDS = {"id", "user_id", "description", "status", "created_at", "updated_at", "subtasks", "result", "error"}
VALID_DESCRIPTION = "Summarise last week's support tickets by theme"


async def count_tasks(db: DatabaseManager) -> int:
    count: int = await db.pool.fetchval("SELECT count(*) FROM tasks")
    return count


async def submit(client: httpx.AsyncClient, description: str = VALID_DESCRIPTION, **params: str) -> dict[str, Any]:
    response = await client.post("/tasks", params={"description": description, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# POST /tasks


async def test_submit_with_query_parameters_answers_the_plan_counts(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post(
        "/tasks", params={"description": TWO_STEP_TASK, "user_id": "contract-user"}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"task_id", "status", "subtasks_count", "initial_subtasks_queued", "trace_id", "estimate"}
    assert body["task_id"].startswith("task_")
    assert body["status"] == "created"
    # s1 has no dependency and is queued at once; s2 waits for it.
    assert (body["subtasks_count"], body["initial_subtasks_queued"]) == (2, 1)


async def test_submit_with_a_json_body_answers_the_plan_counts(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    response = await orchestrator_client.post("/tasks", json={"description": TWO_STEP_TASK, "user_id": "contract-user"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "created"
    assert (body["subtasks_count"], body["initial_subtasks_queued"]) == (2, 1)
    stored = await orchestrator_repositories.tasks.get_task(body["task_id"])
    assert stored is not None
    assert (stored.description, stored.user_id) == (TWO_STEP_TASK, "contract-user")


@pytest.mark.parametrize(
    ("params", "words"),
    [
        pytest.param({"description": "x" * 9}, ["description", "10"], id="9-chars"),
        pytest.param({"description": "x" * 5001}, ["description", "5000"], id="5001-chars"),
        pytest.param({"description": " \t" * 10}, ["description", "non-blank"], id="whitespace-only"),
        pytest.param({}, ["description", "required"], id="missing"),
        pytest.param({"user_id": "contract-user"}, ["description", "required"], id="only-user-id"),
        pytest.param({"description": VALID_DESCRIPTION, "user_id": "u" * 129}, ["user_id", "128"], id="long-user-id"),
        pytest.param({"description": f"{VALID_DESCRIPTION}\x00"}, ["description"], id="nul-in-description"),
        pytest.param({"description": VALID_DESCRIPTION, "user_id": "a\x00b"}, ["user_id"], id="nul-in-user-id"),
    ],
)
async def test_submit_refuses_invalid_query_parameters(
    orchestrator_client: httpx.AsyncClient, db: DatabaseManager, params: dict[str, str], words: list[str]
) -> None:
    response = await orchestrator_client.post("/tasks", params=params)

    assert_error(response, 400, *words)
    assert await count_tasks(db) == 0


@pytest.mark.parametrize(
    ("content", "words"),
    [
        pytest.param(b'{"description": "x"', ["not valid JSON", "character 19"], id="malformed-json"),
        pytest.param(b"", ["description", "required"], id="empty-body"),
        pytest.param(b'{"description": "nine char"}', ["description", "10"], id="9-chars"),
        pytest.param(b'{"description": "' + b"x" * 5001 + b'"}', ["description", "5000"], id="5001-chars"),
        pytest.param(b'{"description": "              "}', ["description", "non-blank"], id="whitespace-only"),
        pytest.param(b"{}", ["description"], id="missing"),
        pytest.param(b"null", ["description", "required"], id="null-body"),
        pytest.param(b'{"description": 12345678901}', ["description", "string"], id="number-description"),
        pytest.param(b'{"description": ["a list of words"]}', ["description", "string"], id="list-description"),
        pytest.param(
            b'{"description": "' + VALID_DESCRIPTION.encode() + b'", "user_id": 7}', ["user_id"], id="int-user"
        ),
        pytest.param(b'["' + VALID_DESCRIPTION.encode() + b'"]', [], id="array-body"),
        pytest.param(
            b'{"description": "' + VALID_DESCRIPTION.encode() + b'", "extra": 1}', ["extra"], id="extra-field"
        ),
        pytest.param(b'{"description": "' + VALID_DESCRIPTION.encode() + b'\\u0000"}', ["NUL"], id="nul-in-body"),
        pytest.param(b'{"description": "' + VALID_DESCRIPTION.encode() + b'\\ud800"}', ["description"], id="surrogate"),
    ],
)
async def test_submit_refuses_invalid_json_bodies(
    orchestrator_client: httpx.AsyncClient, db: DatabaseManager, content: bytes, words: list[str]
) -> None:
    response = await orchestrator_client.post("/tasks", content=content, headers={"content-type": "application/json"})

    assert_error(response, 400, *words)
    assert await count_tasks(db) == 0


# GET /tasks/{id}


async def test_get_task_answers_the_task_and_its_results(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    created = await submit(orchestrator_client, TWO_STEP_TASK, user_id="contract-user")
    stored = await orchestrator_repositories.tasks.get_task(created["task_id"])
    assert stored is not None
    # A late result, recorded but not applied: GET answers every result reported, whatever became of it.
    reported = build_result(stored.subtasks[0], agent_id="agent3", output="42 rows")
    await orchestrator_repositories.results.save_subtask_result(reported, applied=False)

    response = await orchestrator_client.get(f"/tasks/{created['task_id']}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"task", "subtask_results", "cost_usd", "total_tokens"}
    task = body["task"]
    assert set(task) >= TASK_FIELDS
    assert task["id"] == created["task_id"]
    assert (task["user_id"], task["description"]) == ("contract-user", TWO_STEP_TASK)
    assert task["status"] == TaskStatus.PENDING
    assert (task["result"], task["error"]) == (None, None)
    assert task["created_at"] <= task["updated_at"]
    first, second = task["subtasks"]
    assert (first["description"], first["status"], first["dependencies"]) == (
        "Gather the figures",
        SubTaskStatus.QUEUED,
        [],
    )
    assert (second["description"], second["status"], second["dependencies"]) == (
        "Summarise the figures",
        SubTaskStatus.PENDING,
        [first["id"]],
    )
    [result] = body["subtask_results"]
    assert (result["result_id"], result["subtask_id"], result["task_id"]) == (
        reported.result_id,
        first["id"],
        created["task_id"],
    )
    assert (result["agent_id"], result["attempt"], result["status"], result["output"], result["error"]) == (
        "agent3",
        1,
        "completed",
        "42 rows",
        None,
    )
    assert result["execution_time"] > 0


async def test_get_task_answers_404_for_an_unknown_id(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/tasks/task_does_not_exist")

    assert_error(response, 404, "task_does_not_exist")


async def test_get_task_answers_400_for_an_id_that_cannot_exist(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.get("/tasks/task%00id")

    assert_error(response, 400, "task_id")


# GET /tasks


async def test_list_tasks_filters_by_status_and_user(
    orchestrator_client: httpx.AsyncClient, db: DatabaseManager
) -> None:
    alice_1 = (await submit(orchestrator_client, user_id="alice"))["task_id"]
    alice_2 = (await submit(orchestrator_client, user_id="alice"))["task_id"]
    bob = (await submit(orchestrator_client, user_id="bob"))["task_id"]
    assert (await orchestrator_client.post(f"/tasks/{alice_1}/cancel")).status_code == 200

    everything = (await orchestrator_client.get("/tasks")).json()
    by_alice = (await orchestrator_client.get("/tasks", params={"user_id": "alice"})).json()
    cancelled = (await orchestrator_client.get("/tasks", params={"status": "cancelled"})).json()
    alice_pending = (await orchestrator_client.get("/tasks", params={"user_id": "alice", "status": "pending"})).json()

    assert ([t["id"] for t in everything["tasks"]], everything["total"]) == ([bob, alice_2, alice_1], 3)
    assert ([t["id"] for t in by_alice["tasks"]], by_alice["total"]) == ([alice_2, alice_1], 2)
    assert ([t["id"] for t in cancelled["tasks"]], cancelled["total"]) == ([alice_1], 1)
    assert ([t["id"] for t in alice_pending["tasks"]], alice_pending["total"]) == ([alice_2], 1)
    summary = everything["tasks"][0]
    assert (summary["user_id"], summary["status"], summary["subtasks_total"]) == ("bob", "pending", 1)


async def test_list_tasks_pages_with_limit_and_offset(orchestrator_client: httpx.AsyncClient) -> None:
    ids = [(await submit(orchestrator_client, f"{VALID_DESCRIPTION}, part {n}"))["task_id"] for n in range(5)]
    newest_first = ids[::-1]

    pages = [
        (await orchestrator_client.get("/tasks", params={"limit": 2, "offset": offset})).json()
        for offset in (0, 2, 4, 6)
    ]

    assert [[t["id"] for t in page["tasks"]] for page in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
        [],
    ]
    assert {(page["total"], page["limit"]) for page in pages} == {(5, 2)}
    assert [page["offset"] for page in pages] == [0, 2, 4, 6]


@pytest.mark.parametrize(
    ("params", "word"),
    [
        pytest.param({"limit": "0"}, "limit", id="limit-0"),
        pytest.param({"limit": "201"}, "limit", id="limit-201"),
        pytest.param({"limit": "ten"}, "limit", id="limit-not-int"),
        pytest.param({"offset": "-1"}, "offset", id="negative-offset"),
        pytest.param({"status": "finished"}, "status", id="unknown-status"),
        pytest.param({"user_id": "a\x00b"}, "user_id", id="nul-in-user-id"),
    ],
)
async def test_list_tasks_refuses_invalid_parameters(
    orchestrator_client: httpx.AsyncClient, params: dict[str, str], word: str
) -> None:
    response = await orchestrator_client.get("/tasks", params=params)

    assert_error(response, 400, word)


# POST /tasks/{id}/cancel


async def test_cancel_ends_the_task_and_its_unfinished_subtasks(orchestrator_client: httpx.AsyncClient) -> None:
    task_id = (await submit(orchestrator_client, TWO_STEP_TASK))["task_id"]

    response = await orchestrator_client.post(f"/tasks/{task_id}/cancel")

    assert response.status_code == 200, response.text
    assert response.json() == {"task_id": task_id, "status": "cancelled", "subtasks_cancelled": 2}
    task = (await orchestrator_client.get(f"/tasks/{task_id}")).json()["task"]
    assert task["status"] == TaskStatus.CANCELLED
    assert [subtask["status"] for subtask in task["subtasks"]] == [SubTaskStatus.CANCELLED] * 2


async def test_cancel_answers_409_when_the_task_has_ended(orchestrator_client: httpx.AsyncClient) -> None:
    task_id = (await submit(orchestrator_client))["task_id"]
    assert (await orchestrator_client.post(f"/tasks/{task_id}/cancel")).status_code == 200

    response = await orchestrator_client.post(f"/tasks/{task_id}/cancel")

    assert_error(response, 409, task_id, "cancelled")


async def test_cancel_answers_404_for_an_unknown_id(orchestrator_client: httpx.AsyncClient) -> None:
    response = await orchestrator_client.post("/tasks/task_does_not_exist/cancel")

    assert_error(response, 404, "task_does_not_exist")
