"""Contract of the task actions and the task search against a live app (real HTTP, PostgreSQL, Redis, the simulator):
retry of a failed task or subtask, re-run, `GET /tasks` with text, id and date filters and real paging totals, and
what a task cost, its decomposition priced by MODEL_PRICES.

The shared orchestrator has no agents, so a failure is written the way the lifecycle leaves one (the lifecycle's own
retry rules are tested in tests/integration/orchestrator/test_operator_retries.py).
"""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.config import Settings
from shared.database import Repositories
from shared.ledger import PriceBook
from shared.models import SubTaskStatus, TaskStatus
from tests.contract.orchestrator_support import TWO_STEP_TASK, assert_error
from tests.factories import build_result, build_task, run_attempt
from tests.orchestrator_harness import submit, task_state


async def failed_first_step(client: httpx.AsyncClient, repos: Repositories) -> tuple[str, str]:
    """A two-step task whose first step failed for good on agent3 (the second blocked): the task failed."""
    task_id = await submit(client, TWO_STEP_TASK)
    task = await repos.tasks.get_task(task_id)
    assert task is not None
    first = task.subtasks[0]
    await run_attempt(repos, first.id, agent_id="agent3", finish=SubTaskStatus.FAILED)
    failure = build_result(first, agent_id="agent3", status="failed", error="the figures were unreadable", cost_usd=0.5)
    await repos.results.save_subtask_result(failure, applied=True)
    # As the lifecycle records it: an unpriced model keeps the cost the agent reported.
    await repos.ledger.record([PriceBook({}).attempt_entries(failure)[0]])
    await repos.subtasks.block_dependents(task_id, first.id)
    await repos.tasks.update_task_status(task_id, TaskStatus.FAILED, error="subtask s1 failed")
    return task_id, first.id


# --- retry ----------------------------------------------------------------------------------------------------------


