"""Removing ended tasks, by DELETE /tasks/{id} and by the retention loop, takes every kind of data a task leaves:
rows (task, subtasks, results, agent logs, tool calls, artifacts, its webhooks), folders (workspace with staged
attempts, artifact copies) and Redis keys (its event stream, shared state); younger, unended and other tenants' tasks
keep theirs. Everything runs on the real PostgreSQL, Redis and file system; the task's data is made the way the
agents and the lifecycle make it.
"""

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from orchestrator.fleet_view import FleetView
from orchestrator.lifecycle import TaskLifecycle
from orchestrator.retention import LEFTOVER_AGE_SECONDS, RetentionLoop
from orchestrator.task_folders import TaskFolders
from orchestrator.task_removal import TaskRemoval
from shared.api_keys import ApiKeyScope
from shared.config import Settings
from shared.database import DatabaseManager, Repositories
from shared.models import AgentLog, Task, TaskStatus, ToolCall, new_task_id
from shared.redis_manager import RedisManager
from tests.api_keys import bearer, issue_key
from tests.factories import build_planned_task, build_result, build_task, subtask_id
from tests.integration.orchestrator.test_attempt_output import written
from tests.network import link_to
from tests.orchestrator_harness import OrchestratorFactory
from tests.polling import eventually

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
# Every table holding rows about a task, by the column naming it.
TASK_ROWS = {
    "tasks": "id",
    "subtasks": "task_id",
    "subtask_results": "task_id",
    "agent_logs": "task_id",
    "tool_calls": "task_id",
    "artifacts": "task_id",
    "webhooks": "task_id",
}
EVERYTHING = {*TASK_ROWS, "workspace", "artifact files", "event stream", "shared state"}
AN_HOUR_AGO = time.time() - LEFTOVER_AGE_SECONDS - 60


@pytest.fixture
async def tenant_db(orchestrator_settings: Settings, db: DatabaseManager) -> AsyncIterator[DatabaseManager]:
    """The database as the orchestrator of the test's tenant sees it (its Redis keys are `test_redis`'s)."""
    manager = DatabaseManager(orchestrator_settings.model_copy(update={"db_pool_min_size": 1, "db_pool_max_size": 4}))
    await manager.connect()
    yield manager
    await manager.disconnect()


@pytest.fixture
def tenant_lifecycle(
    orchestrator_settings: Settings, tenant_db: DatabaseManager, test_redis: RedisManager
) -> TaskLifecycle:
    return TaskLifecycle(
        orchestrator_settings,
        tenant_db,
        test_redis,
        FleetView.of(test_redis, orchestrator_settings.heartbeat_ttl_seconds),
    )


@pytest.fixture
def removal(
    orchestrator_settings: Settings,
    tenant_db: DatabaseManager,
    test_redis: RedisManager,
    tenant_lifecycle: TaskLifecycle,
) -> TaskRemoval:
    return TaskRemoval(tenant_db, test_redis, TaskFolders.of(orchestrator_settings), tenant_lifecycle.details)


def retention_loop(settings: Settings, db: DatabaseManager, removal: TaskRemoval, **overrides: int) -> RetentionLoop:
    return RetentionLoop(settings.model_copy(update=overrides), db, removal)


async def task_that_left_everything(lifecycle: TaskLifecycle, db: DatabaseManager, redis: RedisManager) -> Task:
    """A task that ran to completion as a fleet runs it: an attempt that wrote files (promoted into artifacts), a
    tool call, agent logs, shared state, a webhook of its own, its events; and a late attempt's staged files."""
    task = build_planned_task({"a": []}, trace_id=TRACE_ID)
    await lifecycle.submit(task)
    [claimed] = await lifecycle.claim([(subtask_id(task, "a"), 1, "agent1")])
    running = claimed.subtask
    written(lifecycle, running, {"report.md": "# Report\n", "tables/q1.csv": "a,b\n"})
    repos = db.repositories()
    await repos.audit.record_tool_call(
        ToolCall(agent_id="agent1", task_id=task.id, subtask_id=running.id, attempt=1, tool_name="write_file")
    )
    await repos.audit.log_agent_activities(
        [AgentLog(agent_id="agent1", task_id=task.id, subtask_id=running.id, trace_id=TRACE_ID, message="started")]
    )
    # Wants only cancellations: the completion below sends it nothing.
    await repos.webhooks.create(f"wh_{uuid.uuid4().hex}", "https://hooks.invalid/mats", ["TASK_CANCELLED"], task.id)
    await redis.state.set_shared_state(task.id, "progress", "half", ttl=3600)
    outcome = await lifecycle.apply_results([build_result(running)])
    assert outcome.artifacts[(running.id, 1)] and outcome.finished == {task.id: TaskStatus.COMPLETED}
    # An agent that hung wakes up after the task ended and stages files that never apply.
    written(lifecycle, running.model_copy(update={"delivery_token": "superseded"}), {"late.md": "never applied"})
    return task


