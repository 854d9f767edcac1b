"""Removing ended tasks with everything they left: the one way a task goes, for DELETE /tasks/{id} and the purge.

Rows first, in one transaction under the tasks' row locks (a task that has not ended is left alone, and a result
being applied to it waits or finds it gone): the task, its subtasks, results, artifact rows, agent logs, tool calls
and task-scoped webhooks. Then, after the commit, what lives outside PostgreSQL: the workspace and artifact folders,
the task's event stream and shared state in Redis, and this orchestrator's cached detail. What fails there is logged
and left for the retention loop's sweep (folders, late audit rows) or for its own expiry (Redis keys all expire).
"""

import asyncio
from collections.abc import Collection

import structlog

from orchestrator.detail_cache import TaskDetailCache
from orchestrator.task_folders import TaskFolders
from shared.database import DatabaseManager
from shared.errors import ConflictError, NotFoundError
from shared.models import TaskStatus
from shared.outages import STORE_OUTAGES
from shared.redis_manager import RedisManager

log = structlog.get_logger(__name__)


class TaskRemoval:
    def __init__(
        self, db: DatabaseManager, redis: RedisManager, folders: TaskFolders, details: TaskDetailCache
    ) -> None:
        self._db = db
        self._redis = redis
        self.folders = folders
        self._details = details

    async def remove_ended(self, task_ids: Collection[str]) -> dict[str, TaskStatus]:
        """Remove those of this tenant's `task_ids` that have ended; answers the status each task found had (the
        ended ones are gone, the others untouched; an unknown or another tenant's id is left out)."""
        async with self._db.transaction() as tx:
            found = await tx.tasks.lock_tasks(task_ids)
            removed = await tx.retention.delete_tasks(
                [task_id for task_id, status in found.items() if status.is_terminal]
            )
        if removed:
            await self._remove_outside_postgres(removed)
            log.info("tasks_removed", count=len(removed), task_ids=removed[:10])
        return found

    async def remove_task(self, task_id: str) -> None:
        """DELETE /tasks/{id}: 404 for a task that is not this tenant's, 409 for one that has not ended."""
        status = (await self.remove_ended([task_id])).get(task_id)
        if status is None:
            raise NotFoundError(f"no task with id {task_id!r}")
        if not status.is_terminal:
            raise ConflictError(
                f"task {task_id} is still {status.value}; cancel it first (POST /tasks/{task_id}/cancel)"
            )

    async def _remove_outside_postgres(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            self._details.forget(task_id)
        await asyncio.to_thread(self.folders.remove, task_ids)
        try:
            await self._redis.forget_tasks(task_ids)
        except STORE_OUTAGES as error:
            log.warning("task_keys_left_to_expire", count=len(task_ids), error=repr(error))