async def test_retry_puts_a_failed_task_back_in_progress_with_a_fresh_attempt(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    task_id, first_id = await failed_first_step(orchestrator_client, orchestrator_repositories)
    blocked = (await task_state(orchestrator_client, task_id))["task"]["subtasks"][1]
    assert (blocked["status"], blocked["blocked_by"]) == ("blocked", [first_id])

    response = await orchestrator_client.post(f"/tasks/{task_id}/retry")

    assert response.status_code == 200, response.text
    assert response.json() == {"task_id": task_id, "status": "in_progress", "subtasks_requeued": 1}
    task = (await task_state(orchestrator_client, task_id))["task"]
    assert (task["status"], task["error"]) == ("in_progress", None)
    first, second = task["subtasks"]
    assert (first["status"], first["attempt_count"], first["assigned_agent"]) == ("queued", 2, None)
    assert first["last_error"] is None  # written by the lifecycle's failure, which this shortcut did not go through
    assert (second["status"], second["blocked_by"]) == ("pending", [])

    again = await orchestrator_client.post(f"/tasks/{task_id}/retry")
    assert_error(again, 409, task_id, "in_progress", "only a failed task")


async def test_retry_of_one_subtask_and_its_refusals(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    task_id, first_id = await failed_first_step(orchestrator_client, orchestrator_repositories)
    second_id = (await task_state(orchestrator_client, task_id))["task"]["subtasks"][1]["id"]

    not_failed = await orchestrator_client.post(f"/tasks/{task_id}/subtasks/{second_id}/retry")
    unknown = await orchestrator_client.post(f"/tasks/{task_id}/subtasks/subtask_nope/retry")
    retried = await orchestrator_client.post(f"/tasks/{task_id}/subtasks/{first_id}/retry")

    assert_error(not_failed, 409, second_id, "blocked", "only a failed subtask")
    assert_error(unknown, 404, task_id, "subtask_nope")
    assert retried.status_code == 200, retried.text
    assert retried.json() == {"task_id": task_id, "status": "in_progress", "subtasks_requeued": 1}


@pytest.mark.parametrize(
    "path", ["/tasks/task_nope/retry", "/tasks/task_nope/subtasks/s1/retry", "/tasks/task_nope/rerun"]
)
async def test_actions_on_an_unknown_task_answer_404(orchestrator_client: httpx.AsyncClient, path: str) -> None:
    assert_error(await orchestrator_client.post(path), 404, "task_nope")


async def test_retry_of_a_task_that_did_not_fail_answers_409(orchestrator_client: httpx.AsyncClient) -> None:
    task_id = await submit(orchestrator_client, TWO_STEP_TASK)

    assert_error(await orchestrator_client.post(f"/tasks/{task_id}/retry"), 409, task_id, "pending")


# --- re-run ---------------------------------------------------------------------------------------------------------


async def test_rerun_submits_a_new_task_with_the_same_request(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    original = await submit(orchestrator_client, TWO_STEP_TASK, user_id="ana", task_type="DISCOVERY")
    await orchestrator_client.post(f"/tasks/{original}/cancel")

    response = await orchestrator_client.post(f"/tasks/{original}/rerun")

    assert response.status_code == 200, response.text
    created = response.json()
    assert created["task_id"] != original and (created["subtasks_count"], created["initial_subtasks_queued"]) == (2, 1)
    old = await orchestrator_repositories.tasks.get_task(original)
    new = await orchestrator_repositories.tasks.get_task(created["task_id"])
    assert old is not None and new is not None
    assert (new.description, new.user_id, new.task_type, new.context_pack_id) == (
        old.description,
        old.user_id,
        old.task_type,
        old.context_pack_id,
    )
    assert (old.status, new.status) == (TaskStatus.CANCELLED, TaskStatus.PENDING)
    assert new.trace_id == created["trace_id"] != old.trace_id


# --- search ---------------------------------------------------------------------------------------------------------


async def test_search_by_text_id_and_date_counts_every_match(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories
) -> None:
    now = datetime.now(UTC)
    stored = []
    for hours_ago, description in [(3, "Sum 100% of the sales"), (2, "Sum 100 of the sales"), (1, "Rename file_a")]:
        created_at = now - timedelta(hours=hours_ago)
        task = build_task(description=description, created_at=created_at, updated_at=created_at)
        stored.append(await orchestrator_repositories.tasks.create_task(task))
    oldest, middle, newest = stored

    async def found(**params: str) -> tuple[list[str], int]:
        response = await orchestrator_client.get("/tasks", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        return [task["id"] for task in body["tasks"]], body["total"]

    assert await found(q="100%") == ([oldest.id], 1)
    assert await found(q="SUM 100") == ([middle.id, oldest.id], 2)
    assert await found(q=newest.id[:12]) == ([newest.id], 1)
    window = {"created_after": middle.created_at.isoformat(), "created_before": newest.created_at.isoformat()}
    assert await found(**window) == ([middle.id], 1)
    assert await found(q="sum", limit="1", offset="1") == ([oldest.id], 2)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"q": ""}, ["q"]),
        ({"q": "x" * 201}, ["q", "200"]),
        ({"created_after": "yesterday"}, ["created_after"]),
        ({"created_after": "2026-11-30T00:00:00"}, ["created_after", "timezone"]),
        ({"created_after": "2026-11-30T00:00:00Z", "created_before": "2026-11-29T00:00:00Z"}, ["created_after"]),
        # Valid ISO 8601 with an offset, but before year 1 or after 9999 in UTC: PostgreSQL compares in UTC.
        ({"created_after": "0001-01-01T00:00:00+14:00"}, ["created_after", "UTC"]),
        ({"created_before": "9999-12-31T23:00:00-14:00"}, ["created_before", "UTC"]),
        ({"reason": "Budget Exhausted"}, ["reason", "pattern"]),
    ],
    ids=[
        "empty-q",
        "long-q",
        "not-a-time",
        "no-offset",
        "empty-window",
        "before-utc-year-1",
        "after-utc-year-9999",
        "not-a-reason-code",
    ],
)
async def test_search_refuses_bad_filters_with_400(
    orchestrator_client: httpx.AsyncClient, params: dict[str, str], words: list[str]
) -> None:
    assert_error(await orchestrator_client.get("/tasks", params=params), 400, *words)


# --- cost -----------------------------------------------------------------------------------------------------------


async def test_a_task_s_cost_includes_its_decomposition_priced_by_model_prices(
    orchestrator_client: httpx.AsyncClient, orchestrator_repositories: Repositories, orchestrator_settings: Settings
) -> None:
    task_id, _ = await failed_first_step(orchestrator_client, orchestrator_repositories)

    body = await task_state(orchestrator_client, task_id)
    [row] = (await orchestrator_client.get("/tasks")).json()["tasks"]
    cost = (await orchestrator_client.get(f"/tasks/{task_id}/cost")).json()

    decomposition = body["task"]["decomposition"]
    usage = decomposition["token_usage"]
    price = orchestrator_settings.model_prices[orchestrator_settings.claude_model]
    expected = (usage["input_tokens"] * price.input + usage["output_tokens"] * price.output) / 1_000_000
    assert decomposition["model"] == orchestrator_settings.claude_model
    assert cost["decomposition_usd"] == pytest.approx(expected) and cost["attempts_usd"] == 0.5
    assert usage["input_tokens"] > 0 and decomposition["cost_usd"] == pytest.approx(expected)
    assert body["cost_usd"] == pytest.approx(0.5 + expected)
    result_tokens = sum(sum(result["token_usage"].values()) for result in body["subtask_results"])
    assert body["total_tokens"] == result_tokens + sum(usage.values())
    assert (row["cost_usd"], row["total_tokens"]) == (pytest.approx(body["cost_usd"]), body["total_tokens"])
    assert (row["subtasks_failed"], row["subtasks_completed"], row["subtasks_total"]) == (1, 0, 2)
