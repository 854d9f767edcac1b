"""What removing a task takes in PostgreSQL: its rows, and the audit rows that outlived it.

A task's subtasks, results and artifact rows go with it (their foreign keys cascade); its agent logs, tool calls and
task-scoped webhooks name it without a foreign key (an audit row must never be refused for its task id), so they
are deleted by the same statement. Tasks are found and removed within this tenant only; whether a task id exists at
all is asked of every tenant's, so a folder or key of another tenant's task sharing the same disk is never taken for
a leftover.
"""

from collections.abc import Collection
from datetime import datetime

from shared.database.executor import Executor
from shared.database.task_repository import TERMINAL_TASK_VALUES


class RetentionRepository:
    def __init__(self, executor: Executor, tenant_id: str) -> None:
        self._executor = executor
        self._tenant_id = tenant_id

    async def expired_task_ids(self, ended_before: datetime, limit: int) -> list[str]:
        """Up to `limit` of this tenant's tasks that ended before `ended_before`, oldest first (an ended task is not
        updated any more: its updated_at is when it ended)."""
        rows = await self._executor.fetch(
            """
            SELECT id FROM tasks
            WHERE tenant_id = $1 AND status = ANY($2::text[]) AND updated_at < $3
            ORDER BY updated_at, id
            LIMIT $4
            """,
            self._tenant_id,
            TERMINAL_TASK_VALUES,
            ended_before,
            limit,
        )
        return [row["id"] for row in rows]

    async def delete_tasks(self, task_ids: Collection[str]) -> list[str]:
        """Delete this tenant's tasks among `task_ids` with every row about them, in one statement; the ids deleted.
        The caller checks that they ended, under their row locks (TaskRepository.lock_tasks)."""
        if not task_ids:
            return []
        rows = await self._executor.fetch(
            """
            WITH logs AS (DELETE FROM agent_logs WHERE task_id = ANY($1::text[]) AND tenant_id = $2),
                 calls AS (DELETE FROM tool_calls WHERE task_id = ANY($1::text[]) AND tenant_id = $2),
                 hooks AS (DELETE FROM webhooks WHERE task_id = ANY($1::text[]) AND tenant_id = $2)
            DELETE FROM tasks WHERE id = ANY($1::text[]) AND tenant_id = $2
            RETURNING id
            """,
            list(task_ids),
            self._tenant_id,
        )
        return [row["id"] for row in rows]

    async def delete_orphaned_audit_rows(self, limit: int, written_before: datetime) -> int:
        """Delete up to `limit` of this tenant's agent logs and of its tool calls, written before `written_before`,
        whose task no longer exists (an agent wrote them a moment after its task was removed); how many went."""
        deleted = 0
        for table in ("agent_logs", "tool_calls"):
            result: str = await self._executor.execute(
                f"""
                DELETE FROM {table} WHERE id IN (
                    SELECT entry.id FROM {table} entry
                    WHERE entry.tenant_id = $1 AND entry.task_id IS NOT NULL AND entry.created_at < $3
                      AND NOT EXISTS (SELECT FROM tasks WHERE tasks.id = entry.task_id)
                    LIMIT $2
                )
                """,
                self._tenant_id,
                limit,
                written_before,
            )
            deleted += int(result.rsplit(" ", 1)[-1])
        return deleted

    async def existing_task_ids(self, task_ids: Collection[str]) -> set[str]:
        """Which of `task_ids` name a task of any tenant."""
        rows = await self._executor.fetch("SELECT id FROM tasks WHERE id = ANY($1::text[])", list(task_ids))
        return {row["id"] for row in rows}
