"""What removing a task takes in PostgreSQL: its rows, and the audit rows that outlived it.

A task's subtasks, results and artifact rows go with it (their foreign keys cascade); its agent logs, tool calls and
task-scoped webhooks name it without a foreign key (an audit row must never be refused for its task id), so they
are deleted by the same statement, which notes the task in `removed_tasks` for the audit rows agents write later.
Tasks are found and removed within this tenant only; whether a task id exists at all is asked of every tenant's, so
a folder of another tenant's task sharing the same disk is never taken for a leftover.
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
        """Delete this tenant's tasks among `task_ids` with every row about them, in one statement, and note them as
        removed (`sweep_late_audit_rows`); the ids deleted. The caller checks that they ended, under their row locks
        (TaskRepository.lock_tasks)."""
        if not task_ids:
            return []
        rows = await self._executor.fetch(
            """
            WITH logs AS (DELETE FROM agent_logs WHERE task_id = ANY($1::text[]) AND tenant_id = $2),
                 calls AS (DELETE FROM tool_calls WHERE task_id = ANY($1::text[]) AND tenant_id = $2),
                 hooks AS (DELETE FROM webhooks WHERE task_id = ANY($1::text[]) AND tenant_id = $2),
                 removed AS (DELETE FROM tasks WHERE id = ANY($1::text[]) AND tenant_id = $2 RETURNING id),
                 noted AS (
                     INSERT INTO removed_tasks (task_id, tenant_id) SELECT id, $2 FROM removed
                     ON CONFLICT (task_id) DO UPDATE SET removed_at = now()
                 )
            SELECT id FROM removed
            """,
            list(task_ids),
            self._tenant_id,
        )
        return [row["id"] for row in rows]

    async def sweep_late_audit_rows(self, limit: int, forget_before: datetime) -> int:
        """Delete up to `limit` each of the agent logs and tool calls written for this tenant's removed tasks after
        they went (an agent still running an attempt of a cancelled task reports a moment later); then forget the
        tasks removed before `forget_before`, whose agents are long done. How many rows went."""
        deleted = 0
        for table in ("agent_logs", "tool_calls"):
            result: str = await self._executor.execute(
                f"""
                DELETE FROM {table} WHERE id IN (
                    SELECT entry.id FROM removed_tasks removed JOIN {table} entry ON entry.task_id = removed.task_id
                    WHERE removed.tenant_id = $1 AND entry.tenant_id = $1
                    LIMIT $2
                )
                """,
                self._tenant_id,
                limit,
            )
            deleted += int(result.rsplit(" ", 1)[-1])
        await self._executor.execute(
            "DELETE FROM removed_tasks WHERE tenant_id = $1 AND removed_at < $2", self._tenant_id, forget_before
        )
        return deleted

    async def existing_task_ids(self, task_ids: Collection[str]) -> set[str]:
        """Which of `task_ids` name a task of any tenant."""
        rows = await self._executor.fetch("SELECT id FROM tasks WHERE id = ANY($1::text[])", list(task_ids))
        return {row["id"] for row in rows}
