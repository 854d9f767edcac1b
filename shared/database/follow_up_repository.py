"""Follow-up subtasks: whether an attempt is the current one of its task, and adding a subtask to a stored plan.

Callers hold the task's row lock (TaskRepository.lock_task), so the attempt cannot end, and no other follow-up can
take the next position, between the check and the insert.
"""

from shared.database.executor import Executor
from shared.database.subtask_repository import SUBTASK_COLUMNS, subtask_from_row
from shared.models import SubTask


class FollowUpRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def is_current_attempt(
        self, task_id: str, subtask_id: str, attempt: int, delivery_token: str, agent_id: str
    ) -> bool:
        """Whether this attempt runs now: its subtask is this tenant's, of this task, running this attempt under this
        offer on this agent."""
        found = await self._executor.fetchval(
            """
            SELECT EXISTS (
                SELECT FROM subtasks
                WHERE id = $1 AND task_id = $2 AND tenant_id = $6 AND status = 'running' AND attempt_count = $3
                  AND delivery_token = $4 AND assigned_agent = $5
            )
            """,
            subtask_id,
            task_id,
            attempt,
            delivery_token,
            agent_id,
            self._tenant_id,
        )
        return bool(found)

    async def subtask_ids(self, task_id: str) -> list[str]:
        """The ids of the task's subtasks, in plan order."""
        rows = await self._executor.fetch(
            "SELECT id FROM subtasks WHERE task_id = $1 AND tenant_id = $2 ORDER BY position", task_id, self._tenant_id
        )
        return [row["id"] for row in rows]

    async def add_subtask(self, subtask: SubTask, *, own_type: bool) -> SubTask | None:
        """Append a pending subtask to its task's plan, under the task's trace id and, unless it has `own_type`, of
        the task's type; None when its id is taken."""
        row = await self._executor.fetchrow(
            f"""
            INSERT INTO subtasks (id, task_id, position, description, required_capabilities, dependencies, priority,
                                  task_type, status, tenant_id, trace_id)
            SELECT $1, $2, coalesce(max(s.position), -1) + 1, $3, $4, $5, $6, CASE WHEN $9 THEN $7 ELSE t.task_type END,
                   'pending', $8, t.trace_id
            FROM tasks t LEFT JOIN subtasks s ON s.task_id = t.id
            WHERE t.id = $2 AND t.tenant_id = $8
            GROUP BY t.trace_id, t.task_type
            ON CONFLICT (id) DO NOTHING
            RETURNING {SUBTASK_COLUMNS}
            """,
            subtask.id,
            subtask.task_id,
            subtask.description,
            [capability.value for capability in subtask.required_capabilities],
            subtask.dependencies,
            subtask.priority,
            subtask.task_type,
            self._tenant_id,
            own_type,
        )
        return subtask_from_row(row) if row else None
