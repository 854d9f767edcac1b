"""Tasks and the plan they were decomposed into."""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.database.executor import Executor
from shared.database.result_repository import RESULT_COLUMNS, result_from_row
from shared.database.subtask_repository import SUBTASK_COLUMNS, subtask_from_row
from shared.database.task_search import EVERY_TASK, TaskSearch
from shared.models import (
    TERMINAL_TASK_STATUSES,
    StatusReason,
    SubTask,
    SubTaskResult,
    SubTaskStatus,
    Task,
    TaskStatus,
    TaskSummary,
)

TASK_COLUMNS = (
    "id, user_id, description, status, result, error, decomposition_fallback, decomposition, created_at, updated_at, "
    "trace_id, task_type, status_reason, context_pack_id, max_cost_usd, deadline_at"
)


def _status_reason_of(tasks: str) -> str:
    """The status reason of the task rows named `tasks` in a query, as read: the task's own, else that of its first
    subtask (in plan order) that has one (one waiting for an agent, say), so the task list says why a task is not
    moving. Derived when read, not copied into the task: a copy would race the claims that clear the subtasks'."""
    return f"""coalesce({tasks}.status_reason, (
        SELECT s.status_reason FROM subtasks s
        WHERE s.task_id = {tasks}.id AND s.status_reason IS NOT NULL ORDER BY s.position LIMIT 1
    )) AS status_reason"""


TASK_READ_COLUMNS = TASK_COLUMNS.replace("status_reason", _status_reason_of("tasks"))
TERMINAL_TASK_VALUES = [status.value for status in TERMINAL_TASK_STATUSES]

TaskDetail = tuple[Task, list[SubTaskResult]]


@dataclass(frozen=True)
class StatusChange:
    """A task's move to `status`, with its result, error or status reason when it ends (None leaves the stored
    one)."""

    task_id: str
    status: TaskStatus
    result: dict[str, Any] | None = None
    error: str | None = None
    reason: StatusReason | None = None


def insert_plan(task_id: str, *, plan: str, trace_id: str, tenant_id: str) -> str:
    """The INSERT of a task's subtasks from a JSON array of `plan_entry` rows; the arguments are SQL expressions
    (parameters, or a subquery for the task's id)."""
    return f"""
        INSERT INTO subtasks (id, task_id, position, description, required_capabilities, dependencies, priority,
                              estimated_duration, task_type, status, attempt_count, created_at, updated_at, trace_id,
                              tenant_id)
        SELECT plan.id, {task_id}, plan.position, plan.description, plan.required_capabilities, plan.dependencies,
               plan.priority, plan.estimated_duration, plan.task_type, plan.status, plan.attempt_count,
               plan.created_at, plan.updated_at, {trace_id}, {tenant_id}
        FROM jsonb_to_recordset({plan}::jsonb) AS plan (
            id text, position int, description text, required_capabilities text[], dependencies text[],
            priority int, estimated_duration int, task_type text, status text, attempt_count int,
            created_at timestamptz, updated_at timestamptz
        )
    """


def task_from_row(row: Mapping[str, Any], subtasks: list[SubTask] | None = None) -> Task:
    return Task.model_validate({**row, "subtasks": with_blockers(subtasks or [])})


def with_blockers(subtasks: list[SubTask]) -> list[SubTask]:
    """The subtasks, each blocked one with the failed subtasks upstream of it (`blocked_by`): derived when read,
    from the plan as it stands, so it never disagrees with the statuses it comes from."""
    by_id = {subtask.id: subtask for subtask in subtasks}

    def failed_upstream(subtask: SubTask, seen: set[str]) -> list[str]:
        found: list[str] = []
        for dependency_id in subtask.dependencies:
            dependency = by_id.get(dependency_id)
            if dependency is None or dependency_id in seen:
                continue
            seen.add(dependency_id)
            if dependency.status is SubTaskStatus.FAILED:
                found.append(dependency_id)
            elif dependency.status is SubTaskStatus.BLOCKED:
                found += failed_upstream(dependency, seen)
        return found

    for subtask in subtasks:
        if subtask.status is SubTaskStatus.BLOCKED:
            subtask.blocked_by = failed_upstream(subtask, set())
    return subtasks