async def what_is_left(task_id: str, db: DatabaseManager, redis: RedisManager, settings: Settings) -> set[str]:
    """The kinds of data the task still has somewhere."""
    left = {
        table
        for table, column in TASK_ROWS.items()
        if await db.pool.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", task_id)
    }
    if (Path(settings.shared_files_dir) / task_id).exists():
        left.add("workspace")
    if (Path(settings.artifacts_dir) / task_id).exists():
        left.add("artifact files")
    if await redis.client.exists(redis.keys.task_events(task_id)):
        left.add("event stream")
    if await redis.state.list_shared_state(task_id):
        left.add("shared state")
    return left


@contextmanager
def debug_lines_kept() -> Iterator[None]:
    """Debug lines reach capture_logs too (the configured level filters them before it)."""
    wrapper = structlog.get_config()["wrapper_class"]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        yield
    finally:
        structlog.configure(wrapper_class=wrapper)


async def ended_days_ago(db: DatabaseManager, task_id: str, days: int) -> None:
    await db.pool.execute(
        "UPDATE tasks SET created_at = now() - make_interval(days => $2 + 1),"
        " updated_at = now() - make_interval(days => $2) WHERE id = $1",
        task_id,
        days,
    )


# --- DELETE /tasks/{task_id} --------------------------------------------------------------------------------------


async def test_delete_removes_every_kind_of_data_the_task_left_and_nothing_of_another_task(
    orchestrator: OrchestratorFactory,
    tenant_lifecycle: TaskLifecycle,
    tenant_db: DatabaseManager,
    test_redis: RedisManager,
    orchestrator_settings: Settings,
) -> None:
    doomed = await task_that_left_everything(tenant_lifecycle, tenant_db, test_redis)
    kept = await task_that_left_everything(tenant_lifecycle, tenant_db, test_redis)
    assert await what_is_left(doomed.id, tenant_db, test_redis, orchestrator_settings) == EVERYTHING

    async with orchestrator({}) as client:
        assert (await client.get(f"/tasks/{doomed.id}")).status_code == 200  # its detail is cached now
        deleted = await client.delete(f"/tasks/{doomed.id}")
        read_after = await client.get(f"/tasks/{doomed.id}")
        deleted_again = await client.delete(f"/tasks/{doomed.id}")

    assert (deleted.status_code, deleted.content) == (204, b"")
    assert read_after.status_code == 404
    assert deleted_again.status_code == 404
    assert await what_is_left(doomed.id, tenant_db, test_redis, orchestrator_settings) == set()
    assert await what_is_left(kept.id, tenant_db, test_redis, orchestrator_settings) == EVERYTHING


async def test_delete_refuses_a_running_task_a_client_key_and_another_tenant_s_task(
    orchestrator: OrchestratorFactory,
    tenant_lifecycle: TaskLifecycle,
    tenant_db: DatabaseManager,
    db: DatabaseManager,
    orchestrator_settings: Settings,
) -> None:
    running = build_planned_task({"a": []})
    await tenant_lifecycle.submit(running)
    ended = build_task(status=TaskStatus.COMPLETED)
    await tenant_db.repositories().tasks.create_task(ended)
    foreign = build_task(status=TaskStatus.COMPLETED)
    await Repositories(db.pool, "another-tenant").tasks.create_task(foreign)
    client_key = await issue_key(db, orchestrator_settings.tenant_id, ApiKeyScope.CLIENT)

    async with orchestrator({}) as client:
        still_running = await client.delete(f"/tasks/{running.id}")
        by_a_client = await client.delete(f"/tasks/{ended.id}", headers=bearer(client_key))
        not_ours = await client.delete(f"/tasks/{foreign.id}")
        unknown = await client.delete(f"/tasks/{new_task_id()}")

    assert still_running.status_code == 409
    status = await tenant_db.repositories().tasks.task_status(running.id)
    assert status is not None and not status.is_terminal
    assert still_running.json()["error"].startswith(f"task {running.id} is still {status.value}; cancel it first")
    assert by_a_client.status_code == 403 and "operator key" in by_a_client.json()["error"]
    assert (not_ours.status_code, unknown.status_code) == (404, 404)
    tenants = await db.pool.fetch("SELECT id, tenant_id FROM tasks ORDER BY id")
    assert {row["id"] for row in tenants} == {running.id, ended.id, foreign.id}


