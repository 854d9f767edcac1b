"""Task budgets and the paused state: what a budget check needs to know of a task, and the transitions in and out
of `paused`, each conditional on the state it moves from."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from shared.database.executor import Executor
from shared.database.task_repository import TASK_COLUMNS, task_from_row
from shared.models import StatusReason, Task, TaskStatus

# The states a task may pause from, and the one pause keeps it in while its reason changes.
PAUSABLE = ["pending", "in_progress", "paused"]
RETURNED_TASK = ", ".join(f"tasks.{column}" for column in TASK_COLUMNS.split(", "))


@dataclass(frozen=True)
class TaskBudget:
    """What a task's budget is checked against besides its spend: its budget, its decomposition's share of the
    spend and how many attempts reported a result (the rest, divided by them, is what one more attempt costs)."""

    task_id: str
    status: TaskStatus
    max_cost_usd: float | None
    decomposition_usd: float
    attempts: int


@dataclass(frozen=True)
class PauseChange:
    """A task now paused, and whether it was paused before (then only its reason changed)."""

    task: Task
    was_paused: bool


class BudgetRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def budgets_of(self, task_ids: Collection[str], *, with_budget_only: bool = True) -> dict[str, TaskBudget]:
        """Each of this tenant's tasks that has not ended (and, by default, has a max_cost_usd), by id."""
        if not task_ids:
            return {}
        rows = await self._executor.fetch(
            """
            SELECT t.id, t.status, t.max_cost_usd, (SELECT coalesce(sum(c.cost_usd), 0)::float8 FROM model_calls c
                    WHERE c.task_id = t.id AND c.tenant_id = t.tenant_id AND c.purpose IN ('decomposition', 'repair')
                   ) AS decomposition_usd,
                   (SELECT count(*) FROM subtask_results r WHERE r.task_id = t.id) AS attempts
            FROM tasks t
            WHERE t.id = ANY ($1::text[]) AND t.tenant_id = $2 AND t.status = ANY ($3::text[])
              AND (t.max_cost_usd IS NOT NULL OR NOT $4)
            """,
            list(task_ids),
            self._tenant_id,
            PAUSABLE,
            with_budget_only,
        )
        return {
            row["id"]: TaskBudget(
                row["id"], TaskStatus(row["status"]), row["max_cost_usd"], row["decomposition_usd"], row["attempts"]
            )
            for row in rows
        }

    async def pause(self, pauses: Sequence[tuple[str, StatusReason]]) -> list[PauseChange]:
        """pending or in progress → paused with its reason (a paused task keeps its state and takes the new
        reason), for each (task id, reason) of this tenant's; the tasks changed."""
        if not pauses:
            return []
        rows = await self._executor.fetch(
            f"""
            UPDATE tasks SET status = 'paused', status_reason = change.reason, updated_at = greatest(now(), updated_at)
            FROM unnest($1::text[], $2::jsonb[]) AS change (id, reason),
                 LATERAL (SELECT status AS was FROM tasks before WHERE before.id = change.id) before
            WHERE tasks.id = change.id AND tasks.tenant_id = $3 AND tasks.status = ANY ($4::text[])
              AND tasks.status_reason IS DISTINCT FROM change.reason
            RETURNING {RETURNED_TASK}, before.was = 'paused' AS was_paused
            """,
            [task_id for task_id, _ in pauses],
            [reason.model_dump(mode="json") for _, reason in pauses],
            self._tenant_id,
            PAUSABLE,
        )
        return [
            PauseChange(
                task_from_row({key: value for key, value in row.items() if key != "was_paused"}), row["was_paused"]
            )
            for row in rows
        ]

    async def pause_all(self, reason: StatusReason) -> list[Task]:
        """Every task of this tenant's that runs (pending or in progress) → paused with `reason`; the tasks paused.
        Their row locks are taken in id order, like every locker of several tasks, so it waits on none in a cycle."""
        rows = await self._executor.fetch(
            f"""
            WITH running AS (
                SELECT id FROM tasks WHERE tenant_id = $1 AND status IN ('pending', 'in_progress')
                ORDER BY id FOR UPDATE
            )
            UPDATE tasks SET status = 'paused', status_reason = $2, updated_at = greatest(now(), updated_at)
            FROM running WHERE tasks.id = running.id AND tasks.status IN ('pending', 'in_progress')
            RETURNING {RETURNED_TASK}
            """,
            self._tenant_id,
            reason.model_dump(mode="json"),
        )
        return [task_from_row(row) for row in rows]

    async def paused_for(self, code: str) -> list[str]:
        """This tenant's tasks paused with the reason `code`, oldest first."""
        rows = await self._executor.fetch(
            """
            SELECT id FROM tasks WHERE tenant_id = $1 AND status = 'paused' AND status_reason ->> 'code' = $2
            ORDER BY created_at
            """,
            self._tenant_id,
            code,
        )
        return [row["id"] for row in rows]

    async def resume(self, task_id: str, max_cost_usd: float | None = None) -> Task | None:
        """paused → in progress (pending when no attempt of it was ever offered), its reason cleared and its budget
        replaced when `max_cost_usd` is given; None unless it was paused."""
        row = await self._executor.fetchrow(
            f"""
            UPDATE tasks
            SET status = CASE
                    WHEN EXISTS (SELECT FROM subtasks s WHERE s.task_id = tasks.id AND s.assigned_at IS NOT NULL)
                      OR EXISTS (SELECT FROM subtask_results r WHERE r.task_id = tasks.id)
                    THEN 'in_progress' ELSE 'pending' END,
                status_reason = NULL, max_cost_usd = coalesce($3, max_cost_usd),
                updated_at = greatest(now(), updated_at)
            WHERE id = $1 AND tenant_id = $2 AND status = 'paused'
            RETURNING {TASK_COLUMNS}
            """,
            task_id,
            self._tenant_id,
            max_cost_usd,
        )
        return None if row is None else task_from_row(row)