def _task_values(task: Task) -> tuple[Any, ...]:
    """The tasks row's values, in TASK_COLUMNS order."""
    decomposition = task.decomposition.model_dump(mode="json") if task.decomposition else None
    return (
        task.id,
        task.user_id,
        task.description,
        task.status.value,
        task.result,
        task.error,
        task.decomposition_fallback,
        decomposition,
        task.created_at,
        task.updated_at,
        task.trace_id,
        task.task_type.value,
        task.status_reason.model_dump(mode="json") if task.status_reason else None,
        task.context_pack_id,
        task.max_cost_usd,
        task.deadline_at,
    )


def plan_entry(subtask: SubTask, position: int) -> dict[str, Any]:
    """A subtask's row as JSON for `jsonb_to_recordset` (its trace id is its task's: see create_task)."""
    return {
        "id": subtask.id,
        "position": position,
        "description": subtask.description,
        "required_capabilities": [capability.value for capability in subtask.required_capabilities],
        "dependencies": subtask.dependencies,
        "priority": subtask.priority,
        "estimated_duration": subtask.estimated_duration,
        "task_type": subtask.task_type.value,
        "status": subtask.status.value,
        "attempt_count": subtask.attempt_count,
        "created_at": subtask.created_at.isoformat(),
        "updated_at": subtask.updated_at.isoformat(),
    }


# create_task's subtasks: the task its first statement stores, the plan, the trace id and tenant its parameters.
STORE_PLAN = insert_plan("(SELECT id FROM stored_task)", plan="$17", trace_id="$11", tenant_id="$18")


class TaskRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def create_task(self, task: Task) -> Task:
        """Insert the task and its subtasks (in plan order), as they are, in one statement (so atomically without a
        transaction); returns what was stored. The subtasks are stored with the task's trace id: every queue item,
        offer and result of theirs carries it without a join."""
        row = await self._executor.fetchrow(
            f"""
            WITH stored_task AS (
                INSERT INTO tasks (id, user_id, description, status, result, error, decomposition_fallback,
                                   decomposition, created_at, updated_at, trace_id, task_type, status_reason,
                                   context_pack_id, max_cost_usd, deadline_at, tenant_id)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $18)
                RETURNING {TASK_COLUMNS}
            ),
            stored_subtasks AS ({STORE_PLAN})
            SELECT row_to_json(stored_task) AS task FROM stored_task
            """,
            *_task_values(task),
            [plan_entry(subtask, position) for position, subtask in enumerate(task.subtasks)],
            self._tenant_id,
        )
        subtasks = [subtask.model_copy(update={"trace_id": task.trace_id}) for subtask in task.subtasks]
        return task_from_row(row["task"], subtasks)

    async def get_task(self, task_id: str) -> Task | None:
        row = await self._executor.fetchrow(
            f"SELECT {TASK_READ_COLUMNS} FROM tasks WHERE id = $1 AND tenant_id = $2", task_id, self._tenant_id
        )
        if row is None:
            return None
        subtask_rows = await self._executor.fetch(
            f"SELECT {SUBTASK_COLUMNS} FROM subtasks WHERE task_id = $1 ORDER BY position", task_id
        )
        return task_from_row(row, [subtask_from_row(subtask_row) for subtask_row in subtask_rows])

    async def task_exists(self, task_id: str) -> bool:
        """Whether this tenant has a task with this id."""
        exists: bool = await self._executor.fetchval(
            "SELECT EXISTS (SELECT FROM tasks WHERE id = $1 AND tenant_id = $2)", task_id, self._tenant_id
        )
        return exists

    async def task_status(self, task_id: str) -> TaskStatus | None:
        """The task's status; None when this tenant has no task with this id."""
        status: str | None = await self._executor.fetchval(
            "SELECT status FROM tasks WHERE id = $1 AND tenant_id = $2", task_id, self._tenant_id
        )
        return None if status is None else TaskStatus(status)

    async def get_task_detail(self, task_id: str, *, applied_only: bool = False) -> TaskDetail | None:
        """The task, its subtasks in plan order and every result reported for them (or only those that
        counted), in one round trip."""
        return (await self.get_task_details([task_id], applied_only=applied_only)).get(task_id)

    async def get_task_details(self, task_ids: Collection[str], *, applied_only: bool = False) -> dict[str, TaskDetail]:
        """`get_task_detail` of several tasks in one round trip, by id (an unknown or another tenant's id is left
        out)."""
        rows = await self._executor.fetch(
            f"""
            SELECT row_to_json(t) AS task,
                   (SELECT coalesce(json_agg(to_jsonb(s) - 'position' ORDER BY s.position), '[]')
                    FROM (SELECT position, {SUBTASK_COLUMNS} FROM subtasks WHERE task_id = t.id) s
                   ) AS subtasks,
                   (SELECT coalesce(json_agg(r ORDER BY r.created_at, r.result_id), '[]')
                    FROM (SELECT {RESULT_COLUMNS} FROM subtask_results
                          WHERE task_id = t.id AND (applied OR NOT $2)) r
                   ) AS results
            FROM (SELECT {TASK_READ_COLUMNS} FROM tasks WHERE id = ANY($1::text[]) AND tenant_id = $3) t
            """,
            list(task_ids),
            applied_only,
            self._tenant_id,
        )
        details = {}
        for row in rows:
            task = task_from_row(row["task"], [subtask_from_row(subtask) for subtask in row["subtasks"]])
            details[task.id] = (task, [result_from_row(result) for result in row["results"]])
        return details

    async def list_tasks(
        self, search: TaskSearch = EVERY_TASK, *, limit: int = 50, offset: int = 0
    ) -> list[TaskSummary]:
        """Newest first, with subtask progress counts and what the task cost so far (by the cost ledger, planning
        included), filtered by `search`."""
        # The page is cut first and its subtasks and results summed after, so a page reads its own rows (by index),
        # not every task, subtask and result ever stored.
        where, arguments = search.where(self._tenant_id)
        page = len(arguments)
        rows = await self._executor.fetch(
            f"""
            SELECT t.id, t.user_id, t.description, t.task_type, t.status, {_status_reason_of("t")}, t.error,
                   t.decomposition_fallback, t.created_at, t.updated_at, t.max_cost_usd, progress.subtasks_total,
                   progress.subtasks_completed, progress.subtasks_failed,
                   spent.tokens AS total_tokens, spent.cost_usd
            FROM (
                SELECT id, user_id, description, task_type, status, status_reason, error, decomposition_fallback,
                       created_at, updated_at, tenant_id, max_cost_usd
                FROM tasks
                WHERE {where}
                ORDER BY created_at DESC, id
                LIMIT ${page + 1} OFFSET ${page + 2}
            ) t
            CROSS JOIN LATERAL (
                SELECT count(*) AS subtasks_total,
                       count(*) FILTER (WHERE s.status = 'completed') AS subtasks_completed,
                       count(*) FILTER (WHERE s.status = 'failed') AS subtasks_failed
                FROM subtasks s WHERE s.task_id = t.id
            ) progress
            CROSS JOIN LATERAL (
                SELECT coalesce(sum(c.cost_usd), 0)::float8 AS cost_usd,
                       coalesce(sum(c.input_tokens + c.output_tokens + c.cache_read_input_tokens
                                    + c.cache_creation_input_tokens), 0) AS tokens
                FROM model_calls c WHERE c.task_id = t.id AND c.tenant_id = t.tenant_id
            ) spent
            ORDER BY t.created_at DESC, t.id
            """,
            *arguments,
            limit,
            offset,
        )
        return [TaskSummary.model_validate(dict(row)) for row in rows]

    async def count_tasks(self, search: TaskSearch = EVERY_TASK) -> int:
        """How many tasks `search` finds, whatever page is shown."""
        where, arguments = search.where(self._tenant_id)
        count: int = await self._executor.fetchval(f"SELECT count(*) FROM tasks WHERE {where}", *arguments)
        return count

    async def reopen_task(self, task_id: str) -> bool:
        """failed → in progress for an operator's retry, its result and error cleared; False unless it had failed."""
        reopened = await self._executor.fetchval(
            """
            UPDATE tasks
            SET status = 'in_progress', result = NULL, error = NULL, status_reason = NULL,
                updated_at = greatest(now(), updated_at)
            WHERE id = $1 AND tenant_id = $2 AND status = 'failed'
            RETURNING true
            """,
            task_id,
            self._tenant_id,
        )
        return bool(reopened)

    async def update_task_status(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Task | None:
        """Move a task that has not ended yet to `status`; None when it does not exist or already ended."""
        return (await self.update_task_statuses([StatusChange(task_id, status, result, error)])).get(task_id)

    async def update_task_statuses(self, changes: Sequence[StatusChange]) -> dict[str, Task]:
        """`update_task_status` for several distinct tasks in one statement; the tasks that moved, by id."""
        if not changes:
            return {}
        rows = await self._executor.fetch(
            f"""
            UPDATE tasks
            SET status = change.status, result = COALESCE(change.result, tasks.result),
                error = COALESCE(change.error, tasks.error), updated_at = greatest(now(), tasks.updated_at),
                -- the change's reason if it gives one; why a task paused stops being true when it ends
                status_reason = CASE WHEN change.reason IS NOT NULL THEN change.reason
                                     WHEN tasks.status = 'paused' THEN NULL ELSE tasks.status_reason END
            FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::text[], $6::jsonb[])
                 AS change (id, status, result, error, reason)
            WHERE tasks.id = change.id AND tasks.status <> ALL($5::text[])
            RETURNING {", ".join(f"tasks.{column}" for column in TASK_COLUMNS.split(", "))}
            """,
            [change.task_id for change in changes],
            [change.status.value for change in changes],
            [change.result for change in changes],
            [change.error for change in changes],
            TERMINAL_TASK_VALUES,
            [change.reason.model_dump(mode="json") if change.reason else None for change in changes],
        )
        return {row["id"]: task_from_row(row) for row in rows}

    async def lock_past_deadline(self, limit: int) -> dict[str, datetime]:
        """This tenant's tasks that have not ended and whose deadline has passed (at most `limit`, the longest
        overdue first), by id with their deadline, their row locks taken for the caller's transaction. A task
        another transaction holds is left for the next look rather than waited for."""
        rows = await self._executor.fetch(
            """
            SELECT id, deadline_at FROM tasks
            WHERE tenant_id = $1 AND deadline_at <= now() AND status <> ALL($2::text[])
            ORDER BY deadline_at LIMIT $3
            FOR UPDATE SKIP LOCKED
            """,
            self._tenant_id,
            TERMINAL_TASK_VALUES,
            limit,
        )
        return {row["id"]: row["deadline_at"] for row in rows}

    async def lock_task(self, task_id: str) -> TaskStatus | None:
        """Take the task's row lock for the caller's transaction (serialises work on one task's subtasks)."""
        return (await self.lock_tasks([task_id])).get(task_id)

    async def lock_tasks(self, task_ids: Collection[str]) -> dict[str, TaskStatus]:
        """`lock_task` for several tasks, always in id order so two lockers never wait on each other in a cycle.

        Returns the status of each task that exists and is this tenant's (another tenant's is none of its business).
        """
        rows = await self._executor.fetch(
            "SELECT id, status FROM tasks WHERE id = ANY ($1::text[]) AND tenant_id = $2 ORDER BY id FOR UPDATE",
            sorted(task_ids),
            self._tenant_id,
        )
        return {row["id"]: TaskStatus(row["status"]) for row in rows}