async def test_the_task_list_says_how_long_ended_tasks_are_kept(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator({}) as client:
        kept_thirty_days = (await client.get("/tasks")).json()
    async with orchestrator({}, retention_days=0) as client:
        kept_forever = (await client.get("/tasks")).json()

    assert (kept_thirty_days["retention_days"], kept_forever["retention_days"]) == (30, None)


# --- the retention loop -------------------------------------------------------------------------------------------


async def test_the_purge_removes_tasks_ended_before_the_retention_in_batches_and_keeps_the_rest(
    tenant_lifecycle: TaskLifecycle,
    tenant_db: DatabaseManager,
    test_redis: RedisManager,
    orchestrator_settings: Settings,
    removal: TaskRemoval,
) -> None:
    expired = [await task_that_left_everything(tenant_lifecycle, tenant_db, test_redis) for _ in range(3)]
    young = await task_that_left_everything(tenant_lifecycle, tenant_db, test_redis)
    unended = build_planned_task({"a": []})
    await tenant_lifecycle.submit(unended)
    for task in expired:
        await ended_days_ago(tenant_db, task.id, 31)
    await ended_days_ago(tenant_db, young.id, 29)
    await ended_days_ago(tenant_db, unended.id, 31)  # old, but still pending: never the purge's

    await retention_loop(orchestrator_settings, tenant_db, removal, retention_days=0).run_once()
    assert [await what_is_left(task.id, tenant_db, test_redis, orchestrator_settings) for task in expired] == [
        EVERYTHING
    ] * 3  # 0 keeps tasks forever

    with capture_logs() as logs:
        await retention_loop(
            orchestrator_settings, tenant_db, removal, retention_days=30, retention_batch_size=2
        ).run_once()

    for task in expired:
        assert await what_is_left(task.id, tenant_db, test_redis, orchestrator_settings) == set()
    assert await what_is_left(young.id, tenant_db, test_redis, orchestrator_settings) == EVERYTHING
    assert await tenant_db.repositories().tasks.task_status(unended.id) is TaskStatus.PENDING
    assert [entry["count"] for entry in logs if entry["event"] == "tasks_removed"] == [2, 1]  # one per batch


async def test_leftovers_of_removed_tasks_are_swept_and_nothing_else(
    tenant_lifecycle: TaskLifecycle,
    tenant_db: DatabaseManager,
    test_redis: RedisManager,
    orchestrator_settings: Settings,
    removal: TaskRemoval,
) -> None:
    live = await task_that_left_everything(tenant_lifecycle, tenant_db, test_redis)
    removed = await task_that_left_everything(tenant_lifecycle, tenant_db, test_redis)
    await removal.remove_ended([removed.id])
    # Folders: one left long ago by a task that is gone, one just written, the live task's, and an operator's.
    gone, just_gone = new_task_id(), new_task_id()
    roots = [Path(orchestrator_settings.shared_files_dir), Path(orchestrator_settings.artifacts_dir)]
    for root in roots:
        for task_id in (gone, just_gone):
            (root / task_id / "output").mkdir(parents=True)
            (root / task_id / "output" / "late.md").write_text("written after its task went")
        (root / "operator-notes").mkdir()
        for name in (gone, live.id, "operator-notes"):
            os.utime(root / name, (AN_HOUR_AGO, AN_HOUR_AGO))
    # Audit rows: what the removed task's agent wrote after it went, and a row naming a task never stored here.
    audit = tenant_db.repositories().audit
    never_stored = new_task_id()
    await audit.log_agent_activities(
        [
            AgentLog(agent_id="agent1", task_id=removed.id, message="subtask completed"),
            AgentLog(agent_id="agent1", task_id=never_stored, message="not the retention's"),
        ]
    )
    await audit.record_tool_call(ToolCall(agent_id="agent1", task_id=removed.id, tool_name="write_file"))

    await retention_loop(orchestrator_settings, tenant_db, removal).run_once()

    for root in roots:
        assert sorted(path.name for path in root.iterdir()) == sorted([just_gone, live.id, "operator-notes"])
    assert await what_is_left(removed.id, tenant_db, test_redis, orchestrator_settings) == set()
    logged = await tenant_db.pool.fetch("SELECT task_id FROM agent_logs")
    assert {row["task_id"] for row in logged} == {live.id, never_stored}
    assert await what_is_left(live.id, tenant_db, test_redis, orchestrator_settings) == EVERYTHING


async def test_the_loop_rides_out_a_postgresql_outage_with_one_warning(
    orchestrator_settings: Settings,
    tenant_lifecycle: TaskLifecycle,
    tenant_db: DatabaseManager,
    test_redis: RedisManager,
) -> None:
    expired = await task_that_left_everything(tenant_lifecycle, tenant_db, test_redis)
    await ended_days_ago(tenant_db, expired.id, 31)
    link, postgres_url = link_to(orchestrator_settings.postgres_url)
    settings = orchestrator_settings.model_copy(
        update={"postgres_url": postgres_url, "db_pool_min_size": 1, "retention_interval_seconds": 10.0}
    )
    cut_off = DatabaseManager(settings)
    await cut_off.connect()
    loop = RetentionLoop(
        settings, cut_off, TaskRemoval(cut_off, test_redis, TaskFolders.of(settings), tenant_lifecycle.details)
    )
    try:
        link.cut()
        with debug_lines_kept(), capture_logs() as logs:
            running = asyncio.create_task(loop.start())
            try:
                # Three failed rounds: the first warns, the others say so at debug level only.
                await eventually(
                    lambda: asyncio.sleep(0, [entry for entry in logs if entry["event"] == "loop_store_unreachable"]),
                    lambda failures: len(failures) >= 3,
                )
                link.restore()
                await eventually(
                    lambda: tenant_db.repositories().tasks.task_exists(expired.id), lambda exists: not exists
                )
            finally:
                loop.stop()
                await running
    finally:
        link.restore()
        await cut_off.disconnect()
        link.close()

    loud = [(entry["event"], entry.get("store")) for entry in logs if entry["log_level"] in {"warning", "error"}]
    assert loud == [("loop_store_unreachable", "PostgreSQL")]
    assert await what_is_left(expired.id, tenant_db, test_redis, orchestrator_settings) == set()


async def test_a_removal_redis_cannot_take_part_in_still_removes_the_rest_and_the_keys_expire(
    orchestrator_settings: Settings,
    tenant_lifecycle: TaskLifecycle,
    tenant_db: DatabaseManager,
    test_redis: RedisManager,
    unreachable_redis: RedisManager,
) -> None:
    task = await task_that_left_everything(tenant_lifecycle, tenant_db, test_redis)
    removal = TaskRemoval(tenant_db, unreachable_redis, TaskFolders.of(orchestrator_settings), tenant_lifecycle.details)

    with capture_logs() as logs:
        found = await removal.remove_ended([task.id])

    assert found == {task.id: TaskStatus.COMPLETED}
    assert await what_is_left(task.id, tenant_db, test_redis, orchestrator_settings) == {"event stream", "shared state"}
    assert [entry["event"] for entry in logs if entry["log_level"] == "warning"] == ["task_keys_left_to_expire"]
    # Nothing of it lives forever: its stream got a time to live with its ending event, its state with each write.
    keys = [test_redis.keys.task_events(task.id), test_redis.keys.state(task.id, "progress")]
    assert all(ttl > 0 for ttl in [await test_redis.client.ttl(key) for key in keys])


async def test_a_cancelled_task_s_late_result_after_its_removal_is_rejected_and_recreates_nothing(
    orchestrator_settings: Settings,
    tenant_lifecycle: TaskLifecycle,
    tenant_db: DatabaseManager,
    test_redis: RedisManager,
    removal: TaskRemoval,
) -> None:
    task = build_planned_task({"a": []}, trace_id=TRACE_ID)
    await tenant_lifecycle.submit(task)
    [claimed] = await tenant_lifecycle.claim([(subtask_id(task, "a"), 1, "agent1")])
    await tenant_lifecycle.cancel(task.id)
    await removal.remove_ended([task.id])

    outcome = await tenant_lifecycle.apply_results([build_result(claimed.subtask)])

    assert (outcome.applied, list(outcome.rejected)) == ([], [0])
    assert await what_is_left(task.id, tenant_db, test_redis, orchestrator_settings) == set()
