"""The task list's search and totals on the real server: text taken literally (LIKE wildcards escaped) in any case or
as an id prefix, a half-open date window, counts of every match, and what each task cost, decomposition included."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.database import DatabaseManager, Repositories
from shared.database.task_search import TaskSearch, like_literal
from shared.ledger import LedgerEntry, PriceBook
from shared.models import CallPurpose, ResultStatus, StatusReason, SubTaskStatus, Task, TokenUsage
from tests.factories import build_result, build_task, run_attempt

NOW = datetime.now(UTC)
DESCRIPTIONS = ["Rename file_a to b", "Rename fileXa to b", "Copy C:\\data\\x now", "Analyse the LOGS of 50% of hosts"]


async def store(repos: Repositories, descriptions: list[str]) -> list[Task]:
    """Tasks created an hour apart, oldest first."""
    stored = []
    for hours_ago, description in zip(range(len(descriptions), 0, -1), descriptions, strict=True):
        created_at = NOW - timedelta(hours=hours_ago)
        task = build_task(description=description, created_at=created_at, updated_at=created_at)
        stored.append(await repos.tasks.create_task(task))
    return stored


async def found(repos: Repositories, search: TaskSearch) -> tuple[list[str], int]:
    return [task.description for task in await repos.tasks.list_tasks(search)], await repos.tasks.count_tasks(search)


def test_like_literal_escapes_the_wildcards_and_the_escape_character() -> None:
    assert like_literal("50%_a\\b") == "50\\%\\_a\\\\b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("file_a", ["Rename file_a to b"]),  # `_` is not "any character": fileXa stays out
        ("50%", ["Analyse the LOGS of 50% of hosts"]),
        ("c:\\data\\", ["Copy C:\\data\\x now"]),
        ("logs", ["Analyse the LOGS of 50% of hosts"]),
        ("RENAME", ["Rename fileXa to b", "Rename file_a to b"]),
        ("%", ["Analyse the LOGS of 50% of hosts"]),
        ("nothing like it", []),
    ],
)
async def test_text_matches_the_description_literally_in_any_case(
    db: DatabaseManager, text: str, expected: list[str]
) -> None:
    repos = db.repositories()
    await store(repos, DESCRIPTIONS)

    assert await found(repos, TaskSearch(text=text)) == (expected, len(expected))


async def test_text_matches_the_start_of_a_task_id_only(db: DatabaseManager) -> None:
    repos = db.repositories()
    tasks = await store(repos, DESCRIPTIONS)
    target = tasks[1]

    assert await found(repos, TaskSearch(text=target.id[:14])) == ([target.description], 1)
    assert await found(repos, TaskSearch(text=target.id[6:20])) == ([], 0)  # from its middle: no match
    assert (await found(repos, TaskSearch(text="task_")))[1] == len(tasks)


async def test_the_date_window_takes_its_start_and_leaves_out_its_end(db: DatabaseManager) -> None:
    repos = db.repositories()
    first, second, third, fourth = await store(repos, DESCRIPTIONS)

    window = TaskSearch(created_after=second.created_at, created_before=fourth.created_at)
    since = TaskSearch(created_after=third.created_at)
    until = TaskSearch(created_before=second.created_at)

    assert await found(repos, window) == ([third.description, second.description], 2)
    assert await found(repos, since) == ([fourth.description, third.description], 2)
    assert await found(repos, until) == ([first.description], 1)


async def test_pages_of_a_search_add_up_to_its_total(db: DatabaseManager) -> None:
    repos = db.repositories()
    await store(repos, [f"Rename batch {number}" for number in range(5)] + ["Something else entirely"])
    search = TaskSearch(text="rename batch")

    pages = [await repos.tasks.list_tasks(search, limit=2, offset=offset) for offset in (0, 2, 4)]

    assert [len(page) for page in pages] == [2, 2, 1]
    assert len({task.id for page in pages for task in page}) == await repos.tasks.count_tasks(search) == 5


async def test_a_summary_adds_every_model_call_of_the_task_planning_included(db: DatabaseManager) -> None:
    repos = db.repositories()
    planning = TokenUsage(input_tokens=1000, output_tokens=200, cache_read_input_tokens=30)
    spent = await repos.tasks.create_task(build_task(subtasks=3))
    untouched = await repos.tasks.create_task(build_task(subtasks=1, created_at=NOW - timedelta(days=1)))
    await repos.subtasks.queue_ready(spent.id)
    first, second, _ = spent.subtasks
    done = await run_attempt(repos, first.id, finish=SubTaskStatus.COMPLETED)
    failed = await run_attempt(repos, second.id, finish=SubTaskStatus.FAILED)
    usage = TokenUsage(input_tokens=500, output_tokens=50, cache_creation_input_tokens=7)
    late = build_result(failed, status=ResultStatus.FAILED, token_usage=usage, cost_usd=0.5)
    calls = [
        LedgerEntry(CallPurpose.DECOMPOSITION, "claude-sonnet-5-5", planning, 0.006, task_id=spent.id),
        # The late result ran, so it cost, even if it changed nothing.
        *PriceBook({}).priced_results([build_result(done, token_usage=usage, cost_usd=0.25), late])[1],
    ]
    await repos.ledger.record(calls)

    listed = {summary.id: summary for summary in await repos.tasks.list_tasks()}

    summary = listed[spent.id]
    assert (summary.subtasks_total, summary.subtasks_completed, summary.subtasks_failed) == (3, 1, 1)
    assert summary.total_tokens == planning.total_tokens + 2 * usage.total_tokens
    assert summary.cost_usd == pytest.approx(0.006 + 0.25 + 0.5)
    assert (listed[untouched.id].cost_usd, listed[untouched.id].total_tokens) == (0.0, 0)


async def test_a_reason_finds_tasks_that_have_it_themselves_or_on_one_of_their_subtasks(db: DatabaseManager) -> None:
    repos = db.repositories()
    waiting = StatusReason(code="provider_unavailable", message="waiting on Claude: overloaded (529)")
    unplanned = await repos.tasks.create_task(build_task(subtasks=0, status_reason=waiting))
    planned = await repos.tasks.create_task(build_task(subtasks=2))
    await repos.tasks.create_task(build_task(subtasks=1, status_reason=StatusReason(code="no_live_agent", message="w")))
    await repos.subtasks.queue_ready(planned.id)
    await repos.subtasks.set_status_reasons([(planned.subtasks[1].id, 1, waiting)])

    listed, total = await found(repos, TaskSearch(reason="provider_unavailable"))

    assert (set(listed), total) == ({unplanned.description, planned.description}, 2)
    assert await found(repos, TaskSearch(reason="budget_exhausted")) == ([], 0)
