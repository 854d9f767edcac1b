"""embedding_search ranks the task's workspace files and its completed subtasks' outputs, and nothing else."""

import json
import os
from typing import Any

from shared.database import DatabaseManager, Repositories
from shared.models import ResultStatus, Task
from tests.factories import build_result, build_task
from tests.unit.agent.fixtures import ContextFactory, SettingsFactory, call_tool


async def search(context: Any, query: str, **arguments: Any) -> dict[str, Any]:
    text, is_error = await call_tool(context, "embedding_search", query=query, **arguments)
    assert not is_error, text
    answer: dict[str, Any] = json.loads(text)
    return answer


async def stored_task(db: DatabaseManager, tenant: str, subtasks: int = 2) -> Task:
    return await Repositories(db.pool, tenant).tasks.create_task(build_task(subtasks=subtasks))


async def test_a_workspace_file_is_found_with_a_snippet(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    (context.workspace.root / "data").mkdir()
    (context.workspace.root / "data" / "inventory.txt").write_text(
        "The Rotterdam warehouse holds 420 pallets of widgets.\nThe Lyon depot is empty."
    )
    (context.workspace.output / "notes.md").write_text("Nothing about storage here, only bananas.")

    answer = await search(context, "pallets in Rotterdam")

    assert [result["source"] for result in answer["results"]] == ["file:data/inventory.txt"]
    assert "**Rotterdam**" in answer["results"][0]["snippet"]
    assert answer["results"][0]["rank"] > 0
    assert answer["files_searched"] == 2


async def test_an_earlier_completed_subtask_output_is_found(
    tool_context_factory: ContextFactory, db: DatabaseManager, agent_tenant: str
) -> None:
    task, other_task = await stored_task(db, agent_tenant), await stored_task(db, agent_tenant, subtasks=1)
    done, failed = task.subtasks
    results = db.repositories().results
    output = "Quarterly revenue grew 25.8% from Q1 to Q4."
    await results.save_subtask_result(build_result(done, output=output), applied=True)
    await results.save_subtask_result(
        build_result(failed, status=ResultStatus.FAILED, error="quarterly revenue feed down"), applied=True
    )
    await results.save_subtask_result(build_result(other_task.subtasks[0], output=output), applied=True)
    context = tool_context_factory(task_id=task.id)

    answer = await search(context, "quarterly revenue")

    assert [result["source"] for result in answer["results"]] == [f"subtask:{done.id}"]
    assert "**revenue**" in answer["results"][0]["snippet"]


async def test_another_tenant_s_task_outputs_are_not_searched(
    tool_context_factory: ContextFactory, db: DatabaseManager
) -> None:
    """A request naming another tenant's task id (a forged assignment) finds none of that task's outputs."""
    foreign = await stored_task(db, "another-tenant", subtasks=1)
    output = "Tenant B's merger plan: acquire the Lyon depot."
    await db.repositories().results.save_subtask_result(build_result(foreign.subtasks[0], output=output), applied=True)
    context = tool_context_factory(task_id=foreign.id)

    answer = await search(context, "merger plan")

    assert answer["results"] == []


async def test_results_are_ranked_and_limited(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    (context.workspace.root / "a.txt").write_text("supplier prices")
    (context.workspace.root / "b.txt").write_text("supplier prices, supplier prices and more supplier prices")
    (context.workspace.root / "c.txt").write_text("one supplier")

    answer = await search(context, "supplier prices", limit=2)

    assert [result["source"] for result in answer["results"]] == ["file:b.txt", "file:a.txt"]


async def test_nothing_found_is_an_empty_answer_not_an_error(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    (context.workspace.root / "a.txt").write_text("apples")
    assert (await search(context, "the and of"))["results"] == []
    assert (await search(context, "zebra"))["results"] == []


async def test_binary_files_are_skipped_and_bad_limits_refused(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    (context.workspace.root / "blob.bin").write_bytes(b"zebra\x00\x01\x02")
    assert (await search(context, "zebra"))["files_searched"] == 0
    _text, is_error = await call_tool(context, "embedding_search", query="zebra", limit=500)
    assert is_error


async def test_a_workspace_folder_swapped_for_a_symlink_is_not_searched(tool_context_factory: ContextFactory) -> None:
    context = tool_context_factory()
    other_task = context.workspace.root.parent / "other_task"
    other_task.mkdir()
    (other_task / "secret.txt").write_text("The zebra code is 1234.")
    context.workspace.root.rename(context.workspace.root.parent / "moved_away")
    os.symlink(other_task, context.workspace.root)

    text, is_error = await call_tool(context, "embedding_search", query="zebra")

    assert is_error
    assert "is a symlink" in text
    assert "1234" not in text


async def test_a_search_phrased_to_run_long_is_cut_off(
    agent_settings_factory: SettingsFactory, tool_context_factory: ContextFactory
) -> None:
    """The search runs on the orchestrator's database: the model must not be able to keep it busy."""
    context = tool_context_factory(settings=agent_settings_factory(agent_query_timeout_ms=200))
    words = " ".join(f"word{n}" for n in range(60))
    for n in range(100):  # 20 MB of text to parse: far more than 200 ms on any machine
        (context.workspace.output / f"file{n}.md").write_text((words + "\n") * 3000)

    slow, slow_error = await call_tool(context, "embedding_search", query=" OR ".join(f"w{n}" for n in range(60)))
    long_text, long_error = await call_tool(context, "embedding_search", query="x" * 501)
    odd_limit, odd_error = await call_tool(context, "embedding_search", query="word1", limit="abc")

    assert slow_error and "time limit" in slow
    assert long_error and "limit is 500" in long_text
    assert odd_error and "whole number" in odd_limit
